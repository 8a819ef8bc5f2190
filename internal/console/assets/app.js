// OpenTrail console: a single-page application without dependencies. Every call goes
// to /console/api/, which runs it through the server's own authorisation and audit.
"use strict";

// gen counts the pages shown: a page still loading when another is chosen draws into its own
// detached view and stops what it started.
const state = { session: null, page: null, cleanup: [], gen: 0 };
const main = document.getElementById("main");

// ---- DOM helpers -------------------------------------------------------------------------
function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const k of kids.flat(Infinity)) {
    if (k === null || k === undefined || k === false) continue;
    el.append(k instanceof Node ? k : document.createTextNode(String(k)));
  }
  return el;
}
const SVGNS = "http://www.w3.org/2000/svg";
function s(tag, attrs, ...kids) {
  const el = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined && v !== null) el.setAttribute(k, v);
  for (const k of kids.flat(Infinity)) if (k !== null && k !== undefined) el.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return el;
}
function announce(msg) { const a = document.getElementById("announce"); a.textContent = ""; setTimeout(() => { a.textContent = msg; }, 30); }
function field(labelText, input) {
  if (!input.id) input.id = "f-" + Math.random().toString(36).slice(2);
  return h("div", { class: "field" }, h("label", { for: input.id }, labelText), input);
}
// activate makes a focusable element that is not a button (a table row) act as one: click,
// Enter or Space. The keydown is prevented so that it does not also press whatever takes the
// focus next (the Close button of the dialog it opens).
function activate(el, fn) {
  el.addEventListener("click", fn);
  el.addEventListener("keydown", ev => { if (ev.target === el && (ev.key === "Enter" || ev.key === " ")) { ev.preventDefault(); fn(); } });
}
function pad(n) { return String(n).padStart(2, "0"); }
function fmtTime(t) {
  const d = t instanceof Date ? t : new Date(typeof t === "number" ? t * 1000 : t);
  if (isNaN(d)) return "";
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}
function download(name, type, text) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = h("a", { href: url, download: name });
  document.body.append(a); a.click(); a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
function csvCell(v) {
  const t = v === null || v === undefined ? "" : String(v);
  return /[",\n\r]/.test(t) ? '"' + t.replace(/"/g, '""') + '"' : t;
}
function toCSV(header, rows) { return [header, ...rows].map(r => r.map(csvCell).join(",")).join("\r\n") + "\r\n"; }

// ---- API -------------------------------------------------------------------------------------
class APIError extends Error { constructor(code, msg, status) { super(msg); this.code = code; this.status = status; } }
async function api(path, body) {
  const opts = { method: body === undefined ? "GET" : "POST", credentials: "same-origin", headers: {} };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    if (state.session) opts.headers["X-CSRF-Token"] = state.session.csrf;
    opts.body = JSON.stringify(body);
  }
  const r = await fetch("/console/api/" + path, opts);
  const text = await r.text();
  let data = {};
  try { data = text ? JSON.parse(text) : {}; } catch (e) { throw new APIError("InternalFailure", "The server answered something that is not JSON.", r.status); }
  if (!r.ok) {
    if (r.status === 401 && path !== "signin") { state.session = null; route(); }
    const code = String(data.__type || "Error").split("#").pop();
    throw new APIError(code, data.message || data.Message || r.statusText, r.status);
  }
  return data;
}
const ct = (op, body) => api("call/cloudtrail/" + op, body || {});
const logsAPI = (op, body) => api("call/logs/" + op, body || {});
function errorBox(e) { return h("p", { class: "error", role: "alert" }, `${e.code || "Error"}: ${e.message}`); }
// unavailable tells an operation this server does not serve (yet) from a failure of one it does.
function unavailable(e) { return !!e && /^(UnknownOperation|UnknownService|InvalidAction|NotImplemented|UnsupportedOperation)/.test(e.code || ""); }

// ---- JSON rendering --------------------------------------------------------------------------
function jsonNodes(v, indent) {
  const out = [];
  const ind = "  ".repeat(indent);
  if (v === null || typeof v === "boolean") out.push(h("span", { class: "j-lit" }, String(v)));
  else if (typeof v === "number") out.push(h("span", { class: "j-num" }, String(v)));
  else if (typeof v === "string") out.push(h("span", { class: "j-str" }, JSON.stringify(v)));
  else if (Array.isArray(v)) {
    if (!v.length) out.push("[]");
    else {
      out.push("[\n");
      v.forEach((x, i) => { out.push(ind + "  ", ...jsonNodes(x, indent + 1), i < v.length - 1 ? ",\n" : "\n"); });
      out.push(ind + "]");
    }
  } else {
    const ks = Object.keys(v);
    if (!ks.length) out.push("{}");
    else {
      out.push("{\n");
      ks.forEach((k, i) => { out.push(ind + "  ", h("span", { class: "j-key" }, JSON.stringify(k)), ": ", ...jsonNodes(v[k], indent + 1), i < ks.length - 1 ? ",\n" : "\n"); });
      out.push(ind + "}");
    }
  }
  return out;
}
let lastFocus = null;
function showJSON(title, obj) {
  const dlg = document.getElementById("detail");
  document.getElementById("detail-title").textContent = title;
  const pre = document.getElementById("detail-json");
  pre.replaceChildren(...jsonNodes(obj, 0));
  dlg.dataset.text = JSON.stringify(obj, null, 2);
  lastFocus = document.activeElement;
  dlg.showModal();
  document.getElementById("detail-close").focus();
}
document.getElementById("detail-close").addEventListener("click", () => document.getElementById("detail").close());
document.getElementById("detail").addEventListener("close", () => { if (lastFocus) lastFocus.focus(); });
document.getElementById("detail-copy").addEventListener("click", async () => {
  const dlg = document.getElementById("detail"), btn = document.getElementById("detail-copy");
  try { await navigator.clipboard.writeText(dlg.dataset.text); btn.textContent = "Copied"; }
  catch (e) {
    const r = document.createRange(); r.selectNodeContents(document.getElementById("detail-json"));
    const sel = getSelection(); sel.removeAllRanges(); sel.addRange(r); btn.textContent = "Selected: press Ctrl+C";
  }
  announce(btn.textContent);
  setTimeout(() => { btn.textContent = "Copy JSON"; }, 2000);
});

// ---- charts (inline SVG) -----------------------------------------------------------------------
// chart draws bars or a line of values against labels; opts.baseline (a number) and
// opts.window ([fromIndex, toIndex]) mark an insight's baseline and window.
function chart(labels, values, opts) {
  opts = opts || {};
  const W = 1000, H = opts.height || 230, L = 46, R = 12, T = 12, B = 42;
  const raw = Math.max(1, ...values, opts.baseline || 0);
  const mag = Math.pow(10, Math.floor(Math.log10(raw / 4)));
  const stepV = [1, 2, 2.5, 5, 10].map(m => m * mag).find(v => v * 4 >= raw) || raw / 4;
  const max = stepV * 4;
  const n = Math.max(values.length, 1);
  const x = i => L + (W - L - R) * (opts.kind === "line" ? (n === 1 ? 0.5 : i / (n - 1)) : i / n);
  const y = v => T + (H - T - B) * (1 - v / max);
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": opts.label || "chart" });
  svg.append(s("title", {}, opts.label || "chart"));
  if (opts.window) {
    const [a, b] = opts.window;
    svg.append(s("rect", { class: "window", x: x(a), y: T, width: Math.max(4, x(b) - x(a)), height: H - T - B }));
  }
  for (let k = 0; k <= 4; k++) {
    const v = max * k / 4, yy = y(v);
    svg.append(s("line", { class: "axis", x1: L, x2: W - R, y1: yy, y2: yy }));
    svg.append(s("text", { x: L - 6, y: yy + 4, "text-anchor": "end" }, Number.isInteger(v) ? v : +v.toFixed(2)));
  }
  if (opts.kind === "line") {
    svg.append(s("polyline", { class: "line", points: values.map((v, i) => `${x(i)},${y(v)}`).join(" ") }));
  } else {
    const slot = (W - L - R) / n, bw = Math.max(1, Math.min(slot - 2, 90));
    values.forEach((v, i) => {
      svg.append(s("rect", { class: "bar", x: x(i) + (slot - bw) / 2, y: y(v), width: bw, height: Math.max(0, H - B - y(v)) }, s("title", {}, `${labels[i]}: ${v}`)));
    });
  }
  if (opts.baseline !== undefined) svg.append(s("line", { class: "base", x1: L, x2: W - R, y1: y(opts.baseline), y2: y(opts.baseline) }));
  const step = Math.max(1, Math.ceil(n / 8));
  labels.forEach((lab, i) => {
    if (i % step) return;
    const t = String(lab);
    svg.append(s("text", { x: x(i) + (opts.kind === "line" ? 0 : (W - L - R) / n / 2), y: H - B + 16, "text-anchor": "middle" }, t.length > 16 ? t.slice(0, 15) + "…" : t));
  });
  return h("div", { class: "chart" }, svg);
}

