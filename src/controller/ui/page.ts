// The operator's web page at GET /ui: one self-contained HTML document (no CDN, works offline) that
// asks for a token, keeps it in sessionStorage (never in a URL) and reads the /v1 API with it as a
// bearer token: hosts, ports, and spoof events newest first (long-poll with changedAfter).
// Interim: plain DOM code inline; issue 15's preact + htm bundle and per-port chart are not done yet.
// Effects: none (a constant).

const SCRIPT = String.raw`
const $ = (s) => document.querySelector(s);
const esc = (v) => String(v ?? "").replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
async function api(path) {
  const r = await fetch(path, { headers: { authorization: "Bearer " + sessionStorage.getItem("vifguardToken") } });
  if (!r.ok) throw new Error(path + ": HTTP " + r.status);
  return r.json();
}
const list = (body) => Array.isArray(body) ? body : (body.items ?? body.hosts ?? body.ports ?? body.events ?? []);
function table(el, rows, cols) {
  el.innerHTML = "<tr>" + cols.map((c) => "<th>" + esc(c) + "</th>").join("") + "</tr>" +
    rows.map((r) => "<tr>" + cols.map((c) => "<td>" + esc(typeof r[c] === "object" ? JSON.stringify(r[c]) : r[c]) + "</td>").join("") + "</tr>").join("");
}
let events = new Map();
function eventLine(e) {
  const who = e.port ?? e.portId ?? "?";
  return who + " on " + (e.host ?? "?") + ": " + (e.reason ?? "?") + " x" + (e.count ?? "?") + " " + JSON.stringify(e.samples ?? e.sample ?? "");
}
function showEvents() {
  const sorted = [...events.values()].sort((a, b) => (b.lastSeenMs ?? 0) - (a.lastSeenMs ?? 0));
  $("#events").innerHTML = sorted.map((e) => "<li>" + esc(eventLine(e)) + "</li>").join("");
}
async function refresh() {
  try {
    const hosts = list(await api("/v1/hosts"));
    table($("#hosts"), hosts, Object.keys(hosts[0] ?? { name: 0 }));
    const ports = list(await api("/v1/ports"));
    table($("#ports"), ports, Object.keys(ports[0] ?? { id: 0 }));
    $("#error").textContent = "";
  } catch (e) { $("#error").textContent = String(e); }
}
async function pollEvents() {
  let cursor;
  try {
    const first = await api("/v1/events");
    for (const e of list(first)) events.set(e.key ?? JSON.stringify(e), e);
    cursor = first.cursor ?? 0;
    showEvents();
    for (;;) {
      const b = await api("/v1/events?changedAfter=" + cursor + "&timeoutMs=25000");
      for (const e of list(b)) events.set(e.key ?? JSON.stringify(e), e);
      cursor = b.cursor ?? cursor;
      showEvents();
    }
  } catch (e) { $("#error").textContent = String(e); setTimeout(pollEvents, 5000); }
}
function start() {
  $("#login").hidden = true; $("#main").hidden = false;
  refresh(); setInterval(refresh, 5000); pollEvents();
}
$("#login").addEventListener("submit", (ev) => {
  ev.preventDefault();
  sessionStorage.setItem("vifguardToken", $("#token").value.trim());
  start();
});
$("#logout").addEventListener("click", () => { sessionStorage.removeItem("vifguardToken"); location.reload(); });
if (sessionStorage.getItem("vifguardToken")) start();
`;

export const UI_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>vifguard</title>
<style>body{font-family:sans-serif;margin:1em}table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;padding:2px 4px;text-align:left}#error{color:#b00}</style>
</head><body><h1>vifguard</h1>
<form id="login"><label>Token <input id="token" type="password" autocomplete="off"></label> <button>Log in</button></form>
<div id="main" hidden><button id="logout">Log out</button><p id="error"></p>
<h2>Spoof events (newest first)</h2><ul id="events"></ul>
<h2>Hosts</h2><table id="hosts"></table>
<h2>Ports</h2><table id="ports"></table></div>
<script>${SCRIPT}</script></body></html>`;
