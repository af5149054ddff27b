// docs/install.md, run as written (issue 13): every block tagged <!-- run: STEP --> runs in order, as
// root, in this checkout, with bash -e -o pipefail: build the .deb with scripts/build-packages, dpkg -i it,
// write /etc/vifguard, link the libvirt hook and SIGHUP libvirtd, start the agent's unit, virsh start a
// VM, read `vifguard status`, uninstall. The test changes only what the guide cannot say for this host:
// its own domain's name where the guide says web-1 (a tiny QEMU guest from test/support/tiny-guest.ts
// on a bridge of its own, with the guide's MAC), and `systemctl` (no systemd as PID 1 here): a stand-in
// first on PATH, test/support/systemctl-standin.ts, that starts the unit's ExecStart with the unit's
// user and capabilities through setpriv. Then it checks that the VM's port is enforced, that the hook
// (not only the agent's own MAC search) plugged it, and that the VM's tap is in the agent's table;
// after the uninstall step, that nothing is left. Whatever happens, it purges the package and puts
// /etc/libvirt/hooks, /etc/vifguard and /var/lib/vifguard back as they were and removes the agent's socket.
// Needs root, libvirtd with QEMU, nftables, dpkg-deb and a Debian 6.1 kernel in /boot (skips without;
// fails under CI=true). Run under `flock /work/libvirt.lock` beside other libvirt tests.
// VIFGUARD_GUIDE_DEB=path (not under CI) installs that .deb instead of building one, for quick re-runs.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import { ensureLibvirtd } from "../../src/drivers/libvirt/index.ts";
import { hasCommand, run } from "../../src/host/run.ts";
import { guideBlocks } from "../support/guide-blocks.ts";
import { requireRoot } from "../support/needs-root.ts";
import { buildGuestImage, domainXml, findKernel } from "../support/tiny-guest.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const GUIDE_MAC = "52:54:00:12:34:56"; // the MAC docs/install.md gives web-1's port
const GUIDE_IP = "192.0.2.10/24";
const URI = "qemu:///system";
/** What the test puts back as it found it (absent ones are removed). Not /run/vifguard: the bpf driver
 * mounts its bpffs under it, which rm -rf would empty; only the agent's socket is taken from there. */
const SAVED = ["/etc/libvirt/hooks", "/etc/vifguard", "/var/lib/vifguard"];
const SOCKET = "/run/vifguard/agent.sock";

type Ran = { code: number; out: string };

/** Runs a guide block with bash -e -o pipefail in the checkout; stdout and stderr interleaved. */
function bash(code: string, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn("bash", ["-e", "-o", "pipefail", "-c", code], { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"], timeout: timeoutMs });
    let out = "";
    child.stdout.on("data", (b: Buffer) => (out += b.toString()));
    child.stderr.on("data", (b: Buffer) => (out += b.toString()));
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code: code ?? 128, out: out + (signal ? `(killed by ${signal})` : "") }));
  });
}

async function needs(t: TestContext): Promise<boolean> {
  if (!requireRoot(t, "installs a Debian package, writes /etc/vifguard and /etc/libvirt/hooks, starts libvirtd, a VM and the agent")) return false;
  const missing = [];
  for (const c of ["dpkg-deb", "virsh", "libvirtd", "qemu-system-x86_64", "nft", "setpriv", "xz", "cpio", "busybox"]) if (!(await hasCommand(c))) missing.push(c);
  const kernel = await findKernel();
  if (!kernel) missing.push("a Debian 6.1 kernel in /boot with its modules");
  if (missing.length === 0) return true;
  if (process.env.CI === "true") assert.fail(`missing: ${missing.join(", ")}`);
  t.skip(`missing: ${missing.join(", ")}`);
  return false;
}

