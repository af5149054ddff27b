// Shared by the OVS tests: the cloud of examples/ports.yaml with devices named per run, and the
// root/CI gate for tests that need real daemons.
import type { TestContext } from "node:test";
import { parsePortFile } from "../../../src/model/port-file.ts";
import { portPolicies, type PlacedPolicy } from "../../../src/policy/port-policy.ts";
import { requireRoot } from "../../support/needs-root.ts";
import { placeAsNamed } from "../../../src/agent/device-match.ts";

export const ALICE_MAC = "52:54:00:00:00:01";
export const EVE_MAC = "52:54:00:00:00:02";
export const BOB_MAC = "52:54:00:00:00:03";
export const ACME_MAC = "52:54:00:aa:00:01";

/** Alice (with a VIP), Eve and Bob on a shared network at level full; acme-db at level mac. */
export function cloud(prefix: string): PlacedPolicy[] {
  const yaml = `
networks:
  - { id: public, tenant: provider, shared: true, protection: full }
  - { id: acme-private, tenant: acme, shared: false, protection: mac }
ports:
  - { id: alice-0, tenant: alice, network: public, device: ${prefix}-a, mac: "${ALICE_MAC}", ips: [10.0.0.1, "2001:db8::1"], allowed: [{ ip: 10.0.0.100/32 }, { ip: "2001:db8::100" }] }
  - { id: eve-0, tenant: eve, network: public, device: ${prefix}-e, mac: "${EVE_MAC}", ips: [10.0.0.2, "2001:db8::2"] }
  - { id: bob-0, tenant: bob, network: public, device: ${prefix}-b, mac: "${BOB_MAC}", ips: [10.0.0.3, "2001:db8::3"] }
  - { id: acme-db-0, network: acme-private, device: ${prefix}-m, mac: "${ACME_MAC}", ips: [192.168.50.10] }
`;
  return placeAsNamed(portPolicies(parsePortFile(yaml, "fixture.yaml")));
}

/** Skips (with the reason) unless root; under CI=true a missing prerequisite fails instead. */
export function needsRoot(t: TestContext): boolean {
  return requireRoot(t, "runs ovsdb-server and ovs-vswitchd in a private run directory and network namespace");
}
