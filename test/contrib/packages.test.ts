// The release packages from scripts/build-packages, each installed on a clean root: the npm tarball with
// `npm install -g --prefix <fresh dir>` (offline, from the shrinkwrap and npm's cache that `npm ci` filled) and
// the .deb unpacked with `dpkg-deb -x`; `vifguard --help` and `vifguard check` run from each, as compiled JS.
// Slow (a tsc build and an npm install): about a minute and a half on an idle 2-core host.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, readdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { hasCommand, run } from "../../src/host/run.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

test("scripts/build-packages: the npm tarball and the .deb install on clean roots and run compiled vifguard", async (t) => {
  if (!(await hasCommand("dpkg-deb"))) {
    if (process.env.CI === "true") assert.fail("dpkg-deb is missing");
    return t.skip("dpkg-deb is missing");
  }
  const dir = await mkdtemp(join(tmpdir(), "vg-packages-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const built = await run(join(ROOT, "scripts/build-packages"), [join(dir, "out")], { timeoutMs: 600_000 });
  const [tarball, deb] = built.stdout.trim().split("\n").slice(-2) as [string, string];
  assert.match(tarball, /vifguard-\d+\.\d+\.\d+\.tgz$/);
  assert.match(deb, /vifguard_\d+\.\d+\.\d+_[a-z0-9]+\.deb$/);

  const listing = (await run("tar", ["-tzf", tarball])).stdout.split("\n");
  assert.ok(listing.includes("package/dist/cli/vifguard.cjs") && listing.includes("package/LICENSE") && listing.includes("package/npm-shrinkwrap.json"));
  for (const file of ["index.html", "style.css", "app.js"]) assert.ok(listing.includes(`package/dist/web/public/${file}`), `the web page's ${file} is in the tarball`);
  assert.ok(!listing.some((f) => f.startsWith("package/dist/web/app/") || f === "package/dist/web/build.js"), "the page's sources and build script stay out");
  assert.deepEqual(listing.filter((f) => /^package\/(test|bench|src|\.ci)\//.test(f)), [], "no tests, benches or sources in the tarball");

  const examples = join(ROOT, "examples/ports.yaml");
  await t.test("npm install -g --prefix <fresh dir> from the tarball", async () => {
    const prefix = join(dir, "npm-prefix");
    // --ignore-scripts: better-sqlite3's native build (the controller's SQLite store) takes minutes here;
    // an operator runs it with --allow-scripts=better-sqlite3 (docs/install.md).
    await run("npm", ["install", "-g", "--prefix", prefix, "--offline", "--ignore-scripts", "--no-audit", "--no-fund", tarball], { timeoutMs: 300_000 });
    const bin = join(prefix, "bin/vifguard");
    assert.match((await run(bin, ["--help"])).stdout, /^Usage: vifguard/);
    assert.match((await run(bin, ["check", "-f", examples])).stdout, /^port alice-0 /m);
    const installed = await readdir(join(prefix, "lib/node_modules/vifguard/node_modules"));
    assert.ok(!installed.includes("tsx") && !installed.includes("typescript"), "no devDependencies installed");
  });

  await t.test("the .deb unpacked on a clean root", async () => {
    const root = join(dir, "root");
    await run("dpkg-deb", ["-x", deb, root]);
    const bin = join(root, "usr/bin/vifguard");
    assert.match((await run(bin, ["--help"])).stdout, /^Usage: vifguard/);
    assert.match((await run(bin, ["check", "-f", join(root, "etc/vifguard/ports.yaml")])).stdout, /^port alice-0 /m);
    assert.ok(!(await readdir(join(root, "usr/lib/vifguard/node_modules"))).includes("tsx"), "runs compiled JS, no tsx");
    // The compiled controller finds the web page's files beside it, as the committed bundle.
    const loaded = await run("node", ["--input-type=module", "-e", `const { loadUiAssets } = await import(${JSON.stringify(join(root, "usr/lib/vifguard/dist/controller/ui.js"))}); const a = await loadUiAssets(); process.stdout.write(a.get("app.js").body)`]);
    assert.equal(loaded.stdout, await readFile(join(ROOT, "src/web/public/app.js"), "utf8"), "the .deb's controller serves the committed bundle");
    for (const file of ["lib/systemd/system/vifguard-agent.service", "lib/systemd/system/vifguard-controller.service", "usr/share/vifguard/hooks/libvirt-qemu", "etc/xen/scripts/vif-vifguard", "usr/share/vifguard/hooks/ovs/vifguard-ovs-watch", "etc/vifguard/agent.yaml", "etc/vifguard/hooks.conf"]) {
      await readFile(join(root, file)); // throws ENOENT when missing
    }
    assert.match(await readFile(join(root, "lib/systemd/system/vifguard-agent.service"), "utf8"), /^ExecStart=\/usr\/bin\/vifguard agent /m);
    const fields = (await run("dpkg-deb", ["-f", deb, "Depends", "Recommends"])).stdout;
    assert.match(fields, /^Depends: nodejs \(>= 20\.19\)/m);
    assert.match(fields, /^Recommends: .*nftables.*openvswitch-switch/m, "dataplanes are recommends, not depends");
    assert.match(fields, /^Recommends: .*\bpython3\b/m, "python3 runs the NFLOG reader (frame samples for spoof events)");
    // The compiled nftables driver finds its NFLOG reader beside it.
    const { NFLOG_READER } = (await import(join(root, "usr/lib/vifguard/dist/host/nflog.js"))) as { NFLOG_READER: string };
    assert.equal(NFLOG_READER, join(root, "usr/lib/vifguard/dist/host/nflog-read.py"));
    assert.equal(await readFile(NFLOG_READER, "utf8"), await readFile(join(ROOT, "src/host/nflog-read.py"), "utf8"), "the .deb ships the NFLOG reader");
  });
});
