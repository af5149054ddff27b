// Every shipped unit in contrib/systemd passes `systemd-analyze verify` without a warning and stays
// within its exposure bound under `systemd-analyze security --offline=true` (deterministic: the score
// depends only on the file). Also the unit parser that the setpriv tests use (test/support/unit-privileges.ts).
import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import { hasCommand, run } from "../../src/host/run.ts";
import { parseUnitPrivileges, setprivArgs, withoutCapability } from "../support/unit-privileges.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const UNITS = join(ROOT, "contrib/systemd");

/** The highest offline exposure each unit may have (issue #18). */
const BOUNDS: Readonly<Record<string, number>> = {
  "vifguard-agent.service": 3.5,
  "vifguard-ovs-watch.service": 3.5,
  "vifguard-controller.service": 2.0,
};

async function needsSystemdAnalyze(t: TestContext): Promise<boolean> {
  if (await hasCommand("systemd-analyze")) return true;
  if (process.env.CI === "true") throw new Error("systemd-analyze is missing (Debian package systemd; ./scripts/setup installs it)");
  t.skip("systemd-analyze is missing (Debian package systemd)");
  return false;
}

test("contrib/systemd ships exactly the units that have a bound", async () => {
  const units = (await readdir(UNITS)).filter((f) => f.endsWith(".service")).sort();
  assert.deepEqual(units, Object.keys(BOUNDS).sort());
});

for (const [unit, bound] of Object.entries(BOUNDS)) {
  test(`${unit}: systemd-analyze verify finds nothing`, async (t) => {
    if (!(await needsSystemdAnalyze(t))) return;
    // verify checks that ExecStart's program exists: point the installed paths at the repository's.
    const dir = await mkdtemp(join(tmpdir(), "vg-units-"));
    t.after(() => rm(dir, { recursive: true, force: true }));
    // All units side by side: verify looks for the units one requires (ovs-watch → agent) beside it.
    for (const name of Object.keys(BOUNDS)) {
      const text = (await readFile(join(UNITS, name), "utf8"))
        .replaceAll("/usr/local/bin/vifguard", join(ROOT, "bin/vifguard"))
        .replaceAll("/usr/local/share/vifguard/contrib/", join(ROOT, "contrib/"));
      await writeFile(join(dir, name), text);
    }
    const result = await run("systemd-analyze", ["verify", "--man=no", join(dir, unit)], { allowFailure: true, timeoutMs: 60_000 });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr.trim(), "", "no warning (an unknown key or a value systemd cannot parse is only a warning)");
  });

  test(`${unit}: offline exposure ≤ ${bound}`, async (t) => {
    if (!(await needsSystemdAnalyze(t))) return;
    const result = await run("systemd-analyze", ["security", "--offline=true", "--no-pager", join(UNITS, unit)], { allowFailure: true, timeoutMs: 60_000 });
    const score = /Overall exposure level for \S+: (\d+\.\d)/.exec(result.stdout)?.[1];
    assert.ok(score !== undefined, `no score in:\n${result.stdout}\n${result.stderr}`);
    t.diagnostic(`${unit}: exposure ${score}`);
    assert.ok(Number(score) <= bound, `exposure ${score} > ${bound}:\n${result.stdout.split("\n").filter((l) => l.startsWith("✗")).join("\n")}`);
  });
}

test("the agent keeps only CAP_NET_ADMIN, with root's uid but without root's implicit capabilities", async () => {
  const unit = parseUnitPrivileges(await readFile(join(UNITS, "vifguard-agent.service"), "utf8"));
  assert.equal(unit.user, "root");
  assert.deepEqual(unit.boundingSet, { mode: "only", caps: ["CAP_NET_ADMIN"] });
  assert.deepEqual(unit.ambient, ["CAP_NET_ADMIN"]);
  assert.deepEqual(unit.secureBits, ["noroot", "noroot-locked"]);
  assert.ok(unit.noNewPrivileges);
});

test("ovs-watch keeps no capability; the controller runs as a dynamic user without any", async () => {
  const watch = parseUnitPrivileges(await readFile(join(UNITS, "vifguard-ovs-watch.service"), "utf8"));
  assert.deepEqual([watch.user, watch.boundingSet, watch.ambient], ["root", { mode: "only", caps: [] }, []]);
  const controller = parseUnitPrivileges(await readFile(join(UNITS, "vifguard-controller.service"), "utf8"));
  assert.deepEqual([controller.user, controller.boundingSet, controller.ambient, controller.umask], ["dynamic", { mode: "only", caps: [] }, [], "0077"]);
});

test("unit parser: systemd's merging of capability lines, and the setpriv arguments", () => {
  const unit = parseUnitPrivileges(`[Unit]\nUser=nobody\n[Service]\nUser=vifguard\nGroup=vifguard\nCapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW\nCapabilityBoundingSet=~CAP_NET_RAW\nAmbientCapabilities=cap_net_admin\nSecureBits=keep-caps\nNoNewPrivileges=true\nUMask=0027\n`);
  assert.deepEqual(setprivArgs(unit), ["--reuid=vifguard", "--regid=vifguard", "--init-groups", "--bounding-set=-all,+net_admin", "--inh-caps=-all,+net_admin", "--ambient-caps=-all,+net_admin", "--securebits=+keep_caps", "--no-new-privs"]);
  const inverted = parseUnitPrivileges("[Service]\nCapabilityBoundingSet=~CAP_SYS_ADMIN\nCapabilityBoundingSet=CAP_SYS_ADMIN\nCapabilityBoundingSet=~CAP_SYS_MODULE\n");
  assert.deepEqual(inverted.boundingSet, { mode: "all-but", caps: ["CAP_SYS_MODULE"] });
  assert.equal(setprivArgs(inverted)[3], "--bounding-set=+all,-sys_module");
  const emptied = parseUnitPrivileges("[Service]\nCapabilityBoundingSet=CAP_NET_ADMIN\nCapabilityBoundingSet=\nDynamicUser=yes\n");
  assert.deepEqual(setprivArgs(emptied, { dynamicId: 61999 }).slice(0, 4), ["--reuid=61999", "--regid=61999", "--clear-groups", "--bounding-set=-all"]);
  assert.deepEqual(withoutCapability(unit, "CAP_NET_ADMIN").ambient, []);
  assert.throws(() => setprivArgs(emptied), /dynamicId/);
});
