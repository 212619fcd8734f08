// meshgate dashboard: polls /api/v1/dashboard every second, computes rates
// from counter deltas between two polls, draws line charts on <canvas>.
// No libraries: everything here is plain DOM and 2D canvas.
"use strict";

const POLL_MS = 1000;
const HISTORY = 120; // samples kept per chart (two minutes)
const DASH = "–"; // shown wherever a metric is missing
const PALETTE = ["#3b6fd8", "#1f9d55", "#d03b3b", "#c98a04", "#8e44ad", "#16a2b8", "#e8590c", "#5c7cfa", "#2b8a3e", "#a61e4d"];

let previous = null; // the last snapshot, for rates
let polls = 0;
const charts = {};

// ---------- metric access ----------

// Sums a metric's values over every label set: scope/object/name.
function sum(metrics, scope, object, name, filter) {
  let total = null;
  for (const m of metrics) {
    if (m.scope !== scope || m.name !== name || (object !== null && m.object !== object)) continue;
    if (filter && !filter(m.labels || {})) continue;
    if (typeof m.value !== "number") continue;
    total = (total || 0) + m.value;
  }
  return total;
}

function histogram(metrics, scope, object, name) {
  return metrics.find(m => m.scope === scope && m.object === object && m.name === name && m.type === "histogram") || null;
}

function objects(metrics, scope) {
  const seen = [];
  for (const m of metrics) if (m.scope === scope && !seen.includes(m.object)) seen.push(m.object);
  return seen;
}

// An error response: status class 5xx or "error"; local error replies count too.
const isErrorClass = labels => labels.class === "5xx" || labels.class === "error";

function clusterErrors(metrics, name) {
  const responses = sum(metrics, "cluster", name, "responses_total", isErrorClass);
  const replies = sum(metrics, "cluster", name, "error_replies_total");
  if (responses === null && replies === null) return null;
  return (responses || 0) + (replies || 0);
}

// Per-second rate of a counter between two snapshots (null when unknown).
function rate(now, before, value) {
  if (!before) return null;
  const a = value(now.metrics), b = value(before.metrics);
  const dt = (now.time_ms - before.time_ms) / 1000;
  if (a === null || b === null || dt <= 0) return null;
  return Math.max(0, a - b) / dt; // a counter that went down restarted
}

// ---------- formatting ----------

const fmtInt = v => (v === null || v === undefined ? DASH : String(v));
function fmtRate(v) {
  if (v === null || v === undefined || !isFinite(v)) return DASH;
  return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
}
const fmtMs = v => (v === null || v === undefined || !isFinite(v) ? DASH : v.toFixed(2));
function fmtDuration(s) {
  if (s === null || s === undefined) return DASH;
  s = Math.floor(s);
  const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60, sec = s % 60;
  return (d ? d + "d " : "") + (d || h ? h + "h " : "") + (d || h || m ? m + "m " : "") + sec + "s";
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}
const td = (text, cls) => el("td", cls ? { class: cls } : {}, text);

function fillBody(table, rows, columns) {
  const body = table.tBodies[0];
  body.replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { class: "empty", colspan: String(columns) }, "none"))]));
}

// ---------- charts ----------

function chart(id) {
  if (!charts[id]) charts[id] = { canvas: document.getElementById("chart-" + id), legend: document.getElementById("legend-" + id), series: new Map(), colors: new Map() };
  return charts[id];
}

function pushSample(id, name, value) {
  const c = chart(id);
  if (!c.series.has(name)) {
    c.series.set(name, []);
    c.colors.set(name, PALETTE[c.colors.size % PALETTE.length]);
  }
  const points = c.series.get(name);
  points.push(value);
  while (points.length > HISTORY) points.shift();
}

