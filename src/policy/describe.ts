// Human-readable effective policies, for `vifguard check` and `status`. Pure.
import type { PortPolicy } from "./port-policy.ts";

export function describePolicy(policy: PortPolicy): string {
  const lines = [`port ${policy.port} (tenant ${policy.tenant}, network ${policy.network}, ${policy.device === undefined ? "device found by MAC" : `device ${policy.device}`})`, `  level:    ${policy.level}`];
  if (policy.level === "off") return [...lines, "  guards:   none (everything passes)"].join("\n");
  lines.push(`  macs:     ${policy.macs.join(", ")}`);
  if (policy.level === "full") {
    lines.push("  bindings:");
    for (const b of policy.bindings) lines.push(`    ${b.mac}  ${b.prefix.text}`);
  }
  lines.push(`  guards:   ${policy.guards.join(", ")}`);
  return lines.join("\n");
}
