// Property-based test of the controller's claim checker (SQL candidates in batches over the stored
// prefix lengths, then crossTenantClaims): ports created and changed one request at a time on a
// shared network, in random order, never leave two tenants' effective bindings (derived
// link-locals included) overlapping. The port file's checker has its twin in test/model.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import fc from "fast-check";
import { ApiError } from "../../src/controller/errors.ts";
import { Store } from "../../src/controller/store/store.ts";
import { parseMac } from "../../src/model/mac.ts";
import { parseAddress, parsePrefix, prefixesOverlap } from "../../src/model/ip.ts";
import { portPolicy } from "../../src/policy/port-policy.ts";

const MACS = ["52:54:00:00:00:01", "52:54:00:00:00:02", "52:54:00:00:00:03", "02:00:00:00:00:01"];
const ADDRESSES = ["10.0.0.1", "10.0.0.130", "10.0.1.1", "2001:db8::1", "2001:db8::2", "2001:db8:0:1::1", "fe80::5054:ff:fe00:1", "fe80::5054:ff:fe00:2", "fe80::ff:fe00:1", "fe80::1"];
const PREFIXES = [...ADDRESSES, "10.0.0.0/24", "10.0.0.0/25", "10.0.0.128/25", "10.0.0.0/16", "2001:db8::/64", "2001:db8::/48", "fe80::/64", "fe80::5054:ff:fe00:0/120", "::/0", "0.0.0.0/0"];

const step = fc.record({
  tenant: fc.constantFrom("alice", "eve"),
  mac: fc.constantFrom(...MACS),
  ips: fc.array(fc.constantFrom(...ADDRESSES), { maxLength: 2 }),
  allowed: fc.array(fc.record({ ip: fc.constantFrom(...PREFIXES), mac: fc.option(fc.constantFrom(...MACS), { nil: undefined, freq: 3 }) }, { requiredKeys: ["ip"] }), { maxLength: 2 }),
  patch: fc.boolean(),
});

test("no sequence of API writes on a shared network lets two tenants' effective bindings overlap (fast-check, SQLite)", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "vg-claims-property-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const store = await Store.open(`sqlite://${join(dir, "c.db")}`);
  t.after(() => store.close());
  let run = 0;
  let stored = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(step, { minLength: 2, maxLength: 6 }), async (steps) => {
      const network = await store.networks.create({ id: `n${run++}`, tenant: "provider", shared: true });
      for (const [i, s] of steps.entries()) {
        const allowed = s.allowed.map((a) => (a.mac === undefined ? { ip: a.ip } : a));
        try {
          // Every other step changes an earlier port of the same tenant instead of creating one.
          const earlier = (await store.ports.list({ network: network.id })).find((p) => p.tenant === s.tenant);
          if (s.patch && earlier) await store.ports.update(earlier.id, { ips: s.ips, allowed });
          else await store.ports.create([{ id: `${network.id}-p${i}`, tenant: s.tenant, network: network.id, device: `v${i}`, mac: s.mac, ips: s.ips, allowed }]);
        } catch (error) {
          if (!(error instanceof ApiError)) throw error; // refused: nothing was stored
        }
      }
      const ports = await store.ports.list({ network: network.id });
      stored += ports.length;
      const prefix = (text: string) => (text.includes("/") ? (parsePrefix(text) as { ok: true; prefix: never }).prefix : parseAddress(text)!);
      const policies = ports.map((p) => portPolicy({ ...p, mac: parseMac(p.mac)!, ips: p.ips.map(prefix), allowed: p.allowed.map((a) => ({ ip: prefix(a.ip), mac: parseMac(a.mac)! })), protection: p.protection ?? undefined }, network, { antiSpoofing: true }));
      for (const a of policies) {
        for (const b of policies) {
          if (a.tenant >= b.tenant) continue;
          for (const x of a.bindings) for (const y of b.bindings) assert.ok(!prefixesOverlap(x.prefix, y.prefix), `${a.port} (${a.tenant}) binds ${x.prefix.text}, ${b.port} (${b.tenant}) binds ${y.prefix.text}`);
          assert.ok(!b.macs.some((m) => a.macs.includes(m)), `${a.port} and ${b.port} share a MAC`);
        }
      }
    }),
    { numRuns: 60, seed: 12 },
  );
  assert.ok(stored > 60, `only ${stored} ports were stored over 60 runs: the property would hold vacuously`);
});
