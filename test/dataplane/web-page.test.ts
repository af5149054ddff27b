// The web page in a real browser (Debian's Chromium, driven by playwright-core) against a real
// controller (SQLite) and a real agent (bin/vifguard agent, nftables, NFLOG samples) on a namespace
// hypervisor: Eve spoofs Alice's address with ARP and IPv4, and the admin's page shows her event in
// one line with the port, the reasons and the claimed address, the hosts' health and the drops
// chart. A tenant's page never shows another tenant's ports or events: Alice's page shows her own
// event (the control that must arrive) and nothing of Eve's, while Eve keeps attacking. Screenshots
// go to test-artifacts/ (git-ignored). Needs root and /usr/bin/chromium (skips; fails under CI=true).
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { startController } from "../../src/controller/server.ts";
import { run } from "../../src/host/run.ts";
import * as f from "../../src/policy/frame-builder.ts";
import { AgentLab, marker, needsNftables, needsRoot, waitFor } from "../agent/dataplane-lab.ts";
import { ALICE, BOB, EVE, type PortSpec } from "../agent/fixture.ts";

const CHROMIUM = "/usr/bin/chromium";
const ADMIN = "admin-bootstrap-token-0123456789";
const HOST = "hv2";
const ARTIFACTS = new URL("../../test-artifacts/", import.meta.url).pathname;

/** Eve's gratuitous ARP claiming Alice's IP, and her IPv4 frame from Alice's IP to Bob: both drop. */
const eveArp = (): Uint8Array => f.withTrailer(f.ether("ff:ff:ff:ff:ff:ff", EVE.mac, 0x0806, f.arp({ op: 2, sha: EVE.mac, spa: ALICE.ips[0]!, tpa: ALICE.ips[0]! })), marker());
const eveIpv4 = (): Uint8Array => f.withTrailer(f.ether(BOB.mac, EVE.mac, 0x0800, f.icmp4Echo(ALICE.ips[0]!, BOB.ips[0]!)), marker());
/** Alice's IPv4 frame from Bob's IP to Eve: her own spoof event. */
const aliceIpv4 = (): Uint8Array => f.withTrailer(f.ether(EVE.mac, ALICE.mac, 0x0800, f.icmp4Echo(BOB.ips[0]!, EVE.ips[0]!)), marker());

function needsChromium(t: TestContext): boolean {
  if (existsSync(CHROMIUM)) return true;
  if (process.env.CI === "true") throw new Error(`${CHROMIUM} is missing (scripts/setup installs Debian's chromium)`);
  t.skip(`${CHROMIUM} is missing (scripts/setup installs Debian's chromium)`);
  return false;
}

type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any

