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

/** Runs the libvirt hook with its settings in a hooks.conf (libvirt filters the environment; only the file's path comes from env here). */
async function qemuHook(dir: string, conf: string, operation: string): Promise<{ code: number; stdout: string }> {
  const file = join(dir, "hooks.conf");
  await writeFile(file, `${conf}\n`);
  return run("sh", ["contrib/libvirt/qemu", "alice", operation, "begin", "-"], { input: DOMAIN_XML, env: { VIFGUARD_HOOKS_CONF: file }, allowFailure: true });
}

test("contrib/libvirt/qemu makes one call per event for all of the domain's MACs, printing nothing on stdout", async (t) => {
  for (const [operation, verb] of [["prepare", undefined], ["start", "plug"], ["migrate", "migrate-in"], ["stopped", "unplug"], ["release", "unplug"], ["started", undefined]] as const) {
    await t.test(operation, async (t) => {
      const dir = await tempDir(t, "hook");
      const fake = await recorder(dir);
      const result = await qemuHook(dir, `VIFGUARD=${fake.bin}`, operation);
      assert.equal(result.stdout, "", "libvirt takes the migrate hook's stdout as the new domain XML");
      assert.deepEqual(await fake.calls(), verb ? [`port ${verb} 52:54:00:00:00:01 52:54:00:aa:00:02`] : []);
    });
  }
});

test("contrib/libvirt/qemu passes the device the domain XML names for each MAC (--device MAC=vnetN), not the disks' targets", async (t) => {
  const dir = await tempDir(t, "hook");
  const log = join(dir, "argv");
  const bin = join(dir, "vifguard");
  await writeFile(bin, `#!/bin/sh\necho "$*" >> ${log}\n`);
  await chmod(bin, 0o755);
  const xml = `<domain type='kvm'>
  <name>alice</name>
  <devices>
    <disk type='file' device='disk'>
      <source file='/x.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <interface type='bridge'>
      <mac address='52:54:00:00:00:01'/>
      <source bridge='br0'/>
      <target dev='vnet12'/>
      <model type='virtio'/>
    </interface>
    <interface type="network"><mac address="52:54:00:AA:00:02"/><source network='default'/><target dev="vnet13"/></interface>
    <interface type='user'><mac address='52:54:00:00:00:03'/></interface>
  </devices>
</domain>`;
  const file = join(dir, "hooks.conf");
  await writeFile(file, `VIFGUARD=${bin}\n`);
  for (const op of ["start", "migrate", "stopped"]) {
    await run("sh", ["contrib/libvirt/qemu", "alice", op, "begin", "-"], { input: xml, env: { VIFGUARD_HOOKS_CONF: file } });
  }
  const [start, migrate, stopped] = (await readFile(log, "utf8")).trim().split("\n");
  assert.equal(start, "port plug 52:54:00:00:00:01 52:54:00:00:00:03 52:54:00:aa:00:02 --timeout 30000 --device 52:54:00:00:00:01=vnet12 --device 52:54:00:aa:00:02=vnet13");
  assert.match(migrate!, /^port migrate-in 52:54:00:00:00:01 52:54:00:00:00:03 52:54:00:aa:00:02 --timeout 30000 --device 52:54:00:00:00:01=vnet12 --device 52:54:00:aa:00:02=vnet13$/);
  assert.equal(stopped, "port unplug 52:54:00:00:00:01 52:54:00:00:00:03 52:54:00:aa:00:02 --timeout 30000", "unplug needs no devices");
});

test("contrib/libvirt/qemu: a failed plug is logged and the start goes on, unless STRICT=1", async (t) => {
  const dir = await tempDir(t, "hook");
  const failing = join(dir, "failing");
  await writeFile(failing, `#!/bin/sh\necho "no agent" >&2\nexit 1\n`);
  await chmod(failing, 0o755);
  assert.equal((await qemuHook(dir, `VIFGUARD=${failing}`, "start")).code, 0, "not strict: the fail-closed rule keeps the device dark");
  assert.equal((await qemuHook(dir, `VIFGUARD=${failing}\nSTRICT=1`, "start")).code, 1, "strict: a failed plug aborts the start");
  assert.equal((await qemuHook(dir, `VIFGUARD=${failing}\nSTRICT=1`, "stopped")).code, 0, "a failed unplug never stops a VM from stopping");
});

test("contrib/libvirt/qemu passes --socket only when hooks.conf sets one (else vifguard reads the agent's config)", async (t) => {
  const dir = await tempDir(t, "hook");
  const log = join(dir, "argv");
  const bin = join(dir, "vifguard");
  await writeFile(bin, `#!/bin/sh\necho "$*" >> ${log}\n`);
  await chmod(bin, 0o755);
  await qemuHook(dir, `VIFGUARD=${bin}`, "stopped");
  await qemuHook(dir, `VIFGUARD=${bin}\nSOCKET=/run/x/agent.sock`, "stopped");
  const [without, withSocket] = (await readFile(log, "utf8")).trim().split("\n");
  assert.doesNotMatch(without!, /--socket/);
  assert.match(withSocket!, /--socket \/run\/x\/agent\.sock/);
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

test("contrib/xen/vif-vifguard plugs by the MAC from xenstore with the vif as its device (netback vifs all carry fe:ff:ff:ff:ff:ff)", async (t) => {
  const dir = await tempDir(t, "xen");
  const fake = await recorder(dir);
  const log = join(dir, "argv");
  await writeFile(fake.bin, `#!/bin/sh\necho "$*" >> ${log}\n`);
  await writeFile(join(dir, "xenstore-read"), `#!/bin/sh\n[ "$1" = /local/domain/0/backend/vif/3/0/mac ] && echo 00:16:3e:00:00:01\n`);
  await chmod(join(dir, "xenstore-read"), 0o755);
  const next = join(dir, "vif-bridge");
  await writeFile(next, "#!/bin/sh\n");
  await chmod(next, 0o755);
  const env = { VIFGUARD: fake.bin, VIFGUARD_NEXT_SCRIPT: next, vif: "vif3.0", XENBUS_PATH: "/local/domain/0/backend/vif/3/0", PATH: `${dir}:${process.env.PATH}` };
  await run("sh", ["contrib/xen/vif-vifguard", "online"], { env });
  await run("sh", ["contrib/xen/vif-vifguard", "offline"], { env });
  assert.deepEqual((await readFile(log, "utf8")).trim().split("\n"), ["port plug 00:16:3e:00:00:01 --device 00:16:3e:00:00:01=vif3.0", "port unplug vif3.0"]);
});