test("docs/install.md run as written: from the .deb to a VM whose port `vifguard status` shows enforced, and uninstalled again", { timeout: 600_000 }, async (t) => {
  if (!(await needs(t))) return;
  const blocks = guideBlocks(await readFile(join(ROOT, "docs/install.md"), "utf8"), "docs/install.md");
  // Someone's live state is never touched: the test refuses rather than overwrite it.
  assert.equal((await run("dpkg-query", ["-W", "-f", "${Status}", "vifguard"], { allowFailure: true })).stdout.includes("installed"), false, "the vifguard package is installed on this host already: not touching it");
  assert.equal((await run("nft", ["list", "table", "bridge", "vifguard"], { allowFailure: true })).code === 0, false, "nftables table bridge vifguard exists already: not touching it");
  assert.equal(existsSync("/etc/libvirt/hooks/qemu"), false, "/etc/libvirt/hooks/qemu exists already: the guide would have the operator call ours from it; not touching it");

  const id = `vgig${randomBytes(2).toString("hex")}`;
  const domain = `${id}-web`;
  const bridge = `${id}br`;
  const dir = await mkdtemp(join(tmpdir(), `${id}-`));
  const state = join(dir, "systemctl");
  const hadOut = existsSync(join(ROOT, "out"));
  const hadRun = existsSync("/run/vifguard");
  assert.equal(existsSync(SOCKET), false, `${SOCKET} exists: an agent runs here already; not touching it`);
  const env = { ...process.env, PATH: `${join(dir, "bin")}:${process.env.PATH ?? "/usr/bin:/bin"}`, VG_STANDIN_STATE: state };
  try {
    for (const [i, path] of SAVED.entries()) if (existsSync(path)) await run("cp", ["-a", path, join(dir, `saved-${i}`)]);
  } catch (error) {
    await rm(dir, { recursive: true, force: true }); // nothing changed yet, and nothing may be "restored" from a partial copy
    throw error;
  }
  const cleanup: [string, () => Promise<unknown>][] = [
    ["stop the agent", () => bash("systemctl disable --now vifguard-agent", env, 30_000)],
    ["destroy the VM", () => run("virsh", ["-c", URI, "destroy", domain], { allowFailure: true })],
    ["undefine the VM", () => run("virsh", ["-c", URI, "undefine", domain], { allowFailure: true })],
    ["delete the bridge", () => run("ip", ["link", "del", bridge], { allowFailure: true })],
    ["delete the agent's table", () => run("nft", ["delete", "table", "bridge", "vifguard"], { allowFailure: true })],
    ["purge the package", () => run("dpkg", ["--purge", "vifguard"], { allowFailure: true, timeoutMs: 120_000 })],
    ["restore what the guide changed", async () => {
      for (const [i, path] of SAVED.entries()) {
        await rm(path, { recursive: true, force: true });
        if (existsSync(join(dir, `saved-${i}`))) await run("cp", ["-a", join(dir, `saved-${i}`), path]);
      }
    }],
    ["remove the agent's socket", async () => {
      await rm(SOCKET, { force: true });
      if (!hadRun) await run("rmdir", ["/run/vifguard"], { allowFailure: true });
    }],
    ["let libvirtd forget the hook", () => run("sh", ["-c", "pid=$(pidof libvirtd) && kill -HUP $pid"], { allowFailure: true })],
    ["remove out/", async () => (hadOut ? undefined : rm(join(ROOT, "out"), { recursive: true, force: true }))],
  ];
  t.after(async () => {
    for (const [what, step] of cleanup) await step().catch((error: unknown) => t.diagnostic(`clean-up: ${what} failed: ${String(error)}`));
    const log = await readFile(join(state, "vifguard-agent.service.log"), "utf8").catch(() => "");
    if (log) t.diagnostic(`the agent's log ends with:\n${log.slice(-1500)}`);
    await rm(dir, { recursive: true, force: true });
  });

  // The stand-in systemctl, first on PATH for the guide's blocks only.
  await mkdir(join(dir, "bin"));
  await writeFile(join(dir, "bin/systemctl"), `#!/bin/sh\nexec node --import "file://${ROOT}node_modules/tsx/dist/loader.mjs" "${ROOT}test/support/systemctl-standin.ts" "$@"\n`, { mode: 0o755 });

  // The VM the guide's `virsh start web-1` starts: defined by the test (the guide's not-run `virsh define`).
  await ensureLibvirtd();
  const guest = join(dir, "guest");
  await mkdir(guest, { mode: 0o755 });
  await chmod(dir, 0o711); // QEMU runs as libvirt-qemu: it reads the kernel in guest/ (the saved files stay root's)
  const image = await buildGuestImage(guest, (await findKernel())!);
  await run("ip", ["link", "add", bridge, "type", "bridge"]);
  await run("ip", ["link", "set", bridge, "up"]);
  await writeFile(join(dir, "domain.xml"), domainXml({ name: domain, mac: GUIDE_MAC, ipCidr: GUIDE_IP, bridge, image, console: join(guest, "console.sock"), consoleLog: join(guest, "console.log") }));
  await run("virsh", ["-c", URI, "define", join(dir, "domain.xml")]);

  const outputs = new Map<string, string>();
  const prebuilt = process.env.CI === "true" ? undefined : process.env.VIFGUARD_GUIDE_DEB;
  for (const block of blocks) {
    if (!block.run) continue;
    const code = block.code.replace(/\bweb-1\b/g, domain);
    if (block.step === "build" && prebuilt) {
      await mkdir(join(ROOT, "out"), { recursive: true });
      await copyFile(prebuilt, join(ROOT, "out", prebuilt.split("/").at(-1)!));
      t.diagnostic(`build: VIFGUARD_GUIDE_DEB=${prebuilt} installed instead of building`);
      continue;
    }
    // A reader re-runs these two until the agent answers, and until it has enforced the port.
    const until = block.step === "agent-status" ? (r: Ran) => r.code === 0 : block.step === "status" ? (r: Ran) => r.code === 0 && new RegExp(`^\\s+${domain}-0\\s+enforced$`, "m").test(r.out) : undefined;
    const started = performance.now();
    let r = await bash(code, env, 300_000);
    while (until && !until(r) && performance.now() - started < 60_000) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      r = await bash(code, env, 60_000);
    }
    t.diagnostic(`step ${block.step} (docs/install.md line ${block.line}): exit ${r.code} after ${((performance.now() - started) / 1000).toFixed(1)} s`);
    assert.equal(r.code, 0, `step ${block.step} (docs/install.md line ${block.line}) failed:\n${code}\n---\n${r.out.slice(-3000)}`);
    if (until) assert.ok(until(r), `step ${block.step}: ${r.out}`);
    outputs.set(block.step, r.out);

    if (block.step === "install") {
      // The installed units' Documentation= must name files the package installed.
      for (const unit of ["vifguard-agent", "vifguard-controller", "vifguard-ovs-watch"]) {
        const docs = [...(await readFile(`/lib/systemd/system/${unit}.service`, "utf8")).matchAll(/^Documentation=file:\/\/(\S+)/gm)].map((m) => m[1]!);
        assert.ok(docs.length > 0, `${unit}.service names its documentation`);
        for (const doc of docs) assert.ok(existsSync(doc), `${unit}.service: Documentation=file://${doc} is installed`);
      }
    }
    if (block.step === "agent-status") t.diagnostic(`vifguard status before the VM starts:\n${r.out.trimEnd()}`);
    if (block.step === "status") {
      t.diagnostic(`vifguard status:\n${r.out.trimEnd()}`);
      // The VM's tap, as libvirt named it, is in the agent's table.
      const tap = /^\s*(vnet\d+)\s/m.exec(outputs.get("vm") ?? "")?.[1];
      assert.ok(tap, `virsh domiflist named the VM's tap: ${outputs.get("vm")}`);
      assert.match((await run("nft", ["list", "table", "bridge", "vifguard"])).stdout, new RegExp(`"${tap}"`), `the agent's table names ${tap}`);
      // The hook plugged it: without the hook the agent would still find the tap by MAC, so the
      // status alone would not show that libvirt ran the hook.
      const metrics = await (await fetch("http://127.0.0.1:9477/metrics")).text();
      const plugs = Number(/^vifguard_lifecycle_requests_total\{op="plug",result="ok"\} (\d+)/m.exec(metrics)?.[1] ?? 0);
      assert.ok(plugs >= 1, `the hook's plug reached the agent (metrics: ${metrics.split("\n").filter((l) => l.includes("lifecycle")).join("; ") || "none"})`);
    }
  }
  assert.ok(outputs.has("uninstall"), "the guide ends with its uninstall step");
  assert.equal((await run("dpkg-query", ["-W", "-f", "${Status}", "vifguard"], { allowFailure: true })).stdout.includes("installed"), false, "the package is gone");
  assert.notEqual((await run("nft", ["list", "table", "bridge", "vifguard"], { allowFailure: true })).code, 0, "vifguard remove took the table away");
  assert.equal(existsSync("/etc/libvirt/hooks/qemu"), false, "the hook is gone");
  assert.equal(existsSync("/etc/vifguard/agent.yaml"), false, "the purge took the configuration");
});