function drawChart(id) {
  const c = chart(id);
  const canvas = c.canvas;
  if (!canvas) return;
  const ratio = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  if (canvas.width !== Math.round(w * ratio) || canvas.height !== Math.round(h * ratio)) {
    canvas.width = Math.round(w * ratio);
    canvas.height = Math.round(h * ratio);
  }
  const g = canvas.getContext("2d");
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.clearRect(0, 0, w, h);
  const style = getComputedStyle(document.documentElement);
  const muted = style.getPropertyValue("--muted").trim(), line = style.getPropertyValue("--line").trim();
  let max = 0;
  for (const pts of c.series.values()) for (const v of pts) if (v !== null && v > max) max = v;
  const top = niceCeil(max);
  const left = 44, right = 8, topPad = 8, bottom = 18;
  const plotW = w - left - right, plotH = h - topPad - bottom;
  g.font = "11px system-ui, sans-serif";
  g.fillStyle = muted;
  g.strokeStyle = line;
  g.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const y = topPad + plotH - (plotH * i) / 4;
    g.beginPath(); g.moveTo(left, y + 0.5); g.lineTo(w - right, y + 0.5); g.stroke();
    g.textAlign = "right"; g.textBaseline = "middle";
    g.fillText(fmtRate((top * i) / 4), left - 6, y);
  }
  g.textAlign = "left"; g.textBaseline = "top";
  g.fillText("-" + HISTORY + "s", left, topPad + plotH + 4);
  g.textAlign = "right";
  g.fillText("now", w - right, topPad + plotH + 4);
  const step = plotW / (HISTORY - 1);
  for (const [name, pts] of c.series) {
    g.strokeStyle = c.colors.get(name);
    g.lineWidth = 2;
    g.lineJoin = "round";
    g.beginPath();
    let pen = false;
    pts.forEach((v, i) => {
      const x = left + (HISTORY - pts.length + i) * step;
      if (v === null) { pen = false; return; }
      const y = topPad + plotH - (top > 0 ? (v / top) * plotH : 0);
      if (pen) g.lineTo(x, y); else g.moveTo(x, y);
      pen = true;
    });
    g.stroke();
  }
  const items = [...c.series.keys()].map(name => {
    const pts = c.series.get(name), last = pts[pts.length - 1];
    const swatch = el("i"); swatch.style.background = c.colors.get(name);
    return el("span", {}, swatch, name + " " + fmtRate(last));
  });
  c.legend.replaceChildren(...(items.length ? items : [el("span", { class: "empty" }, "no data")]));
}

