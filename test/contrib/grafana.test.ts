// contrib/grafana/vifguard-dashboard.json and contrib/prometheus/vifguard-alerts.yml: the dashboard
// loads as a Grafana dashboard model, the rules as Prometheus rule groups, and every metric their
// PromQL names is one a real controller (SQLite) or a real agent (its in-memory test driver; the
// metric names come from the agent's registry, not the driver) exports on /metrics.
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Writable } from "node:stream";
import { test } from "node:test";
import { pino } from "pino";
import { parse } from "yaml";
import { startAgent } from "../../src/agent/agent.ts";
import { validateAgentConfig } from "../../src/agent/config.ts";
import { FakeDriver } from "../agent/fake-driver.ts";
import { ALICE, EVE, portFile, tempDir } from "../agent/fixture.ts";
import { ADMIN, client, controllerOn, sqliteBackend } from "../controller/helpers.ts";

const root = new URL("../../", import.meta.url).pathname;
const PROMQL_WORDS = new Set(["sum", "min", "max", "avg", "count", "topk", "bottomk", "rate", "irate", "increase", "delta", "histogram_quantile", "time", "label_values", "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset", "abs", "absent", "clamp_min", "clamp_max", "vector", "scalar", "changes", "resets", "max_over_time", "min_over_time", "avg_over_time"]);

/** The metric names a PromQL expression reads: identifiers outside label matchers, strings, ranges and grouping lists, minus PromQL's own words. */
export function metricsOf(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, "")
    .replace(/\[[^\]]*\]/g, "")
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, "$1")
    .replace(/\$\w+/g, "");
  const names = bare.match(/[A-Za-z_:][A-Za-z0-9_:]*/g) ?? [];
  return [...new Set(names.filter((n) => !PROMQL_WORDS.has(n)))];
}

test("metricsOf: names only, not functions, labels, ranges or grouping lists", () => {
  assert.deepEqual(metricsOf('histogram_quantile(0.99, sum by (le, route) (rate(a_bucket{route!~".*/(x|y)"}[$__rate_interval])))'), ["a_bucket"]);
  assert.deepEqual(metricsOf('time() - b_seconds > 60 and on(host) c{state="awaiting-device"} > 0'), ["b_seconds", "c"]);
  assert.deepEqual(metricsOf("label_values(vifguard_ports, instance)"), ["vifguard_ports", "instance"], "label_values' label is not PromQL: callers strip it");
});

/** Every sample name a /metrics text can hold: each family's, and a histogram's or summary's series. */
function exported(text: string): Set<string> {
  const names = new Set<string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    names.add(m[1]!);
    if (m[2] === "histogram") for (const s of ["_bucket", "_sum", "_count"]) names.add(m[1]! + s);
    if (m[2] === "summary") for (const s of ["_sum", "_count"]) names.add(m[1]! + s);
  }
  return names;
}

type Panel = { type: string; title: string; datasource?: { type: string; uid: string }; targets?: { expr: string; refId: string }[]; panels?: Panel[] };