// ---- sign-in -----------------------------------------------------------------------------------
function signInPage() {
  document.getElementById("topbar").hidden = true;
  const id = h("input", { type: "text", id: "akid", name: "accessKeyId", autocomplete: "username", required: true, spellcheck: "false", autocapitalize: "off" });
  const secret = h("input", { type: "password", id: "secret", name: "secret", autocomplete: "current-password", required: true });
  const err = h("p", { id: "signin-error", class: "error", role: "alert" });
  const btn = h("button", { class: "primary", type: "submit", id: "signin-btn" }, "Sign in");
  // method=post: should the form ever be submitted without this script, the secret still never lands in a URL.
  const form = h("form", { id: "signin-form", class: "panel signin", method: "post", action: "/console/api/signin", "aria-labelledby": "signin-title" },
    h("h1", { id: "signin-title" }, "Sign in to OpenTrail"),
    h("p", { class: "muted" }, "Use an access key. The secret is checked once on the server and never kept in this browser."),
    field("Access key ID", id), field("Secret access key", secret), err, btn);
  form.addEventListener("submit", async ev => {
    ev.preventDefault();
    err.textContent = ""; btn.disabled = true;
    try {
      state.session = await api("signin", { accessKeyId: id.value.trim(), secret: secret.value });
      secret.value = "";
      go(!location.hash || location.hash === "#/" ? "#/dashboard" : location.hash);
    } catch (e) { err.textContent = e.message; secret.value = ""; secret.focus(); }
    finally { btn.disabled = false; }
  });
  main.replaceChildren(form);
  id.focus();
}
document.getElementById("signout").addEventListener("click", async () => {
  try { await api("signout", {}); } catch (e) { /* the session may have expired already */ }
  state.session = null; go("#/");
});