async function call(url: string, token: string, method: string, path: string, body?: unknown): Promise<Json> {
  const answer = await fetch(`${url}${path}`, { method, headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await answer.text();
  assert.ok(answer.ok, `${method} ${path}: HTTP ${answer.status} ${text}`);
  return text ? JSON.parse(text) : undefined;
}

/** Opens the page in a new tab (its own sessionStorage) and logs in with `token`. */
async function openPage(context: BrowserContext, url: string, token: string, origins: Set<string>): Promise<Page> {
  const page = await context.newPage();
  page.on("request", (r) => origins.add(new URL(r.url()).origin));
  page.on("request", (r) => assert.ok(!r.url().includes(token), `a request URL carries the token: ${r.url()}`));
  await page.goto(`${url}/ui/`);
  await page.fill("#token", token);
  await page.click("button[type=submit]");
  await page.waitForSelector("header .role:not(:empty)");
  assert.equal(await page.evaluate(() => sessionStorage.getItem("vifguard.token")), token, "kept in this tab's sessionStorage");
  assert.ok(!page.url().includes(token), "the token is not in the page's URL");
  return page;
}

async function screenshot(t: TestContext, page: Page, name: string): Promise<void> {
  await mkdir(ARTIFACTS, { recursive: true });
  const file = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  t.diagnostic(`screenshot: ${file}`);
}

test("web page in Chromium: Eve's spoof event shows on the admin's page with port, reasons and claimed address; tenants see only their own", async (t) => {
  if (!needsRoot(t) || !(await needsNftables(t)) || !needsChromium(t)) return;
  const lab = await AgentLab.start(t, "vgweb");
  for (const spec of [ALICE, EVE, BOB]) await lab.addGuest(spec);

  const controller = await startController({ store: `sqlite://${join(lab.dir, "controller.db")}`, bootstrapTokens: [ADMIN], listen: { host: "127.0.0.1", port: 0 }, logLevel: "silent", watchPollMs: 200 });
  t.after(() => controller.close());
  const url = controller.url;
  const admin = (method: string, path: string, body?: unknown): Promise<Json> => call(url, ADMIN, method, path, body);
  await admin("POST", "/v1/networks", { id: "public", tenant: "provider", shared: true });
  const portBody = (p: PortSpec) => ({ id: p.id, tenant: p.tenant, network: "public", device: p.device, mac: p.mac, ips: p.ips, host: HOST });
  for (const p of [ALICE, EVE, BOB]) await admin("POST", "/v1/ports", portBody(p));
  // Carol's port names no device and no device on the host has her MAC: her VM is not there yet.
  await admin("POST", "/v1/ports", { id: "carol-0", tenant: "carol", network: "public", mac: "52:54:00:00:00:0c", ips: ["10.0.0.12"], host: HOST });
  const agentToken = (await admin("POST", "/v1/tokens", { role: "agent", host: HOST })).token as string;
  const aliceToken = (await admin("POST", "/v1/tokens", { role: "tenant", tenant: "alice" })).token as string;
  const eveToken = (await admin("POST", "/v1/tokens", { role: "tenant", tenant: "eve" })).token as string;
  const tokenFile = join(lab.dir, "agent.token");
  await writeFile(tokenFile, agentToken, { mode: 0o600 });
  await lab.startAgent({
    source: { controller: { url, tokenFile, host: HOST, pollTimeoutMs: 5_000, retryMs: 200, heartbeatMs: 1_000 } },
    // Drop counters reach the controller with the reports after each sync: every second here.
    reconcile: { intervalMs: 1_000, debounceMs: 50, batchSize: 100 },
  });
  await waitFor(async () => (await admin("GET", "/v1/ports/eve-0/status")).migration.state === "ready", 30_000, "eve-0 applied on hv2", 200);
  // Drift: vifguard's table deleted by hand; the agent puts it back and reports each port's repair.
  for (const table of await lab.tables()) await run("nft", ["delete", "table", ...table.split(" ")], { netns: lab.hostNetns });
  await waitFor(async () => (await admin("GET", "/v1/ports/bob-0/status")).reports[0]?.driftRepairs >= 1, 30_000, "bob-0's drift repair reported", 200);

  const userDataDir = await mkdtemp(join(tmpdir(), `vg-${lab.id}-chromium-`));
  const browser: { context?: BrowserContext } = {};
  // One hook, in this order: a running Chromium writes into its profile while it is being removed.
  t.after(async () => {
    await browser.context?.close();
    await rm(userDataDir, { recursive: true, force: true });
  });
  const context = (browser.context = await chromium.launchPersistentContext(userDataDir, { executablePath: CHROMIUM, headless: true, args: ["--no-sandbox"], timezoneId: "UTC", viewport: { width: 1280, height: 900 } }));
  const origins = new Set<string>();
  let attack: ReturnType<AgentLab["stream"]> | undefined;
  t.after(() => attack?.stop());

  await t.test("admin: hosts, ports (one awaiting its device, drift repaired), then Eve's event appears live, in one line", async () => {
    const page = await openPage(context, url, ADMIN, origins);
    await page.waitForSelector(`tr[data-port="eve-0"] .badge.ok:text("applied")`);
    // Per port status: Carol's awaits its device (her agent says so), Bob's drifted and was repaired.
    await page.locator(`tr[data-port="carol-0"] .badge.warn`, { hasText: /^awaiting device$/ }).waitFor();
    assert.equal(await page.locator(`tr[data-port="carol-0"] .badge.ok`).count(), 0, "carol-0 is not shown applied");
    await page.locator(`tr[data-port="bob-0"] .badge.warn`, { hasText: /^drifted, repaired [1-9]\d*×$/ }).waitFor();
    const hostRow = page.locator(`tr[data-host="${HOST}"]`);
    await hostRow.locator(".badge.ok", { hasText: "alive" }).waitFor();
    const hostText = await hostRow.innerText();
    assert.match(hostText, /nftables \d+\.\d+\.\d+/);
    for (const l of lab.driver.capabilities.limitations) assert.ok(hostText.includes(l.description), `declared limitation shown: ${l.description}`);
    assert.equal(await page.locator("ol.events li").count(), 0, "no event before the attack");

    const started = performance.now();
    attack = lab.stream("eve-0", [eveArp(), eveIpv4()], 0, 2);
    attack.done.catch(() => undefined); // ended by stop(), or killed by the lab's cleanup after a failure
    // The first version of an event may come from the counters alone ("had N frames dropped"); the
    // acceptance is the line that names what she claimed, from the sampled frames.
    const line = page.locator(`ol.events li[data-port="eve-0"]`, { hasText: "claimed 10.0.0.1" }).first();
    await line.waitFor({ timeout: 30_000 });
    const shownMs = performance.now() - started;
    const first = await line.innerText();
    // A figure (the issue asks for 5 s): the test's bound is only that it appears.
    t.diagnostic(`Eve's event on the page ${shownMs.toFixed(0)} ms after her first frame: ${first}`);
    assert.match(first, /^eve-0 on hv2 claimed 10\.0\.0\.1 \(alice-0's\) ([\d,]+ times|once), [\d:–]+, .*\((arp-spoof|ipv4-spoof)(, (arp-spoof|ipv4-spoof))?\)$/);
    // Her ARP and IPv4 claims of one address read as one line once both are sampled.
    const both = page.locator(`ol.events li[data-port="eve-0"]`, { hasText: /ARP and IPv4|IPv4 and ARP/ });
    await both.waitFor({ timeout: 30_000 });
    assert.match(await both.innerText(), /^eve-0 on hv2 claimed 10\.0\.0\.1 \(alice-0's\) [\d,]+ times, [\d:–]+, (ARP and IPv4|IPv4 and ARP) \((arp-spoof, ipv4-spoof|ipv4-spoof, arp-spoof)\)$/);
    assert.equal(await page.locator("ol.events li").count(), 1, "one line: Eve's");

    // Her port's drop counters and the chart of their rate (the chart follows the newest event's port).
    await page.locator(`tr[data-port="eve-0"] .drops`, { hasText: "arp-spoof" }).waitFor({ timeout: 30_000 });
    await page.waitForFunction(() => Number(document.querySelector(`svg[data-port="eve-0"] path[data-reason="arp-spoof"]`)?.getAttribute("data-max") ?? 0) > 0, undefined, { timeout: 30_000 });
    // Two rates (three polls, 5 s apart) draw a line for the screenshot.
    await page.waitForFunction(() => Number(document.querySelector(`svg[data-port="eve-0"] path[data-reason="arp-spoof"]`)?.getAttribute("data-points") ?? 0) >= 2, undefined, { timeout: 30_000 });
    assert.match(await page.locator(`tr[data-port="alice-0"]`).innerText(), /applied[\s\S]*none$/, "Alice's port dropped nothing");
    await screenshot(t, page, "web-page-admin");
    await page.close();
  });

  await t.test("tenant eve: her port and her event, nothing of Alice's or Bob's (not even whose address she claimed)", async () => {
    const page = await openPage(context, url, eveToken, origins);
    await page.locator(`ol.events li[data-port="eve-0"]`, { hasText: "claimed 10.0.0.1" }).waitFor();
    await page.locator(`tr[data-port="eve-0"] .drops`, { hasText: "arp-spoof" }).waitFor();
    const text = await page.locator("body").innerText();
    assert.match(text, /^eve-0 on hv2 claimed 10\.0\.0\.1 [\d,]+ times/m);
    for (const word of [/\balice\b/i, /\bbob\b/i, "10.0.0.3", ALICE.mac, BOB.mac]) assert.ok(typeof word === "string" ? !text.includes(word) : !word.test(text), `eve's page shows ${String(word)}:\n${text}`);
    assert.match(text, /Hosts are shown to admin tokens only/);
    assert.deepEqual(await page.locator("table.ports tbody tr").evaluateAll((rows) => rows.map((r) => r.getAttribute("data-port"))), ["eve-0"]);
    await screenshot(t, page, "web-page-tenant-eve");
    await page.close();
  });

  await t.test("tenant alice: while Eve keeps attacking, only Alice's own event arrives (the control)", async () => {
    const page = await openPage(context, url, aliceToken, origins);
    await page.locator(`tr[data-port="alice-0"] .badge.ok`, { hasText: "applied" }).waitFor();
    await page.locator(".live.live").waitFor();
    // Eve's attack is still running (her event keeps being updated); Alice now spoofs Bob's address.
    const before = (await admin("GET", "/v1/events?port=eve-0")).events as Json[];
    const own = lab.stream("alice-0", [aliceIpv4()], 0, 5);
    own.done.catch(() => undefined);
    t.after(() => own.stop());
    const line = page.locator(`ol.events li[data-port="alice-0"]`, { hasText: "claimed 10.0.0.3" });
    await line.waitFor({ timeout: 30_000 });
    await waitFor(async () => ((await admin("GET", "/v1/events?port=eve-0")).events as Json[]).some((e) => !before.some((o) => o.id === e.id && o.updatedMs === e.updatedMs)), 30_000, "Eve's event updated meanwhile", 200);
    // Alice's event is updated after Eve's update was stored, and the long-poll delivers in that
    // order: once her line changes, a leak of Eve's update would be on the page too.
    const shown = await line.innerText();
    await page.waitForFunction((was) => document.querySelector(`ol.events li[data-port="alice-0"]`)?.textContent !== was, shown, { timeout: 30_000 });
    own.stop();
    const text = await page.locator("body").innerText();
    assert.match(text, /^alice-0 on hv2 claimed 10\.0\.0\.3 [\d,]+ times, [\d:–]+, IPv4 \(ipv4-spoof\)$/m, "her own line, without naming Bob's port");
    for (const word of [/\beve\b/i, /\bbob\b/i, "10.0.0.2", EVE.mac, BOB.mac]) assert.ok(typeof word === "string" ? !text.includes(word) : !word.test(text), `alice's page shows ${String(word)}:\n${text}`);
    assert.deepEqual(await page.locator("table.ports tbody tr").evaluateAll((rows) => rows.map((r) => r.getAttribute("data-port"))), ["alice-0"]);
    await screenshot(t, page, "web-page-tenant-alice");
    await page.close();
  });

  assert.deepEqual([...origins], [url], "the page asked its controller only (no CDN)");
});