test("the Grafana dashboard and the alert rules use only metrics the controller and the agent export", async (t) => {
  const dashboard = JSON.parse(readFileSync(join(root, "contrib/grafana/vifguard-dashboard.json"), "utf8")) as { uid: string; title: string; schemaVersion: number; panels: Panel[]; templating: { list: { name: string; type: string; query: unknown }[] } };
  assert.equal(typeof dashboard.uid, "string");
  assert.equal(typeof dashboard.title, "string");
  assert.ok(Number.isInteger(dashboard.schemaVersion) && dashboard.schemaVersion >= 30, "a current dashboard schema");
  const used = new Map<string, string>(); // metric → where
  const panels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]).filter((p) => p.type !== "row");
  assert.ok(panels.length >= 10);
  const ids = new Set<number>();
  for (const p of dashboard.panels) ids.add((p as unknown as { id: number }).id);
  assert.equal(ids.size, dashboard.panels.length, "panel ids are unique");
  for (const p of panels) {
    assert.deepEqual(p.datasource, { type: "prometheus", uid: "${datasource}" }, p.title);
    assert.ok(p.targets && p.targets.length > 0, `${p.title}: has targets`);
    for (const target of p.targets) {
      assert.ok(target.expr && target.refId, `${p.title}: every target has expr and refId`);
      for (const m of metricsOf(target.expr)) used.set(m, `panel "${p.title}"`);
    }
  }
  assert.ok(dashboard.templating.list.some((v) => v.name === "datasource" && v.type === "datasource"));
  for (const v of dashboard.templating.list) {
    const q = (v.query as { query?: string } | undefined)?.query;
    const inner = q && /^label_values\((\w+),\s*\w+\)$/.exec(q);
    if (q) assert.ok(inner, `variable ${v.name}: a label_values(metric, label) query`);
    if (inner) used.set(inner[1]!, `variable ${v.name}`);
  }

  const rules = parse(readFileSync(join(root, "contrib/prometheus/vifguard-alerts.yml"), "utf8")) as { groups: { name: string; rules: { alert: string; expr: string; for?: string; labels?: Record<string, string>; annotations?: Record<string, string> }[] }[] };
  assert.ok(rules.groups.length > 0);
  const alerts = rules.groups.flatMap((g) => (assert.equal(typeof g.name, "string"), g.rules));
  for (const r of alerts) {
    assert.match(r.alert, /^[A-Za-z][A-Za-z0-9_]*$/);
    assert.equal(typeof r.expr, "string");
    if (r.for !== undefined) assert.match(r.for, /^\d+[smhd]$/, `${r.alert}: for`);
    assert.ok(r.annotations?.summary, `${r.alert}: a summary`);
    for (const m of metricsOf(r.expr)) used.set(m, `alert ${r.alert}`);
  }
  // The four situations the issue asks alerts for.
  for (const needed of ["VifguardPortSpoofing", "VifguardAgentNotHeartbeating", "VifguardPortAwaitingDevice", "VifguardDriftRepairedRepeatedly"]) assert.ok(alerts.some((r) => r.alert === needed), needed);

  // A real controller and a real agent, scraped.
  const backend = await sqliteBackend(t);
  const c = await controllerOn(t, backend);
  assert.equal((await client(c, ADMIN)("GET", "/v1/ports")).status, 200); // a request, so the latency histogram has a series
  const controllerText = await (await fetch(`${c.url}/metrics`)).text();
  const dir = await tempDir(t, "grafana");
  const file = join(dir, "ports.yaml");
  writeFileSync(file, portFile([ALICE, EVE]));
  const config = validateAgentConfig({ source: { file }, stateDir: join(dir, "state"), controlSocket: join(dir, "agent.sock"), listen: "127.0.0.1:0" }, "test");
  const agent = await startAgent(config, { driver: new FakeDriver(), logger: pino({ level: "silent" }, new Writable({ write: (_c, _e, done) => done() })) });
  t.after(() => agent.stop());
  const agentText = await (await fetch(`http://127.0.0.1:${agent.httpPort}/metrics`)).text();
  const known = new Set([...exported(controllerText), ...exported(agentText)]);
  assert.ok(known.has("vifguard_dropped_frames_total") && known.has("vifguard_controller_requests_total"), "both were scraped");

  const unknown = [...used].filter(([m]) => !known.has(m)).map(([m, where]) => `${m} (${where})`);
  assert.deepEqual(unknown, [], "metrics named in the dashboard or the rules that nobody exports");
  // Each of the subjects has a metric in use.
  for (const m of ["vifguard_dropped_frames_total", "vifguard_spoof_events_total", "vifguard_controller_host_last_seen_timestamp_seconds", "vifguard_drift_repairs_total", "vifguard_ports", "vifguard_controller_requests_total", "vifguard_controller_request_duration_seconds_bucket", "vifguard_reconcile_duration_seconds_bucket"]) assert.ok(used.has(m), `${m} is on the dashboard or in a rule`);
});
