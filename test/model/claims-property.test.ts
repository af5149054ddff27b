// Property-based test of the claim checker (validatePortFile's cross-tenant and shared-network
// rules): whatever tenants, MACs, addresses and prefixes a shared network's port file names, no
// accepted file lets one tenant's effective bindings (derived link-locals included) overlap another's.
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { PortFileError } from "../../src/errors.ts";
import { prefixesOverlap } from "../../src/model/ip.ts";
import { validatePortFile } from "../../src/model/port-file.ts";
import { portPolicies } from "../../src/policy/port-policy.ts";

// Small pools, so that random ports collide often: shared MACs, nested prefixes, derived link-locals.
const MACS = ["52:54:00:00:00:01", "52:54:00:00:00:02", "52:54:00:00:00:03", "52:54:00:00:01:00", "02:00:00:00:00:01"];
const derivedLinkLocals = ["fe80::5054:ff:fe00:1", "fe80::5054:ff:fe00:2", "fe80::5054:ff:fe00:3", "fe80::5054:ff:fe00:100", "fe80::ff:fe00:1"];
const ADDRESSES = [
  "10.0.0.1", "10.0.0.2", "10.0.0.130", "10.0.1.1", "2001:db8::1", "2001:db8::2", "2001:db8:0:1::1",
  ...derivedLinkLocals, "fe80::1", "::ffff:10.0.0.1", "::10.0.0.1", "64:ff9b::a00:1", "2002:a00:1::1",
];
const PREFIXES = [
  ...ADDRESSES,
  "10.0.0.0/24", "10.0.0.0/25", "10.0.0.128/25", "10.0.0.0/16", "10.0.0.0/8", "0.0.0.0/0", "10.0.0.0/23",
  "2001:db8::/64", "2001:db8::/48", "2001:db8::/32", "::/0", "::/64", "::/96", "::ffff:0:0/96", "64:ff9b::/96", "64:ff9b::/64",
  "2002::/16", "fe80::/64", "fe80::/10", "fe80::5054:ff:fe00:0/120", "fe00::/7",
];

// Mostly what a tenant would ask for, sometimes anything from the pools: most files are accepted.
const some = <T,>(usual: readonly T[], all: readonly T[]): fc.Arbitrary<T> =>
  fc.oneof({ arbitrary: fc.constantFrom(...usual), weight: 4 }, { arbitrary: fc.constantFrom(...all), weight: 1 });
const USUAL = { alice: { macs: MACS.slice(0, 2), ips: ["10.0.0.1", "2001:db8::1", "10.0.0.0/25"] }, eve: { macs: MACS.slice(2), ips: ["10.0.0.130", "2001:db8::2", "10.0.1.1"] } };
const port = fc.constantFrom("alice" as const, "eve" as const).chain((tenant) =>
  fc.record({
    tenant: fc.constant(tenant),
    mac: some(USUAL[tenant].macs, MACS),
    ips: fc.array(some(USUAL[tenant].ips.filter((a) => !a.includes("/")), ADDRESSES), { maxLength: 2 }),
    allowed: fc.array(fc.record({ ip: some(USUAL[tenant].ips, PREFIXES), mac: fc.option(some(USUAL[tenant].macs, MACS), { nil: undefined, freq: 3 }) }, { requiredKeys: ["ip"] }), { maxLength: 2 }),
  }),
);
const widestPair = fc.option(fc.record({ ipv4: fc.integer({ min: 0, max: 32 }), ipv6: fc.integer({ min: 0, max: 128 }) }), { nil: undefined });

test("no accepted shared network lets two tenants' effective bindings overlap (fast-check)", () => {
  let accepted = 0;
  fc.assert(
    fc.property(fc.array(port, { minLength: 2, maxLength: 4 }), widestPair, (ports, widest) => {
      const doc = {
        networks: [{ id: "public", tenant: "provider", shared: true, ...(widest && { widestPair: widest }) }],
        ports: ports.map((p, i) => ({ id: `p${i}`, network: "public", device: `vnet${i}`, ...p, allowed: p.allowed.map((a) => (a.mac === undefined ? { ip: a.ip } : a)) })),
      };
      let file;
      try {
        file = validatePortFile(doc, "random.yaml");
      } catch (error) {
        if (error instanceof PortFileError) return; // refused: nothing to check
        throw error;
      }
      accepted++;
      const policies = portPolicies(file);
      for (const a of policies) {
        for (const b of policies) {
          if (a.tenant >= b.tenant) continue;
          for (const x of a.bindings) {
            for (const y of b.bindings) {
              assert.ok(!prefixesOverlap(x.prefix, y.prefix), `${a.port} (${a.tenant}) binds ${x.prefix.text} and ${b.port} (${b.tenant}) binds ${y.prefix.text}`);
            }
          }
          const macs = new Set(a.macs);
          assert.ok(!b.macs.some((m) => macs.has(m)), `${a.port} and ${b.port} of two tenants share a MAC`);
        }
      }
    }),
    { numRuns: 3000, seed: 12 },
  );
  assert.ok(accepted > 300, `only ${accepted} of 3000 random files were accepted: the property would hold vacuously`);
});
