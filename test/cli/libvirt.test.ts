import assert from "node:assert/strict";
import { test } from "node:test";
import { vifguard } from "../support/cli.ts";

test("vifguard libvirt filterref prints the element for a full port: its MACs and bindings in lockstep", async () => {
  const { code, stdout } = await vifguard("libvirt", "filterref", "-f", "examples/ports.yaml", "--port", "alice-0");
  assert.equal(code, 0);
  assert.match(stdout, /^<filterref filter='vifguard-full'>\n/);
  assert.match(stdout, /<\/filterref>\n$/);
  assert.match(stdout, /<parameter name='MAC' value='52:54:00:00:00:01'\/>/);
  assert.match(stdout, /name='VG_V4_MAC' value='52:54:00:00:00:01'\/>\n\s+<parameter name='VG_V4_NET' value='10.0.0.100'\/>\n\s+<parameter name='VG_V4_MASK' value='32'\/>/, "the VIP pair, in lockstep");
  assert.doesNotMatch(stdout, /VG_DIGEST/, "the digest is the agent's business, not the domain's");
});

test("vifguard libvirt filterref: a level-mac port references the mac filter with its MAC only; --prefix renames", async () => {
  const { code, stdout } = await vifguard("libvirt", "filterref", "-f", "examples/ports.yaml", "--port", "acme-db-0", "--prefix", "cloud");
  assert.equal(code, 0);
  assert.match(stdout, /^<filterref filter='cloud-mac'>\n {2}<parameter name='MAC' value='[0-9a-f:]{17}'\/>\n<\/filterref>\n$/);
});

test("vifguard libvirt filterref: an unknown port or a bad prefix is a usage error naming the option", async () => {
  const unknown = await vifguard("libvirt", "filterref", "-f", "examples/ports.yaml", "--port", "mallory-0");
  assert.equal(unknown.code, 2);
  assert.equal(unknown.stdout, "");
  assert.match(unknown.stderr, /--port: no port "mallory-0" in examples\/ports.yaml; it has: alice-0, eve-0, bob-0, acme-db-0/);
  const prefix = await vifguard("libvirt", "filterref", "-f", "examples/ports.yaml", "--port", "alice-0", "--prefix", "Bad Prefix");
  assert.equal(prefix.code, 2);
  assert.match(prefix.stderr, /--prefix: got "Bad Prefix"/);
});
