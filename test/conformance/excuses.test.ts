// Every conformance-case excuse a driver declares names a case of the attack table (a renamed case
// must not silently turn an excuse off). Pure.
import assert from "node:assert/strict";
import { test } from "node:test";
import { buildCases } from "../../src/conformance/cases.ts";
import { DRIVER_MODULES } from "../../src/drivers/registry.ts";

const guest = (n: number) => ({ mac: `52:54:00:09:00:0${n}`, ipv4: `10.9.0.${n}`, ipv6: `2001:db8:9::${n}` });

test("each limitation's conformance cases exist in the attack table", () => {
  const names = new Set(buildCases({ alice: guest(1), eve: guest(2), bob: guest(3), gw: guest(4) }).map((c) => c.name));
  for (const module of DRIVER_MODULES) {
    for (const limitation of module.capabilities.limitations) {
      for (const name of limitation.cases ?? []) assert.ok(names.has(name), `${module.name}: limitation ${limitation.id} names the unknown case "${name}"`);
    }
  }
});
