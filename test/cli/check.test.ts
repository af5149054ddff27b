import assert from "node:assert/strict";
import { test } from "node:test";
import { vifguard } from "../support/cli.ts";

test("vifguard check prints each port's effective policy for the example", async () => {
  const { code, stdout } = await vifguard("check", "-f", "examples/ports.yaml");
  assert.equal(code, 0);
  assert.match(stdout, /port alice-0 \(tenant alice, network public, device vnet0\)/);
  assert.match(stdout, /52:54:00:00:00:01 {2}10\.0\.0\.100/, "the VIP address pair is bound to Alice's MAC");
  assert.match(stdout, /fe80::5054:ff:fe00:1/, "the EUI-64 link-local is derived");
  assert.match(stdout, /port acme-db-0 .*\n {2}level: {4}mac/);
  assert.match(stdout, /valid, 2 networks, 4 ports/);
});

test("vifguard check rejects the bad example, naming every field, and exits 1", async () => {
  const { code, stdout, stderr } = await vifguard("check", "-f", "examples/bad-ports.yaml");
  assert.equal(code, 1);
  assert.equal(stdout, "");
  for (const path of ["networks[0].protection", "ports[1].device", "ports[1].mac", "ports[1].ips[0]", "ports[1].allowed[0].ip"]) {
    assert.ok(stderr.includes(path), `stderr names ${path}:\n${stderr}`);
  }
});

test("vifguard check on a missing file says so", async () => {
  const { code, stderr } = await vifguard("check", "-f", "/nonexistent/ports.yaml");
  assert.equal(code, 1);
  assert.match(stderr, /no such file/);
});

test("vifguard check --json prints parseable policies", async () => {
  const { code, stdout } = await vifguard("check", "-f", "examples/ports.yaml", "--json");
  assert.equal(code, 0);
  const policies = JSON.parse(stdout) as { port: string; level: string }[];
  assert.deepEqual(policies.map((p) => [p.port, p.level]), [["alice-0", "full"], ["eve-0", "full"], ["bob-0", "full"], ["acme-db-0", "mac"]]);
});

test("every command has --help with an example", async () => {
  for (const command of ["check", "explain"]) {
    const { code, stdout } = await vifguard(command, "--help");
    assert.equal(code, 0);
    assert.match(stdout, /Example/, `${command} --help shows an example`);
  }
});