// ---- routing -----------------------------------------------------------------------------------
const pages = { dashboard: dashboardPage, events: eventsPage, lake: lakePage, trails: trailsPage, stores: storesPage, logs: logsPage, insights: insightsPage, findings: findingsPage };
const titles = { dashboard: "Dashboard", events: "Event history", lake: "Lake", trails: "Trails", stores: "Event data stores", logs: "Log groups", insights: "Insights", findings: "Findings" };
// go shows the page of hash: through hashchange when the hash changes, at once when it does not.
function go(hash) { if (location.hash !== hash) location.hash = hash; else route(); }
// onLeave runs f when the page is left (at once if it was left already).
function onLeave(f, gen) { if (gen !== state.gen) f(); else state.cleanup.push(f); }
async function route() {
  const gen = ++state.gen;
  for (const f of state.cleanup.splice(0)) f();
  if (!state.session) {
    try { state.session = await api("session"); } catch (e) { state.session = null; }
    if (state.session && !state.session.csrf) state.session = null;
    if (gen !== state.gen) return;
  }
  if (!state.session) { document.title = "Sign in · OpenTrail"; signInPage(); return; }
  document.getElementById("topbar").hidden = false;
  const ss = state.session;
  document.getElementById("who").replaceChildren(h("div", {}, ss.user || "root", " · ", h("span", {}, ss.role)), h("div", {}, "account " + ss.account));
  drawRegions();
  const name = (location.hash.match(/^#\/(\w+)/) || [])[1];
  const page = pages[name] ? name : "dashboard";
  for (const a of document.querySelectorAll("header nav a")) {
    if (a.getAttribute("href") === "#/" + page) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  document.title = `${titles[page]} · ${ss.region} · OpenTrail`;
  state.page = page;
  const view = h("div", { class: "view" }, h("h1", {}, titles[page], h("span", { class: "h1-region", id: "page-region" }, ss.region)));
  main.replaceChildren(view);
  try { await pages[page](view, gen); } catch (e) { view.append(errorBox(e)); }
  if (gen !== state.gen) return;
  if (document.activeElement === document.body || !main.contains(document.activeElement)) main.focus({ preventScroll: true });
}
window.addEventListener("hashchange", route);

// ---- region picker -----------------------------------------------------------------------------
// The session acts in one region, kept on the server: every page's calls and streams use it, and
// a reload keeps it. The picker offers the regions the server accepts or, when it accepts any,
// the account's regions and a name typed in.
const regionSel = document.getElementById("region"), regionOther = document.getElementById("region-other"),
  regionGo = document.getElementById("region-go"), regionErr = document.getElementById("region-error");
const OTHER_REGION = "*other"; // never a region name
let regionGen = 0;
async function drawRegions() {
  let c;
  try { c = await api("regions"); } catch (e) { c = { region: state.session?.region, regions: [], other: false }; }
  if (!state.session || !c.region) return;
  if (regionSel.value === OTHER_REGION && !regionOther.hidden) return; // the user is typing a name
  regionSel.replaceChildren(...(c.regions.includes(c.region) ? c.regions : [c.region, ...c.regions]).map(r => h("option", { value: r }, r)),
    c.other ? h("option", { value: OTHER_REGION }, "Other region…") : null);
  regionSel.value = c.region;
}
function showOtherRegion(on) { regionOther.hidden = regionGo.hidden = !on; if (on) regionOther.focus(); }
async function setRegion(region) {
  const gen = ++regionGen;
  regionErr.textContent = "";
  try {
    const ss = await api("region", { region });
    if (gen !== regionGen) return; // a later choice wins
    state.session = ss;
    showOtherRegion(false);
    announce(`Region ${ss.region}`);
    await route();
    regionSel.focus();
  } catch (e) {
    if (gen !== regionGen) return;
    regionErr.textContent = e.message;
    if (regionOther.hidden && state.session) regionSel.value = state.session.region;
  }
}
regionSel.addEventListener("change", () => {
  if (regionSel.value === OTHER_REGION) { regionErr.textContent = ""; showOtherRegion(true); return; }
  showOtherRegion(false);
  setRegion(regionSel.value);
});
document.getElementById("region-form").addEventListener("submit", ev => {
  ev.preventDefault();
  setRegion(regionSel.value === OTHER_REGION ? regionOther.value.trim() : regionSel.value);
});
regionOther.addEventListener("keydown", ev => { if (ev.key === "Escape") { showOtherRegion(false); regionSel.value = state.session.region; regionSel.focus(); } });

// eventStream opens a server-sent event stream, closed when the page changes.
function eventStream(url, handlers, gen) {
  const es = new EventSource(url);
  for (const [k, f] of Object.entries(handlers)) {
    if (k === "open") es.onopen = f;
    else if (k === "fail") es.onerror = f;
    else es.addEventListener(k, ev => f(JSON.parse(ev.data)));
  }
  onLeave(() => es.close(), gen);
  return es;
}

// ---- dashboard ---------------------------------------------------------------------------------
async function dashboardPage(main, gen) {
  const now = Date.now();
  let hourAgo = Math.floor(now / 60000) * 60000 - 59 * 60000;
  const counts = new Array(60).fill(0);
  const sources = new Map(), names = new Map();
  let sampled = 0, truncated = false, token;
  const chartBox = h("div", { id: "dash-chart" });
  const note = h("p", { class: "muted" });
  const srcList = h("ul", { class: "toplist", id: "dash-sources" }), nameList = h("ul", { class: "toplist", id: "dash-names" });
  const trailsBox = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  const lagBox = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  const insightBox = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  const findingsPanel = h("section", { class: "panel", "aria-labelledby": "dash-f", hidden: true }, h("h2", { id: "dash-f" }, "Recent findings"));
  main.append(
    h("section", { class: "panel", "aria-labelledby": "dash-epm" }, h("h2", { id: "dash-epm" }, "Events per minute, last hour ", h("span", { class: "badge good" }, "live")), chartBox, note),
    h("div", { class: "grid" },
      h("section", { class: "panel", "aria-labelledby": "dash-s" }, h("h2", { id: "dash-s" }, "Top event sources"), srcList),
      h("section", { class: "panel", "aria-labelledby": "dash-n" }, h("h2", { id: "dash-n" }, "Top event names"), nameList),
      h("section", { class: "panel", "aria-labelledby": "dash-i" }, h("h2", { id: "dash-i" }, "Insights, last 7 days"), insightBox),
      h("section", { class: "panel", "aria-labelledby": "dash-l" }, h("h2", { id: "dash-l" }, "Projection lag"), lagBox),
      findingsPanel),
    h("section", { class: "panel", "aria-labelledby": "dash-t" }, h("h2", { id: "dash-t" }, "Trails"), trailsBox));
  // slide keeps the chart on the last hour as minutes pass.
  const slide = () => {
    const k = Math.floor((Date.now() - hourAgo) / 60000) - 59;
    if (k <= 0) return false;
    counts.splice(0, Math.min(k, 60)); while (counts.length < 60) counts.push(0);
    hourAgo += k * 60000;
    return true;
  };
  const add = e => {
    const i = Math.floor((e.EventTime * 1000 - hourAgo) / 60000);
    if (i >= 0 && i < 60) counts[i]++;
    sources.set(e.EventSource, (sources.get(e.EventSource) || 0) + 1);
    names.set(e.EventName, (names.get(e.EventName) || 0) + 1);
  };
  const draw = () => {
    const labels = counts.map((_, i) => { const d = new Date(hourAgo + i * 60000); return `${pad(d.getHours())}:${pad(d.getMinutes())}`; });
    chartBox.replaceChildren(chart(labels, counts, { label: "Events per minute over the last hour" }));
    note.textContent = truncated ? `Counted from the newest ${sampled} events of the hour, then live.` : `${counts.reduce((a, b) => a + b, 0)} events in the last hour.`;
    const top = (m, el) => el.replaceChildren(...[...m].sort((a, b) => b[1] - a[1]).slice(0, 6).map(([k, v]) => h("li", {}, h("span", { title: k }, k || "—"), h("span", {}, v))));
    top(sources, srcList); top(names, nameList);
    if (!sources.size) srcList.replaceChildren(h("li", { class: "muted" }, "No events in the last hour."));
    if (!names.size) nameList.replaceChildren(h("li", { class: "muted" }, "No events in the last hour."));
  };
  for (let p = 0; p < 10; p++) {
    const out = await ct("LookupEvents", { StartTime: hourAgo / 1000, MaxResults: 50, NextToken: token });
    for (const e of out.Events || []) { add(e); sampled++; }
    token = out.NextToken;
    if (!token) break;
  }
  truncated = !!token;
  draw();
  eventStream("/console/api/live", { events: evs => { slide(); evs.forEach(add); draw(); } }, gen);
  const timer = setInterval(() => { if (slide()) draw(); }, 10000);
  onLeave(() => clearInterval(timer), gen);
  // Trails with their status.
  ct("DescribeTrails", {}).then(async out => {
    const trails = out.trailList || [];
    if (!trails.length) { trailsBox.replaceChildren(h("p", { class: "muted" }, `No trails in ${state.session.region}. `, h("a", { href: "#/trails" }, "Create one"), ".")); return; }
    const rows = await Promise.all(trails.map(async t => {
      let st = {};
      try { st = await ct("GetTrailStatus", { Name: t.TrailARN }); } catch (e) { st = { err: e.message }; }
      return h("tr", {}, h("td", {}, t.Name), h("td", {}, st.IsLogging ? h("span", { class: "badge good" }, "Logging") : h("span", { class: "badge warn" }, "Stopped")),
        h("td", { class: "nowrap" }, st.LatestDeliveryTime ? fmtTime(st.LatestDeliveryTime) : "—"),
        h("td", { class: st.LatestDeliveryError ? "bad" : "muted" }, st.LatestDeliveryError || st.err || "none"));
    }));
    trailsBox.replaceChildren(h("div", { class: "table-wrap" }, h("table", {}, h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Trail"), h("th", { scope: "col" }, "Status"), h("th", { scope: "col" }, "Last delivery"), h("th", { scope: "col" }, "Last error"))), h("tbody", {}, rows))));
  }).catch(e => trailsBox.replaceChildren(errorBox(e)));
  // Projection lag, node-wide: entries and seconds for the operator, freshness for a tenant.
  const drawLag = async () => {
    try {
      const out = await api("lag");
      if (!out.reported) { lagBox.replaceChildren(h("p", { class: "muted" }, "This server does not report projection lag to the console.")); return; }
      lagBox.replaceChildren(h("ul", { class: "toplist", id: "dash-lag" }, out.projections.map(p => h("li", { "data-projection": p.name },
        h("span", {}, projectionNames[p.name] || p.name.replace(/_/g, " ")),
        h("span", { class: p.caughtUp ? "good" : "warn" }, out.detail
          ? `${p.entries} ${p.entries === 1 ? "entry" : "entries"}${p.caughtUp ? "" : ", oldest " + fmtSeconds(p.behindSeconds)}`
          : p.caughtUp ? "caught up" : `about ${fmtSeconds(p.behindSeconds)} behind`)))),
      h("p", { class: "muted" }, out.detail ? "Journal entries each projection has yet to apply, node-wide, and how long the oldest has waited."
        : "How fresh each view of your data is: new events show there once their projection has caught up."));
    } catch (e) { lagBox.replaceChildren(errorBox(e)); }
  };
  drawLag();
  const lagTimer = setInterval(drawLag, 10000);
  onLeave(() => clearInterval(lagTimer), gen);
  ct("LookupEvents", { EventCategory: "insight", StartTime: (now - 7 * 86400000) / 1000, MaxResults: 50 }).then(out => {
    const evs = (out.Events || []).filter(e => JSON.parse(e.CloudTrailEvent).insightDetails?.state === "Start");
    insightBox.replaceChildren(h("div", { class: "stat" }, String(evs.length)), h("p", { class: "muted" }, evs.length ? h("a", { href: "#/insights" }, "See insights") : "No insights opened."));
  }).catch(e => insightBox.replaceChildren(h("p", { class: "muted" }, e.message)));
  api("call/opentrail/ListFindings", { MaxResults: 5, Region: state.session.region }).then(out => {
    const fs = out.Findings || [];
    if (!fs.length) return;
    findingsPanel.hidden = false;
    findingsPanel.append(h("ul", { class: "toplist findlist", id: "dash-findings" }, fs.map(f => h("li", {},
      h("div", {}, h("a", { href: "#/findings" }, f.RuleTitle || f.RuleId), h("div", { class: "muted" }, fmtTime(f.Time))), h("div", {}, levelBadge(f.Level))))));
  }).catch(e => { if (!unavailable(e)) { findingsPanel.hidden = false; findingsPanel.append(errorBox(e)); } });
}
const projectionNames = { event_history: "Event history", lake: "Lake", trail_delivery: "Trail delivery", log_groups: "Log groups", insights: "Insights", detections: "Detections" };
function fmtSeconds(sec) {
  if (sec < 60) return `${+sec.toFixed(1)} s`;
  if (sec < 3600) return `${Math.round(sec / 60)} min`;
  return `${+(sec / 3600).toFixed(1)} h`;
}
function levelBadge(level) {
  const l = String(level || "").toLowerCase();
  return h("span", { class: "badge " + (l === "critical" || l === "high" ? "bad" : l === "medium" ? "warn" : "muted") }, l || "—");
}

// ---- event history -----------------------------------------------------------------------------
const lookupAttrs = ["EventName", "EventSource", "Username", "ResourceName", "ResourceType", "EventId", "AccessKeyId", "ReadOnly"];
const ranges = [["15m", "Last 15 minutes", 900], ["1h", "Last hour", 3600], ["12h", "Last 12 hours", 43200], ["1d", "Last day", 86400],
  ["7d", "Last 7 days", 604800], ["30d", "Last 30 days", 2592000], ["90d", "Last 90 days", 7776000], ["custom", "Custom range", 0]];
const eventCols = ["Event time", "User name", "Event name", "Event source", "Resources", "Source IP", "Error code"];
const hiddenCols = new Set(JSON.parse(localStorage.getItem("opentrail.hiddenColumns") || "[]"));
function applyColumns(table) {
  for (const row of table.rows) [...row.cells].forEach((c, i) => { if (row.cells.length === eventCols.length) c.hidden = hiddenCols.has(i); });
}
function columnsMenu(table) {
  const box = h("details", { class: "columns", id: "ev-columns" }, h("summary", {}, "Columns"),
    h("fieldset", {}, h("legend", { class: "sr-only" }, "Columns shown"), eventCols.map((c, i) => {
      const cb = h("input", { type: "checkbox", id: "col-" + i, checked: !hiddenCols.has(i) });
      cb.addEventListener("change", () => {
        if (cb.checked) hiddenCols.delete(i); else hiddenCols.add(i);
        localStorage.setItem("opentrail.hiddenColumns", JSON.stringify([...hiddenCols]));
        applyColumns(table);
      });
      return h("label", { class: "check", for: "col-" + i }, cb, c);
    })));
  return box;
}
function eventRow(e, onOpen) {
  let rec = {};
  try { rec = JSON.parse(e.CloudTrailEvent); } catch (x) { /* shown raw */ }
  const res = (e.Resources || []).map(r => r.ResourceName).filter(Boolean).join(", ");
  const tr = h("tr", { class: "clickable", tabindex: "0", "data-event-id": e.EventId, "aria-label": `${e.EventName} by ${e.Username || "unknown"} at ${fmtTime(e.EventTime)}; open details` },
    h("td", { class: "nowrap" }, fmtTime(e.EventTime)), h("td", {}, e.Username || ""), h("td", {}, e.EventName || ""), h("td", { class: "opt2" }, e.EventSource || ""),
    h("td", { class: "opt" }, res), h("td", { class: "opt mono" }, rec.sourceIPAddress || ""), h("td", { class: rec.errorCode ? "bad" : "" }, rec.errorCode || ""));
  [...tr.cells].forEach((c, i) => { c.hidden = hiddenCols.has(i); });
  const open = () => onOpen(e, rec);
  activate(tr, open);
  return tr;
}
function eventsTable(id) {
  const tbody = h("tbody");
  const cols = eventCols;
  const table = h("table", { id }, h("caption", { class: "sr-only" }, "Events; press Enter on a row to open it"),
    h("thead", {}, h("tr", {}, cols.map((c, i) => h("th", { scope: "col", class: i === 4 || i === 5 ? "opt" : i === 3 ? "opt2" : null }, c)))), tbody);
  applyColumns(table);
  return { wrap: h("div", { class: "table-wrap" }, table), tbody, table };
}
async function eventsPage(main, gen) {
  const q = new URLSearchParams(location.hash.split("?")[1] || "");
  const attr = h("select", { id: "ev-attr" }, h("option", { value: "" }, "Any (no filter)"), lookupAttrs.map(a => h("option", { value: a, selected: q.get("attr") === a }, a)));
  const value = h("input", { type: "text", id: "ev-value", value: q.get("value") || "", placeholder: "e.g. CreateTrail" });
  const range = h("select", { id: "ev-range" }, ranges.map(([k, l]) => h("option", { value: k, selected: (q.get("range") || "1d") === k }, l)));
  const from = h("input", { type: "datetime-local", id: "ev-from" }), to = h("input", { type: "datetime-local", id: "ev-to" });
  const customBox = h("div", { class: "toolbar", hidden: range.value !== "custom" }, field("From", from), field("To", to));
  range.addEventListener("change", () => { customBox.hidden = range.value !== "custom"; });
  const live = h("input", { type: "checkbox", id: "ev-live" });
  const apply = h("button", { class: "primary", type: "submit", id: "ev-apply" }, "Search");
  const dlJSON = h("button", { type: "button", id: "ev-dl-json" }, "Download JSON"), dlCSV = h("button", { type: "button", id: "ev-dl-csv" }, "Download CSV");
  const status = h("p", { class: "status muted", id: "ev-status", role: "status" });
  const { wrap, tbody, table } = eventsTable("ev-table");
  const prev = h("button", { type: "button", id: "ev-prev", disabled: true }, "← Newer"), next = h("button", { type: "button", id: "ev-next", disabled: true }, "Older →");
  const pageNo = h("span", { class: "muted" });
  const form = h("form", { class: "toolbar", role: "search", "aria-label": "Filter events" },
    field("Lookup attribute", attr), field("Value", value), field("Time range", range), apply,
    h("label", { class: "check", for: "ev-live" }, live, "Live"), h("span", { class: "spacer" }), columnsMenu(table), dlJSON, dlCSV);
  main.append(h("section", { class: "panel" }, form, customBox, status, wrap, h("div", { class: "pager" }, pageNo, prev, next)));
  let tokens = [undefined], pageIdx = 0, current = [];
  const open = (e, rec) => showJSON(`${e.EventName} · ${e.EventId}`, rec);
  const request = () => {
    const body = { MaxResults: 50 };
    if (attr.value && value.value.trim()) body.LookupAttributes = [{ AttributeKey: attr.value, AttributeValue: value.value.trim() }];
    if (range.value === "custom") {
      if (from.value) body.StartTime = new Date(from.value).getTime() / 1000;
      if (to.value) body.EndTime = new Date(to.value).getTime() / 1000;
    } else body.StartTime = Math.floor(Date.now() / 1000) - ranges.find(r => r[0] === range.value)[2];
    return body;
  };
  // Live mode opens its stream before the page is looked up, and holds what the stream brings
  // until the page is shown: an event appended in between is then neither lost nor shown twice.
  let es = null, liveOpen = false, loading = false, pending = [], seen = new Set(), pageNote = "";
  const showStatus = () => { status.textContent = [pageNote, liveOpen ? "Live: new matching events appear at the top." : ""].filter(Boolean).join(" · "); };
  const addLive = evs => {
    let n = 0;
    for (const e of evs) {
      if (seen.has(e.EventId)) continue;
      seen.add(e.EventId); current.unshift(e); n++;
      const empty = tbody.querySelector("td.empty"); if (empty) empty.parentElement.remove();
      const tr = eventRow(e, open); tr.classList.add("new"); tbody.prepend(tr);
    }
    if (n) announce(`${n} new event${n > 1 ? "s" : ""}`);
  };
  const load = async () => {
    loading = true;
    status.textContent = "Loading…";
    const t0 = performance.now();
    try {
      const out = await ct("LookupEvents", { ...request(), NextToken: tokens[pageIdx] });
      current = out.Events || [];
      seen = new Set(current.map(e => e.EventId));
      tbody.replaceChildren(...current.map(e => eventRow(e, open)));
      if (!current.length) tbody.replaceChildren(h("tr", {}, h("td", { colspan: 7, class: "empty" }, "No events match.")));
      tokens[pageIdx + 1] = out.NextToken;
      next.disabled = !out.NextToken; prev.disabled = pageIdx === 0;
      pageNo.textContent = `Page ${pageIdx + 1}`;
      pageNote = `${current.length} events on this page · ${Math.round(performance.now() - t0)} ms`;
      showStatus();
    } catch (e) { pageNote = ""; status.replaceChildren(errorBox(e)); }
    finally { loading = false; if (pending.length) { addLive(pending); pending = []; } }
  };
  const stopLive = () => { if (es) { es.close(); es = null; } liveOpen = false; pending = []; };
  onLeave(stopLive, gen);
  const startLive = () => {
    stopLive();
    const p = new URLSearchParams();
    if (attr.value && value.value.trim()) { p.set("attr", attr.value); p.set("value", value.value.trim()); }
    es = eventStream("/console/api/live?" + p, {
      open: () => { liveOpen = true; if (!loading) showStatus(); },
      events: evs => { if (pageIdx !== 0) return; if (loading) pending.push(...evs); else addLive(evs); },
      failure: e => { liveOpen = false; status.replaceChildren(errorBox(e)); },
    }, gen);
  };
  form.addEventListener("submit", ev => {
    ev.preventDefault();
    const p = new URLSearchParams({ attr: attr.value, value: value.value.trim(), range: range.value });
    history.replaceState(null, "", "#/events?" + p);
    tokens = [undefined]; pageIdx = 0;
    if (live.checked) startLive();
    load();
  });
  live.addEventListener("change", () => {
    if (live.checked) { pageIdx = 0; tokens = [undefined]; startLive(); load(); }
    else { stopLive(); showStatus(); announce("Live mode off"); }
  });
  next.addEventListener("click", () => { stopLive(); live.checked = false; pageIdx++; load(); });
  prev.addEventListener("click", () => { pageIdx = Math.max(0, pageIdx - 1); load(); });
  dlJSON.addEventListener("click", () => download("events.json", "application/json",
    JSON.stringify({ Records: current.map(e => JSON.parse(e.CloudTrailEvent)) }, null, 2)));
  dlCSV.addEventListener("click", () => download("events.csv", "text/csv", toCSV(
    ["eventTime", "userName", "eventName", "eventSource", "resources", "sourceIPAddress", "errorCode", "eventId"],
    current.map(e => { const r = JSON.parse(e.CloudTrailEvent); return [r.eventTime, e.Username, e.EventName, e.EventSource, (e.Resources || []).map(x => x.ResourceName).join(" "), r.sourceIPAddress, r.errorCode, e.EventId]; }))));
  await load();
}

// ---- Lake --------------------------------------------------------------------------------------
const samples = [
  ["Top event names, last day", "SELECT eventName, count(*) AS events\nFROM $EDS\nWHERE eventTime > '$DAYAGO'\nGROUP BY eventName\nORDER BY events DESC\nLIMIT 10"],
  ["Calls per user", "SELECT userIdentity.arn AS principal, count(*) AS calls\nFROM $EDS\nGROUP BY userIdentity.arn\nORDER BY calls DESC\nLIMIT 20"],
  ["Failed calls (error codes)", "SELECT eventTime, eventSource, eventName, errorCode, sourceIPAddress\nFROM $EDS\nWHERE errorCode IS NOT NULL\nORDER BY eventTime DESC\nLIMIT 50"],
  ["Console sign-ins", "SELECT eventTime, userIdentity.arn AS principal, sourceIPAddress, responseElements\nFROM $EDS\nWHERE eventName = 'ConsoleLogin'\nORDER BY eventTime DESC"],
  ["Events by source IP", "SELECT sourceIPAddress, count(*) AS events\nFROM $EDS\nGROUP BY sourceIPAddress\nORDER BY events DESC\nLIMIT 10"],
];
function utcSQL(d) { return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`; }
function storeID(arn) { return String(arn).split("/").pop(); }
function rowsOf(out) { return (out.QueryResultRows || []).map(r => r.map(c => Object.entries(c)[0] || ["", ""])); }
async function lakePage(main, gen) {
  const stores = (await ct("ListEventDataStores", {})).EventDataStores || [];
  const store = h("select", { id: "lake-store" }, stores.map(s => h("option", { value: storeID(s.EventDataStoreArn) }, `${s.Name} (${storeID(s.EventDataStoreArn)})`)));
  const sample = h("select", { id: "lake-sample" }, h("option", { value: "" }, "Insert a sample query…"), samples.map(([n], i) => h("option", { value: String(i) }, n)));
  const sql = h("textarea", { id: "lake-sql", rows: 8, spellcheck: "false", "aria-describedby": "lake-hint" });
  const run = h("button", { class: "primary", type: "button", id: "lake-run" }, "Run");
  const cancel = h("button", { type: "button", id: "lake-cancel", disabled: true }, "Cancel");
  const status = h("p", { class: "status", id: "lake-status", role: "status" });
  const results = h("div", { id: "lake-results" });
  const chartBox = h("div", { id: "lake-chart-box" });
  const history = h("div", { id: "lake-history" });
  const fill = i => { const id = store.value || "EVENT_DATA_STORE_ID"; sql.value = samples[i][1].replace("$EDS", id).replace("$DAYAGO", utcSQL(new Date(Date.now() - 86400000))); };
  sample.addEventListener("change", () => { if (sample.value !== "") fill(Number(sample.value)); sample.value = ""; sql.focus(); });
  if (!stores.length) {
    main.append(h("section", { class: "panel" }, h("p", { class: "empty" }, `This account has no event data stores in ${state.session.region}. Create one with CreateEventDataStore to query events with SQL.`)));
    return;
  }
  fill(0);
  main.append(
    h("section", { class: "panel", "aria-labelledby": "lake-ed" }, h("h2", { id: "lake-ed" }, "Query"),
      h("div", { class: "toolbar" }, field("Event data store", store), field("Samples", sample)),
      h("label", { for: "lake-sql" }, "SQL"), sql,
      h("p", { id: "lake-hint", class: "muted" }, "Ctrl+Enter runs the query. Use the store ID after FROM."),
      h("div", { class: "toolbar" }, run, cancel), status),
    h("section", { class: "panel", "aria-labelledby": "lake-res" }, h("h2", { id: "lake-res" }, "Results"), results, chartBox),
    h("section", { class: "panel", "aria-labelledby": "lake-his" }, h("h2", { id: "lake-his" }, "Query history"), history));
  let queryId = null;
  const loadHistory = async () => {
    try {
      const out = await ct("ListQueries", { EventDataStore: store.value, MaxResults: 20 });
      const qs = out.Queries || [];
      history.replaceChildren(qs.length ? h("div", { class: "table-wrap" }, h("table", {}, h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Started"), h("th", { scope: "col" }, "Status"), h("th", { scope: "col" }, "Query ID"))),
        h("tbody", {}, qs.map(q => {
          const tr = h("tr", { class: "clickable", tabindex: "0" }, h("td", { class: "nowrap" }, fmtTime(q.CreationTime)), h("td", {}, q.QueryStatus), h("td", { class: "mono" }, q.QueryId));
          const openQ = async () => { try { const d = await ct("DescribeQuery", { EventDataStore: store.value, QueryId: q.QueryId }); sql.value = d.QueryString || sql.value; showResults(q.QueryId, d); } catch (e) { status.replaceChildren(errorBox(e)); } };
          activate(tr, openQ);
          return tr;
        })))) : h("p", { class: "muted" }, "No queries yet."));
    } catch (e) { history.replaceChildren(errorBox(e)); }
  };
  store.addEventListener("change", loadHistory);
  const showResults = async (id, desc) => {
    results.replaceChildren(); chartBox.replaceChildren();
    if (desc.QueryStatus !== "FINISHED") { status.replaceChildren(h("span", { class: desc.QueryStatus === "FAILED" ? "error" : "muted" }, `${desc.QueryStatus}${desc.ErrorMessage ? ": " + desc.ErrorMessage : ""}`)); return; }
    let tokens = [undefined], idx = 0, all = [];
    const page = async () => {
      const out = await ct("GetQueryResults", { QueryId: id, NextToken: tokens[idx], MaxQueryResults: 100 });
      const rows = rowsOf(out);
      tokens[idx + 1] = out.NextToken;
      const cols = rows.length ? rows[0].map(c => c[0]) : [];
      all = rows;
      const stats = { ...(desc.QueryStatistics || {}), ...(out.QueryStatistics || {}) };
      status.replaceChildren(h("span", { class: "good" }, "FINISHED"), ` · ${stats.TotalResultsCount ?? rows.length} rows · ${stats.ExecutionTimeInMillis ?? "?"} ms · ${stats.BytesScanned ?? 0} bytes scanned`);
      const prev = h("button", { type: "button", disabled: idx === 0 }, "← Previous"), next = h("button", { type: "button", id: "lake-next", disabled: !out.NextToken }, "Next →");
      prev.addEventListener("click", () => { idx--; page(); }); next.addEventListener("click", () => { idx++; page(); });
      const csv = h("button", { type: "button", id: "lake-csv" }, "Download CSV");
      csv.addEventListener("click", () => download(`query-${id}.csv`, "text/csv", toCSV(cols, all.map(r => r.map(c => c[1])))));
      results.replaceChildren(rows.length ? h("div", { class: "table-wrap" }, h("table", { id: "lake-table" }, h("thead", {}, h("tr", {}, cols.map(c => h("th", { scope: "col" }, c)))),
        h("tbody", {}, rows.map(r => h("tr", {}, r.map(c => h("td", {}, c[1]))))))) : h("p", { class: "empty" }, "The query returned no rows."),
      h("div", { class: "pager" }, csv, prev, next));
      drawChart(cols, rows);
    };
    const drawChart = (cols, rows) => {
      chartBox.replaceChildren();
      if (!rows.length || cols.length < 2) return;
      const numeric = cols.filter((c, i) => rows.every(r => r[i][1] !== "" && !isNaN(Number(r[i][1]))));
      if (!numeric.length) return;
      const labelCol = cols.find(c => !numeric.includes(c)) || cols[0];
      const valueSel = h("select", { id: "lake-chart-value" }, numeric.map(c => h("option", { value: c }, c)));
      const labelSel = h("select", { id: "lake-chart-label" }, cols.map(c => h("option", { value: c, selected: c === labelCol }, c)));
      const kindSel = h("select", { id: "lake-chart-kind" }, h("option", { value: "bar" }, "Bar"), h("option", { value: "line", selected: /time|date|minute|hour|day/i.test(labelCol) }, "Line"));
      const box = h("div", { id: "lake-chart" });
      const draw = () => {
        const li = cols.indexOf(labelSel.value), vi = cols.indexOf(valueSel.value);
        box.replaceChildren(chart(rows.map(r => r[li][1]), rows.map(r => Number(r[vi][1])), { kind: kindSel.value, label: `${valueSel.value} by ${labelSel.value}` }));
      };
      [valueSel, labelSel, kindSel].forEach(x => x.addEventListener("change", draw));
      chartBox.append(h("h2", {}, "Chart"), h("div", { class: "toolbar" }, field("Label", labelSel), field("Value", valueSel), field("Kind", kindSel)), box);
      draw();
    };
    try { await page(); } catch (e) { status.replaceChildren(errorBox(e)); }
  };
  const runQuery = async () => {
    run.disabled = true; results.replaceChildren(); chartBox.replaceChildren();
    status.replaceChildren(h("span", { class: "muted" }, "Starting…"));
    try {
      const { QueryId } = await ct("StartQuery", { QueryStatement: sql.value });
      queryId = QueryId; cancel.disabled = false;
      let d;
      for (let wait = 100; ; wait = Math.min(wait * 2, 1000)) {
        d = await ct("DescribeQuery", { EventDataStore: store.value, QueryId });
        status.replaceChildren(h("span", { class: "muted" }, d.QueryStatus + "…"));
        if (!["QUEUED", "RUNNING"].includes(d.QueryStatus) || queryId !== QueryId) break;
        await new Promise(r => setTimeout(r, wait));
      }
      await showResults(QueryId, d);
      announce(`Query ${d.QueryStatus.toLowerCase()}`);
    } catch (e) { status.replaceChildren(errorBox(e)); }
    finally { run.disabled = false; cancel.disabled = true; loadHistory(); }
  };
  run.addEventListener("click", runQuery);
  sql.addEventListener("keydown", ev => { if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); runQuery(); } });
  cancel.addEventListener("click", async () => { if (queryId) { try { await ct("CancelQuery", { EventDataStore: store.value, QueryId: queryId }); } catch (e) { status.replaceChildren(errorBox(e)); } } });
  loadHistory();
}

// ---- selectors, readably -------------------------------------------------------------------------
function readableField(f) {
  const parts = [];
  const ops = { Equals: "is", NotEquals: "is not", StartsWith: "starts with", NotStartsWith: "does not start with", EndsWith: "ends with", NotEndsWith: "does not end with" };
  for (const [op, word] of Object.entries(ops)) if (f[op]) parts.push(`${word} ${f[op].join(" or ")}`);
  return `${f.Field} ${parts.join(" and ")}`;
}
function selectorsList(out) {
  const items = [];
  for (const s of out.AdvancedEventSelectors || []) items.push(h("li", {}, h("strong", {}, s.Name || "Selector"), ": ", (s.FieldSelectors || []).map(readableField).join("; ")));
  for (const s of out.EventSelectors || []) {
    const what = [s.IncludeManagementEvents !== false ? `management events (${(s.ReadWriteType || "All").toLowerCase()})` : null,
      ...(s.DataResources || []).map(d => `data events of ${d.Type} on ${d.Values.join(", ")}`)].filter(Boolean);
    const ex = (s.ExcludeManagementEventSources || []).length ? ` except ${s.ExcludeManagementEventSources.join(", ")}` : "";
    items.push(h("li", {}, "Logs ", what.join(" and "), ex));
  }
  return items.length ? h("ul", { class: "selectors" }, items) : h("p", { class: "muted" }, "No selectors.");
}
function kv(pairs) { return h("dl", { class: "kv" }, pairs.filter(p => p[1] !== undefined && p[1] !== null && p[1] !== "").map(([k, v]) => [h("dt", {}, k), h("dd", {}, v instanceof Node ? v : String(v))])); }

// ---- trails ------------------------------------------------------------------------------------
async function trailsPage(main, gen) {
  const writable = state.session.role !== "reader";
  const name = h("input", { type: "text", id: "trail-name", required: true, pattern: "[A-Za-z0-9][A-Za-z0-9._\\-]{2,127}", placeholder: "management-events" });
  const bucket = h("input", { type: "text", id: "trail-bucket", required: true, placeholder: "my-trail-bucket" });
  const multi = h("input", { type: "checkbox", id: "trail-multi", checked: true });
  const validation = h("input", { type: "checkbox", id: "trail-validation", checked: true });
  const createMsg = h("p", { class: "status", id: "trail-create-status", role: "status" });
  const form = h("form", { id: "trail-create", class: "toolbar", "aria-label": "Create a trail" }, field("Trail name", name), field("S3 bucket", bucket),
    h("label", { class: "check", for: "trail-multi" }, multi, "All regions"), h("label", { class: "check", for: "trail-validation" }, validation, "Log file validation"),
    h("button", { class: "primary", type: "submit", id: "trail-create-btn" }, "Create trail"));
  const list = h("div", { id: "trails-list" });
  const detail = h("section", { class: "panel", id: "trail-detail", hidden: true, "aria-live": "polite" });
  main.append(h("section", { class: "panel", "aria-labelledby": "tr-new" }, h("h2", { id: "tr-new" }, "Create a trail"),
    writable ? null : h("p", { class: "muted" }, "Your key is read-only; creating a trail will be refused."), form, createMsg),
  h("section", { class: "panel", "aria-labelledby": "tr-list" }, h("h2", { id: "tr-list" }, "Trails"), list), detail);
  form.addEventListener("submit", async ev => {
    ev.preventDefault(); createMsg.textContent = "";
    try {
      await ct("CreateTrail", { Name: name.value.trim(), S3BucketName: bucket.value.trim(), IsMultiRegionTrail: multi.checked, EnableLogFileValidation: validation.checked });
      createMsg.replaceChildren(h("span", { class: "good" }, `Trail ${name.value.trim()} created. Start logging to record events.`));
      name.value = ""; await load();
    } catch (e) { createMsg.replaceChildren(errorBox(e)); }
  });
  const showDetail = async t => {
    detail.hidden = false;
    detail.replaceChildren(h("h2", {}, `Trail ${t.Name}`), h("p", { class: "muted" }, "Loading…"));
    try {
      const [st, sel] = await Promise.all([ct("GetTrailStatus", { Name: t.TrailARN }), ct("GetEventSelectors", { TrailName: t.TrailARN })]);
      detail.replaceChildren(h("h2", {}, `Trail ${t.Name}`), kv([["ARN", t.TrailARN], ["Bucket", t.S3BucketName], ["Prefix", t.S3KeyPrefix], ["Home region", t.HomeRegion],
        ["All regions", t.IsMultiRegionTrail ? "yes" : "no"], ["Log file validation", t.LogFileValidationEnabled ? "on" : "off"], ["Logging", st.IsLogging ? "yes" : "no"],
        ["Last delivery", st.LatestDeliveryTime ? fmtTime(st.LatestDeliveryTime) : "—"], ["Last delivery error", st.LatestDeliveryError || "none"], ["Last digest", st.LatestDigestDeliveryTime ? fmtTime(st.LatestDigestDeliveryTime) : "—"]]),
      h("h2", {}, "Selectors"), selectorsList(sel));
    } catch (e) { detail.append(errorBox(e)); }
  };
  const load = async () => {
    const trails = (await ct("DescribeTrails", {})).trailList || [];
    if (!trails.length) { list.replaceChildren(h("p", { class: "empty" }, `No trails in ${state.session.region} yet.`)); return; }
    const rows = await Promise.all(trails.map(async t => {
      let st = {};
      try { st = await ct("GetTrailStatus", { Name: t.TrailARN }); } catch (e) { st = {}; }
      const toggle = h("button", { type: "button", class: st.IsLogging ? "trail-stop" : "trail-start primary", "data-trail": t.Name, "aria-label": `${st.IsLogging ? "Stop" : "Start"} logging for ${t.Name}` }, st.IsLogging ? "Stop logging" : "Start logging");
      toggle.addEventListener("click", async () => {
        toggle.disabled = true;
        try { await ct(st.IsLogging ? "StopLogging" : "StartLogging", { Name: t.TrailARN }); announce(`${t.Name}: logging ${st.IsLogging ? "stopped" : "started"}`); await load(); }
        catch (e) { toggle.disabled = false; list.prepend(errorBox(e)); }
      });
      const more = h("button", { type: "button", "aria-label": `Details of ${t.Name}` }, "Details");
      more.addEventListener("click", () => showDetail(t));
      return h("tr", { "data-trail": t.Name }, h("td", {}, t.Name), h("td", { class: "status-cell" }, st.IsLogging ? h("span", { class: "badge good" }, "Logging") : h("span", { class: "badge warn" }, "Stopped")),
        h("td", { class: "opt" }, t.S3BucketName), h("td", { class: "opt" }, t.IsMultiRegionTrail ? "All" : t.HomeRegion), h("td", { class: "nowrap" }, st.LatestDeliveryTime ? fmtTime(st.LatestDeliveryTime) : "—"),
        h("td", {}, h("div", { class: "toolbar" }, toggle, more)));
    }));
    list.replaceChildren(h("div", { class: "table-wrap" }, h("table", { id: "trails-table" }, h("thead", {}, h("tr", {}, ["Name", "Status", "Bucket", "Regions", "Last delivery", "Actions"].map((c, i) => h("th", { scope: "col", class: i === 2 || i === 3 ? "opt" : null }, c)))), h("tbody", {}, rows))));
  };
  await load();
}

// ---- event data stores -----------------------------------------------------------------------------
async function storesPage(main, gen) {
  const list = (await ct("ListEventDataStores", {})).EventDataStores || [];
  const detail = h("section", { class: "panel", id: "store-detail", hidden: true });
  if (!list.length) { main.append(h("section", { class: "panel" }, h("p", { class: "empty" }, `No event data stores in ${state.session.region}.`))); return; }
  // The list carries names and ARNs only (AWS deprecated its other members): each store is read once.
  const stores = await Promise.all(list.map(s => ct("GetEventDataStore", { EventDataStore: s.EventDataStoreArn }).catch(() => s)));
  const rows = stores.map(d => {
    const btn = h("button", { type: "button", "aria-label": `Details of ${d.Name}` }, "Details");
    btn.addEventListener("click", () => {
      detail.hidden = false;
      detail.replaceChildren(h("h2", {}, d.Name), kv([["ARN", d.EventDataStoreArn], ["Status", d.Status], ["Retention", d.RetentionPeriod ? `${d.RetentionPeriod} days` : ""], ["All regions", d.MultiRegionEnabled ? "yes" : "no"],
        ["Created", d.CreatedTimestamp ? fmtTime(d.CreatedTimestamp) : ""], ["Billing mode", d.BillingMode]]), h("h2", {}, "Selectors"), selectorsList(d),
        h("p", {}, h("a", { href: "#/lake" }, "Query it in the Lake")));
      detail.querySelector("h2").focus?.();
    });
    return h("tr", {}, h("td", {}, d.Name), h("td", { class: "mono opt" }, storeID(d.EventDataStoreArn)),
      h("td", {}, d.Status ? h("span", { class: "badge " + (d.Status === "ENABLED" ? "good" : "warn") }, d.Status) : "—"),
      h("td", {}, d.RetentionPeriod ? `${d.RetentionPeriod} days` : "—"), h("td", {}, btn));
  });
  main.append(h("section", { class: "panel" }, h("div", { class: "table-wrap" }, h("table", { id: "stores-table" }, h("thead", {}, h("tr", {}, ["Name", "ID", "Status", "Retention", ""].map((c, i) => h("th", { scope: "col", class: i === 1 ? "opt" : null }, c)))), h("tbody", {}, rows)))), detail);
}

// ---- log groups --------------------------------------------------------------------------------
async function logsPage(main, gen) {
  let groups = [];
  try { groups = (await logsAPI("DescribeLogGroups", {})).logGroups || []; }
  catch (e) { if (unavailable(e)) { main.append(h("section", { class: "panel" }, h("p", { class: "empty" }, "Log groups are not served by this server."))); return; } throw e; }
  const group = h("select", { id: "tail-group" }, groups.map(g => h("option", { value: g.logGroupName }, g.logGroupName)));
  const pattern = h("input", { type: "text", id: "tail-pattern", placeholder: '{ $.errorCode = "AccessDenied*" }' });
  const startBtn = h("button", { class: "primary", type: "submit", id: "tail-start" }, "Start tail");
  const stopBtn = h("button", { type: "button", id: "tail-stop", disabled: true }, "Stop");
  const out = h("div", { class: "table-wrap tail", id: "tail-out", role: "log", "aria-label": "Tailed log events" });
  const status = h("p", { class: "status muted", role: "status" });
  const detail = h("section", { class: "panel", id: "lg-detail", hidden: true });
  main.append(h("section", { class: "panel", "aria-labelledby": "lg-l" }, h("h2", { id: "lg-l" }, "Log groups"),
    groups.length ? h("div", { class: "table-wrap" }, h("table", { id: "lg-table" }, h("thead", {}, h("tr", {}, ["Name", "Retention", "Stored bytes", "Created", ""].map(c => h("th", { scope: "col" }, c)))),
      h("tbody", {}, groups.map(g => {
        const btn = h("button", { type: "button", "aria-label": `Subscription filters of ${g.logGroupName}` }, "Details");
        btn.addEventListener("click", async () => {
          detail.hidden = false;
          try {
            const f = (await logsAPI("DescribeSubscriptionFilters", { logGroupName: g.logGroupName })).subscriptionFilters || [];
            detail.replaceChildren(h("h2", {}, g.logGroupName), kv([["ARN", g.arn], ["Retention", g.retentionInDays ? `${g.retentionInDays} days` : "never expire"]]),
              h("h2", {}, "Subscription filters"), f.length ? h("ul", { class: "selectors" }, f.map(x => h("li", {}, h("strong", {}, x.filterName), `: “${x.filterPattern || "(all events)"}” → `, h("span", { class: "mono" }, x.destinationArn)))) : h("p", { class: "muted" }, "None."));
          } catch (e) { detail.replaceChildren(errorBox(e)); }
        });
        return h("tr", {}, h("td", {}, g.logGroupName), h("td", {}, g.retentionInDays ? `${g.retentionInDays} days` : "Never expire"), h("td", {}, g.storedBytes ?? 0), h("td", { class: "nowrap" }, g.creationTime ? fmtTime(g.creationTime / 1000) : ""), h("td", {}, btn));
      })))) : h("p", { class: "empty" }, `No log groups in ${state.session.region}.`)),
  detail,
  h("section", { class: "panel", "aria-labelledby": "lg-t" }, h("h2", { id: "lg-t" }, "Live tail"),
    (() => {
      const f = h("form", { class: "toolbar", id: "tail-form", "aria-labelledby": "lg-t" }, field("Log group", group), field("Filter pattern", pattern), startBtn, stopBtn);
      let es = null, rows = 0;
      const stop = () => { if (es) { es.close(); es = null; } startBtn.disabled = false; stopBtn.disabled = true; };
      onLeave(stop, gen);
      stopBtn.addEventListener("click", () => { stop(); status.textContent = "Stopped."; });
      f.addEventListener("submit", ev => {
        ev.preventDefault(); stop();
        if (!group.value) return;
        const tbody = h("tbody");
        out.replaceChildren(h("table", {}, h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Time"), h("th", { scope: "col" }, "Stream"), h("th", { scope: "col" }, "Message"))), tbody));
        rows = 0; startBtn.disabled = true; stopBtn.disabled = false;
        es = eventStream("/console/api/tail?" + new URLSearchParams({ group: group.value, pattern: pattern.value }), {
          open: () => { status.textContent = `Tailing ${group.value}…`; },
          lines: lines => {
            for (const l of lines) {
              if (l.dropped) { tbody.prepend(h("tr", {}, h("td", { colspan: 3, class: "warn" }, `${l.dropped} events dropped: the tail fell behind.`))); continue; }
              tbody.prepend(h("tr", { class: "new" }, h("td", { class: "nowrap" }, fmtTime(l.timestamp / 1000)), h("td", { class: "mono" }, l.logStreamName), h("td", { class: "mono msg" }, l.message)));
              if (++rows > 500) tbody.lastChild.remove();
            }
          },
          failure: e => { status.replaceChildren(errorBox(e)); stop(); },
        }, gen);
      });
      return f;
    })(), status, out));
}

// ---- Insights ----------------------------------------------------------------------------------
async function insightsPage(main, gen) {
  const box = h("section", { class: "panel", id: "insights" });
  main.append(box);
  let evs;
  try { evs = (await ct("LookupEvents", { EventCategory: "insight", StartTime: Date.now() / 1000 - 90 * 86400, MaxResults: 50 })).Events || []; }
  catch (e) { box.append(errorBox(e)); return; }
  const starts = [];
  for (const e of evs) {
    const r = JSON.parse(e.CloudTrailEvent), d = r.insightDetails || {};
    if (d.state === "Start") starts.push({ r, d });
  }
  if (!starts.length) { box.append(h("p", { class: "empty", id: "no-insights" }, "No insights: no unusual call or error rate has been detected in the last 90 days.")); return; }
  const list = h("ul", { class: "insight-list" });
  const chartBox = h("div", { id: "insight-chart" });
  box.append(h("h2", {}, "Insights opened"), list, chartBox);
  const show = async ({ r, d }) => {
    const ctx = d.insightContext || {}, stats = ctx.statistics || {};
    const start = new Date(r.eventTime).getTime();
    const body = { EventSource: d.eventSource, EventName: d.eventName, InsightType: d.insightType, Period: 60, DataType: "FillWithZeros",
      StartTime: (start - 3 * 3600000) / 1000, EndTime: Math.min(Date.now(), start + 3 * 3600000) / 1000 };
    if (d.insightType === "ApiErrorRateInsight") body.ErrorCode = d.errorCode;
    chartBox.replaceChildren(h("p", { class: "muted" }, "Loading…"));
    try {
      const m = await ct("ListInsightsMetricData", body);
      const ts = (m.Timestamps || []).map(t => typeof t === "number" ? t * 1000 : new Date(t).getTime());
      const vals = m.Values || [];
      let a = ts.findIndex(t => t >= start); if (a < 0) a = ts.length - 1;
      let b = a + Math.max(1, Math.round((stats.insightDuration || 1)));
      chartBox.replaceChildren(h("h2", {}, `${d.eventSource} ${d.eventName}: ${d.insightType === "ApiErrorRateInsight" ? "error rate" : "call rate"}`),
        chart(ts.map(t => { const x = new Date(t); return `${pad(x.getHours())}:${pad(x.getMinutes())}`; }), vals,
          { kind: "line", baseline: stats.baseline?.average, window: [a, Math.min(b, ts.length - 1)], label: `Rate per minute against its baseline of ${stats.baseline?.average ?? "?"}` }),
        h("p", { class: "muted" }, `Baseline average ${stats.baseline?.average ?? "?"} per minute (dashed); insight average ${stats.insight?.average ?? "?"}; the shaded band is the insight window.`));
    } catch (e) {
      chartBox.replaceChildren(unavailable(e) ? h("p", { class: "empty" }, "This server does not answer ListInsightsMetricData yet.") : errorBox(e));
    }
  };
  for (const x of starts) {
    const b = h("button", { type: "button" }, `${fmtTime(x.r.eventTime)} · ${x.d.eventSource} ${x.d.eventName} · ${x.d.insightType}`);
    b.addEventListener("click", () => { list.querySelectorAll("button").forEach(o => o.setAttribute("aria-pressed", String(o === b))); show(x); });
    b.setAttribute("aria-pressed", String(x === starts[0]));
    list.append(h("li", {}, b));
  }
  show(starts[0]);
}

// ---- Findings ----------------------------------------------------------------------------------
const levels = ["informational", "low", "medium", "high", "critical"];
function eventLink(id) {
  return h("a", { href: "#/events?" + new URLSearchParams({ attr: "EventId", value: id, range: "90d" }), class: "mono event-link", title: id, "aria-label": `Event ${id}` },
    id.length > 13 ? id.slice(0, 12) + "…" : id);
}
async function findingsPage(main, gen) {
  const minLevel = h("select", { id: "f-level" }, h("option", { value: "" }, "Any level"), levels.map(l => h("option", { value: l }, `${l} and above`)));
  const status = h("p", { class: "status muted", id: "f-status", role: "status" });
  const list = h("div", { id: "findings-list" });
  const prev = h("button", { type: "button", id: "f-prev", disabled: true }, "← Newer"), next = h("button", { type: "button", id: "f-next", disabled: true }, "Older →");
  const box = h("section", { class: "panel", id: "findings" },
    h("div", { class: "toolbar" }, field("Level", minLevel)), status, list, h("div", { class: "pager" }, prev, next));
  main.append(box);
  let tokens = [undefined], idx = 0;
  const load = async () => {
    status.textContent = "Loading…";
    let out;
    try { out = await api("call/opentrail/ListFindings", { MaxResults: 50, Region: state.session.region, MinLevel: minLevel.value || undefined, NextToken: tokens[idx] }); }
    catch (e) {
      status.textContent = "";
      list.replaceChildren(unavailable(e) ? h("p", { class: "empty", id: "no-findings" }, "Findings are not available on this server: no detections are configured.") : errorBox(e));
      return;
    }
    const fs = out.Findings || [];
    tokens[idx + 1] = out.NextToken;
    prev.disabled = idx === 0; next.disabled = !out.NextToken;
    status.textContent = `${fs.length} finding${fs.length === 1 ? "" : "s"} on this page, newest first, in ${state.session.region}`;
    if (!fs.length) {
      list.replaceChildren(h("p", { class: "empty", id: "no-findings" }, idx === 0 && !minLevel.value
        ? `No findings in ${state.session.region}: no loaded rule has matched this account's events here.` : "No findings match."));
      return;
    }
    list.replaceChildren(h("div", { class: "table-wrap" }, h("table", { id: "findings-table" },
      h("caption", { class: "sr-only" }, "Findings, newest first"),
      h("thead", {}, h("tr", {}, ["Time", "Level", "Rule", "Events", "Grouped by", ""].map((c, i) => h("th", { scope: "col", class: i === 4 ? "opt" : null }, c)))),
      h("tbody", {}, fs.map(f => {
        const more = h("button", { type: "button", "aria-label": `Details of finding ${f.RuleTitle} at ${fmtTime(f.Time)}` }, "Details");
        more.addEventListener("click", () => showJSON(`${f.RuleTitle} · ${f.FindingId}`, f));
        const group = Object.entries(f.GroupBy || {}).map(([k, v]) => `${k} = ${v}`).join(", ");
        return h("tr", { "data-finding": f.FindingId },
          h("td", { class: "nowrap" }, fmtTime(f.Time)), h("td", {}, levelBadge(f.Level)),
          h("td", {}, h("div", {}, f.RuleTitle || f.RuleId), h("div", { class: "muted mono" }, f.RuleId), (f.Tags || []).length ? h("div", { class: "muted" }, f.Tags.join(" · ")) : null),
          h("td", {}, h("div", { class: "event-links" }, (f.EventIds || []).slice(0, 10).map(eventLink), (f.EventIds || []).length > 10 ? h("span", { class: "muted" }, `and ${f.EventIds.length - 10} more`) : null)),
          h("td", { class: "opt" }, group || "—"), h("td", {}, more));
      })))));
  };
  minLevel.addEventListener("change", () => { tokens = [undefined]; idx = 0; load(); });
  next.addEventListener("click", () => { idx++; load(); });
  prev.addEventListener("click", () => { idx = Math.max(0, idx - 1); load(); });
  await load();
}

route();
