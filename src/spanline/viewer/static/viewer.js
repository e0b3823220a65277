// spanline viewer: plain JavaScript, no dependencies.
// Every string that came from a span is written with textContent (never innerHTML),
// so a span named "<img src=x onerror=...>" is shown as text.  The only innerHTML
// below takes HTML rendered (and escaped) by the server's templates.
"use strict";

const NS = "http://www.w3.org/2000/svg";

function el(tag, attrs, text) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value;
    else node.setAttribute(key, value);
  }
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function svg(tag, attrs) {
  const node = document.createElementNS(NS, tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
  return node;
}

function duration(ns) {
  if (ns === null || ns === undefined) return "in progress";
  const us = ns / 1000;
  if (us < 1000) return us.toFixed(us < 10 ? 1 : 0) + " µs";
  const ms = us / 1000;
  if (ms < 1000) return ms.toFixed(ms < 10 ? 2 : 1) + " ms";
  return (ms / 1000).toFixed(2) + " s";
}

function show(value) {
  return typeof value === "string" ? value : JSON.stringify(value);
}

// ---------------------------------------------------------------- search page

function drawScatter(box, traces) {
  box.replaceChildren();
  if (!traces.length) return;
  const width = box.clientWidth || 900, height = 160, pad = 34;
  const root = svg("svg", { width: width, height: height, role: "img", "aria-label": "duration over time" });
  const starts = traces.map((t) => t.start_ns), durs = traces.map((t) => t.duration_ns || 0);
  const t0 = Math.min(...starts), t1 = Math.max(...starts), dmax = Math.max(...durs, 1);
  const x = (t) => pad + ((t - t0) / Math.max(t1 - t0, 1)) * (width - pad * 2);
  const y = (d) => height - 18 - (d / dmax) * (height - 30);
  root.appendChild(svg("line", { x1: pad, y1: height - 18, x2: width - pad, y2: height - 18 }));
  const top = svg("text", { x: 2, y: 12 });
  top.textContent = duration(dmax);
  root.appendChild(top);
  for (const trace of traces) {
    const dot = svg("circle", {
      cx: x(trace.start_ns).toFixed(1), cy: y(trace.duration_ns || 0).toFixed(1),
      r: Math.min(3 + Math.log2(trace.span_count || 1), 9).toFixed(1),
      class: trace.error ? "error" : "",
    });
    const title = svg("title");
    title.textContent = trace.root_name + " — " + duration(trace.duration_ns);
    dot.appendChild(title);
    dot.addEventListener("click", () => { window.location = "/traces/" + encodeURIComponent(trace.trace_id); });
    root.appendChild(dot);
  }
  box.appendChild(root);
}

function searchPage() {
  const box = document.getElementById("scatter");
  const readData = () => JSON.parse(document.getElementById("traces-data").textContent);
  drawScatter(box, readData());
  const status = document.getElementById("live");
  if (!window.EventSource) return;
  const source = new EventSource("/api/live");
  let pending = false;
  source.addEventListener("open", () => status.classList.add("on"));
  source.addEventListener("error", () => status.classList.remove("on"));
  source.addEventListener("traces", async () => {
    if (pending) return;
    pending = true;
    try {
      const query = new URLSearchParams(window.location.search);
      query.set("fragment", "results");
      const response = await fetch("/?" + query.toString(), { credentials: "same-origin" });
      if (response.ok) {
        // server-rendered, escaped HTML of the results table and its data
        document.getElementById("results").innerHTML = await response.text();
        drawScatter(box, readData());
      }
    } finally {
      pending = false;
    }
  });
}

// ---------------------------------------------------------------- trace page

function criticalPath(spans, byId, children) {
  // Walk back from each span's end: the child that ends last before the cursor is on
  // the critical path, then the cursor moves to that child's start.
  const marked = new Set();
  const visit = (span) => {
    marked.add(span.span_id);
    let cursor = span.end_ns ?? span.start_ns;
    const kids = (children.get(span.span_id) || []).filter((c) => c.end_ns !== null)
      .sort((a, b) => b.end_ns - a.end_ns);
    for (const kid of kids) {
      if (kid.end_ns <= cursor + 1) {
        visit(kid);
        cursor = kid.start_ns;
      }
    }
  };
  for (const span of spans) if (!span.parent_span_id || !byId.has(span.parent_span_id)) visit(span);
  return marked;
}

function kvTable(object) {
  const table = el("table", { class: "kv" });
  for (const [key, value] of Object.entries(object || {})) {
    const row = el("tr");
    row.appendChild(el("td", {}, key));
    row.appendChild(el("td", {}, show(value)));
    table.appendChild(row);
  }
  return table;
}

function renderDetails(panel, span) {
  panel.replaceChildren();
  panel.appendChild(el("h3", {}, span.name));
  const status = span.end_ns === null ? "open" : span.status === "error" ? "error" : "ok";
  panel.appendChild(el("span", { class: "badge " + status }, status === "open" ? "in progress" : span.status));
  const facts = {
    id: span.id || span.span_id, "span id (W3C)": span.span_id, service: span.service,
    kind: span.kind, duration: duration(span.duration_ns),
  };
  if (span.actor) facts.actor = span.actor;
  if (span.status_message) facts["status message"] = span.status_message;
  panel.appendChild(el("h4", {}, "Span"));
  panel.appendChild(kvTable(facts));
  const records = Object.assign({}, span.records || {});
  const delta = {};
  for (const key of ["added", "changed", "removed"]) {
    if (Array.isArray(records[key])) { delta[key] = records[key]; delete records[key]; }
  }
  if (Object.keys(delta).length) {
    panel.appendChild(el("h4", {}, "Context delta"));
    const list = el("div", { class: "delta" });
    for (const [kind, keys] of Object.entries(delta)) {
      for (const key of keys) list.appendChild(el("div", { class: "mono delta-" + kind }, (kind === "added" ? "+ " : kind === "removed" ? "− " : "~ ") + key));
    }
    if (!list.childElementCount) list.appendChild(el("div", { class: "muted" }, "no keys added, changed or removed"));
    panel.appendChild(list);
  }
  for (const [title, data] of [["Records", records], ["Attributes", span.attributes], ["Meta", span.meta]]) {
    if (data && Object.keys(data).length) {
      panel.appendChild(el("h4", {}, title));
      panel.appendChild(kvTable(data));
    }
  }
  if (span.events && span.events.length) {
    panel.appendChild(el("h4", {}, "Events"));
    for (const event of span.events) {
      const when = duration(event.offset_ns);
      panel.appendChild(el("div", { class: "mono" }, "+" + when + "  " + event.name));
      const attrs = Object.assign({}, event.attributes || {});
      const stack = attrs["exception.stacktrace"];
      delete attrs["exception.stacktrace"];
      panel.appendChild(kvTable(attrs));
      if (stack) panel.appendChild(el("pre", { class: "stack" }, stack));
    }
  }
}

async function tracePage() {
  const body = document.body;
  const response = await fetch("/api/traces/" + encodeURIComponent(body.dataset.trace), { credentials: "same-origin" });
  const box = document.getElementById("waterfall");
  if (!response.ok) {
    box.replaceChildren(el("div", { class: "empty" }, "trace not found"));
    return;
  }
  const trace = await response.json();
  const spans = trace.spans;
  const byId = new Map(spans.map((s) => [s.span_id, s]));
  const children = new Map();
  for (const span of spans) {
    const parent = byId.has(span.parent_span_id) ? span.parent_span_id : null;
    if (!children.has(parent)) children.set(parent, []);
    children.get(parent).push(span);
  }
  for (const list of children.values()) list.sort((a, b) => a.start_ns - b.start_ns);
  const t0 = Math.min(...spans.map((s) => s.start_ns));
  const t1 = Math.max(...spans.map((s) => s.end_ns ?? s.start_ns));
  const total = Math.max(t1 - t0, 1);
  const critical = criticalPath(spans, byId, children);
  const rows = new Map();
  const fragment = document.createDocumentFragment();
  const panel = document.getElementById("details");
  let selected = null;

  const add = (span, depth) => {
    const kids = children.get(span.span_id) || [];
    const row = el("div", { class: "wf-row", "data-span": span.span_id });
    const name = el("div", { class: "wf-name" + (span.status === "error" ? " error" : "") });
    name.style.paddingLeft = 6 + depth * 14 + "px";
    const toggle = el("span", { class: "toggle" }, kids.length ? "▾" : "");
    name.appendChild(toggle);
    name.appendChild(el("span", { class: "label" }, span.name));
    name.appendChild(el("span", { class: "svc" }, span.service || ""));
    row.appendChild(name);
    const lane = el("div", { class: "wf-time" });
    const left = ((span.start_ns - t0) / total) * 100;
    const open = span.end_ns === null;
    const width = open ? 100 - left : (span.duration_ns / total) * 100;
    const bar = el("div", { class: "wf-bar" + (span.status === "error" ? " error" : "") + (critical.has(span.span_id) ? " critical" : "") + (open ? " open" : "") });
    bar.style.left = left + "%";
    bar.style.width = Math.max(width, 0.1) + "%";
    lane.appendChild(bar);
    const label = el("span", { class: "wf-dur" }, duration(span.duration_ns));
    label.style.left = Math.min(left + width, 92) + 0.5 + "%";
    lane.appendChild(label);
    row.appendChild(lane);
    rows.set(span.span_id, { row, toggle, span, kids, collapsed: false });
    toggle.addEventListener("click", (event) => { event.stopPropagation(); setCollapsed(span.span_id); });
    row.addEventListener("click", () => {
      if (selected) selected.classList.remove("selected");
      selected = row;
      row.classList.add("selected");
      renderDetails(panel, span);
    });
    fragment.appendChild(row);
    for (const kid of kids) add(kid, depth + 1);
  };
  for (const root of children.get(null) || []) add(root, 0);
  box.replaceChildren(fragment);

  const setHidden = (id, hidden) => {
    for (const kid of rows.get(id).kids) {
      const entry = rows.get(kid.span_id);
      entry.row.classList.toggle("hidden", hidden);
      if (!entry.collapsed) setHidden(kid.span_id, hidden);
    }
  };
  const setCollapsed = (id) => {
    const entry = rows.get(id);
    if (!entry.kids.length) return;
    entry.collapsed = !entry.collapsed;
    entry.toggle.textContent = entry.collapsed ? "▸" : "▾";
    setHidden(id, entry.collapsed);
  };

  const search = document.getElementById("find");
  const count = document.getElementById("find-count");
  search.addEventListener("input", () => {
    const needle = search.value.trim().toLowerCase();
    let hits = 0;
    for (const { row, span } of rows.values()) {
      const haystack = needle ? JSON.stringify([span.name, span.service, span.attributes, span.records, span.meta]).toLowerCase() : "";
      const hit = needle !== "" && haystack.includes(needle);
      row.classList.toggle("hit", hit);
      if (hit) hits += 1;
    }
    count.textContent = needle ? hits + " matching span" + (hits === 1 ? "" : "s") : "";
  });
  document.getElementById("expand-all").addEventListener("click", () => {
    for (const [id, entry] of rows) if (entry.collapsed) setCollapsed(id);
  });
  document.getElementById("collapse-all").addEventListener("click", () => {
    for (const [id, entry] of rows) if (!entry.collapsed && entry.kids.length && !byId.has(entry.span.parent_span_id)) setCollapsed(id);
  });
  body.dataset.rendered = String(spans.length);
  body.dataset.renderMs = String(Math.round(performance.now()));  // read by bench/bench_viewer.py
  const first = rows.values().next().value;
  if (first) first.row.click();
}

document.addEventListener("DOMContentLoaded", () => {
  const page = document.body.dataset.page;
  if (page === "search") searchPage();
  if (page === "trace") tracePage();
});