function niceCeil(v) {
  if (v <= 0) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

// ---------- rendering ----------

function render(now) {
  const m = now.metrics;
  const prev = previous;
  const state = document.getElementById("state");
  state.textContent = now.state.name;
  state.className = "badge " + ({ Running: "ok", Starting: "warn", Draining: "warn", Stopped: "bad" }[now.state.name] || "");
  document.getElementById("uptime").textContent = fmtDuration(now.state.uptime_seconds);
  document.getElementById("log-level").textContent = now.log_level || DASH;
  document.getElementById("version").textContent = now.version;

  const clusters = [...new Set([...objects(m, "cluster"), ...now.clusters.map(c => c.name)])];
  const routes = objects(m, "route");

  // Summary cards.
  const allRequests = metrics => sum(metrics, "cluster", null, "requests_total");
  const allErrors = metrics => {
    let total = null;
    for (const c of objects(metrics, "cluster")) {
      const e = clusterErrors(metrics, c);
      if (e !== null) total = (total || 0) + e;
    }
    return total;
  };
  document.getElementById("total-rps").textContent = fmtRate(rate(now, prev, allRequests));
  document.getElementById("total-eps").textContent = fmtRate(rate(now, prev, allErrors));
  document.getElementById("total-requests").textContent = fmtInt(allRequests(m));
  document.getElementById("total-inflight").textContent = fmtInt(sum(m, "cluster", null, "in_flight"));
  const conns = now.listeners.length ? now.listeners.reduce((a, l) => a + l.active_connections, 0) : sum(m, "listener", null, "connections_active");
  document.getElementById("total-connections").textContent = fmtInt(conns);

  // Clusters: charts and table.
  const clusterRows = clusters.map(name => {
    const rps = rate(now, prev, ms => sum(ms, "cluster", name, "requests_total"));
    const eps = rate(now, prev, ms => clusterErrors(ms, name));
    if (prev) { pushSample("cluster-rps", name, rps); pushSample("cluster-eps", name, eps); }
    const view = now.clusters.find(c => c.name === name);
    const lat = histogram(m, "cluster", name, "latency");
    const v = lat ? lat.value : {};
    return el("tr", { "data-cluster": name },
      td(name, "name"), td(view ? view.lb_type : DASH),
      td(fmtRate(rps), "num"), td(fmtRate(eps), "num"),
      td(fmtInt(sum(m, "cluster", name, "requests_total")), "num"),
      td(fmtInt(sum(m, "cluster", name, "in_flight")), "num"),
      td(fmtInt(sum(m, "cluster", name, "retries_total")), "num"),
      td(fmtInt(sum(m, "cluster", name, "timeouts_total")), "num"),
      td(fmtMs(v.p50_ms), "num"), td(fmtMs(v.p90_ms), "num"), td(fmtMs(v.p99_ms), "num"), td(fmtMs(v.p999_ms), "num"));
  });
  fillBody(document.getElementById("clusters-table"), clusterRows, 12);

  // Routes.
  const routeRows = routes.map(name => {
    const rps = rate(now, prev, ms => sum(ms, "route", name, "requests_total"));
    const eps = rate(now, prev, ms => sum(ms, "route", name, "errors_total"));
    if (prev) { pushSample("route-rps", name, rps); pushSample("route-eps", name, eps); }
    return el("tr", {}, td(name, "name"), td(fmtRate(rps), "num"), td(fmtRate(eps), "num"),
      td(fmtInt(sum(m, "route", name, "requests_total")), "num"), td(fmtInt(sum(m, "route", name, "errors_total")), "num"));
  });
  fillBody(document.getElementById("routes-table"), routeRows, 5);

  renderHosts(now, prev);
  renderListeners(now, prev);
  for (const id of ["cluster-rps", "cluster-eps", "route-rps", "route-eps"]) drawChart(id);
}

function renderHosts(now, prev) {
  const container = document.getElementById("hosts");
  if (!now.clusters.length) { container.replaceChildren(el("p", { class: "empty" }, "no clusters")); return; }
  const blocks = [];
  for (const cluster of now.clusters) {
    const inCluster = labels => labels.cluster === cluster.name;
    const maxInFlight = Math.max(1, ...cluster.hosts.map(h => h.in_flight));
    const rows = cluster.hosts.map(h => {
      const rps = rate(now, prev, ms => sum(ms, "host", h.address, "requests_total", inCluster));
      const bar = el("span", { class: "bar" }); bar.style.width = Math.round((h.in_flight / maxInFlight) * 60) + "px";
      const meta = Object.entries(h.metadata || {}).map(([k, v]) => k + "=" + v).join(" ");
      return el("tr", { "data-host": h.address },
        td(h.address, "name"), el("td", {}, el("span", { class: "badge health-" + h.health }, h.health)),
        td(fmtInt(h.weight), "num"), td(fmtRate(rps), "num"), td(fmtInt(h.requests_total), "num"),
        el("td", { class: "num" }, fmtInt(h.in_flight), bar), td(fmtInt(h.connections), "num"),
        td(fmtInt(sum(now.metrics, "pool", h.address, "reconnects_total", inCluster)), "num"), td(meta || DASH));
    });
    const table = el("table", {}, el("thead", {}, el("tr", {}, ...["Host", "Health", "Weight", "Req/s", "Requests", "In flight", "Connections", "Reconnects", "Metadata"]
      .map((t, i) => el("th", i >= 2 && i <= 7 ? { class: "num" } : {}, t)))), el("tbody"));
    fillBody(table, rows, 9);
    const healthy = cluster.hosts.filter(h => h.health === "healthy").length;
    blocks.push(el("h3", {}, cluster.name + " · " + healthy + "/" + cluster.hosts.length + " healthy · " + cluster.lb_type), table);
  }
  container.replaceChildren(...blocks);
}

function renderListeners(now, prev) {
  const names = [...new Set([...now.listeners.map(l => l.name), ...objects(now.metrics, "listener")])];
  const rows = names.map(name => {
    const view = now.listeners.find(l => l.name === name);
    const kib = v => (v === null ? null : v / 1024);
    const inRate = rate(now, prev, ms => sum(ms, "listener", name, "bytes_in_total"));
    const outRate = rate(now, prev, ms => sum(ms, "listener", name, "bytes_out_total"));
    const active = view ? view.active_connections : sum(now.metrics, "listener", name, "connections_active");
    const total = view ? view.total_connections : sum(now.metrics, "listener", name, "connections_total");
    return el("tr", {}, td(name, "name"), td(view ? view.address : DASH), td(view ? view.protocol : DASH),
      td(fmtInt(active), "num"), td(fmtInt(total), "num"),
      td(fmtRate(rate(now, prev, ms => sum(ms, "listener", name, "connections_total"))), "num"),
      td(fmtRate(kib(inRate)), "num"), td(fmtRate(kib(outRate)), "num"),
      td(fmtInt(sum(now.metrics, "listener", name, "detect_failures_total")), "num"));
  });
  fillBody(document.getElementById("listeners-table"), rows, 9);
}

// ---------- polling ----------

function setLive(ok, text) {
  document.getElementById("live-dot").className = "dot " + (ok ? "on" : "off");
  document.getElementById("live-text").textContent = text;
}

async function poll() {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), 3000);
  try {
    const response = await fetch("/api/v1/dashboard", { cache: "no-store", signal: controller.signal });
    if (!response.ok) throw new Error("HTTP " + response.status);
    const now = await response.json();
    render(now);
    previous = now;
    polls += 1;
    document.body.dataset.polls = String(polls);
    setLive(true, "live · " + new Date(now.time_ms).toLocaleTimeString());
  } catch (e) {
    setLive(false, "no data: " + e.message);
  } finally {
    clearTimeout(timer);
    setTimeout(poll, POLL_MS);
  }
}

async function loadConfig() {
  const pre = document.getElementById("config");
  try {
    const response = await fetch("/api/v1/config_dump", { cache: "no-store" });
    pre.textContent = JSON.stringify(await response.json(), null, 2);
  } catch (e) {
    pre.textContent = "cannot load the config: " + e.message;
  }
}

document.getElementById("config-refresh").addEventListener("click", loadConfig);
window.addEventListener("resize", () => Object.keys(charts).forEach(drawChart));
loadConfig();
poll();
