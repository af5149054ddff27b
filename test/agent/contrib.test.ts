// The hook scripts in contrib/ call the right `vifguard port` verb for each event (vifguard replaced by a recorder).
import assert from "node:assert/strict";
import { chmod, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { run } from "../../src/host/run.ts";
import { tempDir } from "./fixture.ts";

const DOMAIN_XML = `<domain type='kvm'><name>alice</name><devices>
  <interface type='bridge'><mac address='52:54:00:00:00:01'/><source bridge='br0'/><target dev='vnet0'/></interface>
  <interface type="network"><mac address="52:54:00:AA:00:02"/><source network='default'/></interface>
  <disk type='file'><source file='/x.qcow2'/></disk>
</devices></domain>`;

async function recorder(dir: string): Promise<{ bin: string; calls: () => Promise<string[]> }> {
  const bin = join(dir, "vifguard");
  const log = join(dir, "calls");
  await writeFile(bin, `#!/bin/sh\necho "$*" >> ${log}\necho "ok $2"\n`);
  await chmod(bin, 0o755);
  return { bin, calls: async () => (await readFile(log, "utf8").catch(() => "")).trim().split("\n").filter(Boolean).map((l) => l.split(" --")[0]!) };
}

test("contrib/libvirt/qemu maps libvirt operations to port verbs by MAC, printing nothing on stdout", async (t) => {
  for (const [operation, verb] of [["prepare", "plug"], ["start", "plug"], ["migrate", "migrate-in"], ["stopped", "unplug"], ["release", "unplug"], ["started", undefined]] as const) {
    await t.test(operation, async (t) => {
      const dir = await tempDir(t, "hook");
      const fake = await recorder(dir);
      const result = await run("sh", ["contrib/libvirt/qemu", "alice", operation, "begin", "-"], { input: DOMAIN_XML, env: { VIFGUARD: fake.bin } });
      assert.equal(result.stdout, "", "libvirt takes the migrate hook's stdout as the new domain XML");
      assert.deepEqual(await fake.calls(), verb ? [`port ${verb} 52:54:00:00:00:01`, `port ${verb} 52:54:00:AA:00:02`] : []);
    });
  }
});

test("contrib/xen/vif-vifguard plugs before the real script and unplugs after it", async (t) => {
  const dir = await tempDir(t, "xen");
  const fake = await recorder(dir);
  const next = join(dir, "vif-bridge");
  await writeFile(next, `#!/bin/sh\necho "next $1" >> ${join(dir, "calls")}\n`);
  await chmod(next, 0o755);
  await run("sh", ["contrib/xen/vif-vifguard", "online"], { env: { VIFGUARD: fake.bin, VIFGUARD_NEXT_SCRIPT: next, vif: "vif3.0" } });
  await run("sh", ["contrib/xen/vif-vifguard", "offline"], { env: { VIFGUARD: fake.bin, VIFGUARD_NEXT_SCRIPT: next, vif: "vif3.0" } });
  assert.deepEqual(await fake.calls(), ["port plug vif3.0", "next online", "next offline", "port unplug vif3.0"]);
});
