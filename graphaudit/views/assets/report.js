// graphaudit's interactive report: groups start collapsed; opening one lays out only its
// children (dagre), so the first frame of a 50k-node graph costs as much as its top level.
"use strict";
(function () {
  const DATA = JSON.parse(document.getElementById("graphaudit-data").textContent);
  const SVG_NS = "http://www.w3.org/2000/svg";
  const NODE_H = 34, GROUP_H = 40, PAD = 10, HEAD = 20, CHAR = 6.6, MAX_W = 340;
  const REDS = ["#fff5f0", "#fee0d2", "#fcbba1", "#fc9272", "#fb6a4a", "#ef3b2c", "#cb181d", "#a50f15", "#67000d"];
  const FORWARD = "#d9d9d9";
  const svg = document.getElementById("canvas"), viewport = document.getElementById("viewport");
  const details = document.getElementById("details"), results = document.getElementById("results");
  let view, colourBy = "copies", selected = -1, transform = {x: 20, y: 20, k: 1};

  // --- a view: its columns, group tree and per-group totals -------------------------------------
  function prepare(raw, grouping) {  // one view under one grouping (scope or source line)
    const chosen = raw.groupings[grouping];
    const v = Object.assign({}, raw, {group: chosen.group, node: Object.assign({}, raw.node, {group: chosen.nodeGroup})});
    const n = v.node.name.length, g = v.group.label.length;
    v.children = Array.from({length: g}, () => []);
    v.members = Array.from({length: g}, () => []);
    v.depth = new Int32Array(g);
    v.forward = new Uint8Array(g);  // groups of forward nodes: grey, never the duplicated work, in a grad audit
    for (let i = 1; i < g; i++) {
      const p = v.group.parent[i];
      v.children[p].push(i); v.depth[i] = v.depth[p] + 1; v.forward[i] = v.group.kind[i] === 1 || v.forward[p];
    }
    for (let i = 0; i < n; i++) v.members[v.node.group[i]].push(i);
    // per group: operations, duplicates, summed copies (for the mean), most copies, wasted FLOPs
    v.count = new Float64Array(g); v.dups = new Float64Array(g); v.copySum = new Float64Array(g);
    v.maxCopies = new Float64Array(g); v.wasted = new Float64Array(g);
    for (let i = 0; i < n; i++) {
      if (v.node.kind[i] === 2) continue;
      const k = v.node.group[i];
      v.count[k] += 1; v.dups[k] += v.node.dup[i]; v.copySum[k] += v.node.copies[i];
      v.maxCopies[k] = Math.max(v.maxCopies[k], v.node.copies[i]);
      v.wasted[k] += v.node.wasted[i];
    }
    for (let i = g - 1; i > 0; i--) {
      const p = v.group.parent[i];
      v.count[p] += v.count[i]; v.dups[p] += v.dups[i]; v.copySum[p] += v.copySum[i]; v.wasted[p] += v.wasted[i];
      v.maxCopies[p] = Math.max(v.maxCopies[p], v.maxCopies[i]);
    }
    v.topCopies = 2; v.topWasted = 1;  // loops, not Math.max(...array): arrays of 50k overflow the stack
    for (let i = 0; i < n; i++) v.topCopies = Math.max(v.topCopies, v.node.copies[i]);
    for (let i = 1; i < g; i++) v.topWasted = Math.max(v.topWasted, v.wasted[i]);
    v.expanded = new Set([0]);
    v.layouts = new Map();
    return v;
  }
  const views = {};  // views[name][grouping], prepared when first shown
  function viewOf(name, grouping) {
    views[name] = views[name] || {};
    if (!views[name][grouping]) views[name][grouping] = prepare(DATA.views[name], grouping);
    return views[name][grouping];
  }
  let viewName = "separate", groupBy = DATA.groupBy;

  // --- colours and words -------------------------------------------------------------------------
  function si(x, unit) {
    for (const [f, p] of [[1e15, "P"], [1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]])
      if (Math.abs(x) >= f) return (x / f).toPrecision(3).replace(/\.?0+$/, "") + " " + p + unit;
    return x + " " + unit;
  }
  function shade(copies, wasted, forward) {
    if (forward && view.retraced) return FORWARD;  // re-traced forward passes: their xN says how often
    if (colourBy === "copies") {
      if (copies <= 1) return forward ? FORWARD : "#ffffff";
      const t = Math.log(copies) / Math.log(view.topCopies);  // groups pass their mean copies
      return REDS[1 + Math.min(7, Math.floor(t * 7.999))];
    }
    if (wasted <= 0) return forward ? FORWARD : "#ffffff";
    const t = Math.log1p(wasted) / Math.log1p(view.topWasted);
    return REDS[1 + Math.min(7, Math.floor(t * 7.999))];
  }
  const ink = (fill) => (REDS.indexOf(fill) >= 6 ? "#ffffff" : "#000000");
  const clip = (text, chars) => (text.length <= chars ? text : text.slice(0, Math.ceil(chars / 2) - 1) + "…" + text.slice(text.length - Math.floor(chars / 2)));
  const multiplicity = (i) => (view.node.copies[i] <= 1 ? "" : (view.node.kind[i] === 0 && view.retraced ? "  traced x" : "  x") + view.node.copies[i]);
  const nodeLabel = (i) => [view.node.name[i], view.ops[view.node.op[i]] + " " + view.node.shape[i] + multiplicity(i)];
  const groupLabel = (k) => [view.group.label[k], view.count[k] + " nodes, " + (view.dups[k] ? view.dups[k] + " duplicated, " : "") +
    "up to x" + view.maxCopies[k] + ", " + si(view.wasted[k], "FLOP") + " wasted"];
  const headerLabel = (k) => view.group.label[k] + "  (" + view.count[k] + " nodes) [-]";  // an open group's
  const meanCopies = (k) => (view.count[k] ? view.copySum[k] / view.count[k] : 1);
  const width = (lines) => Math.min(MAX_W, 16 + CHAR * Math.max(...lines.map((l) => l.length)));

  // --- layout: one container (an open group) at a time, children as boxes -------------------------
  function owner(k, container) { // the child of `container` holding group k, or -1
    while (k > 0 && view.group.parent[k] !== container) k = view.group.parent[k];
    return k > 0 ? k : -1;
  }
  function inside(k, container) { while (k !== container && k > 0) k = view.group.parent[k]; return k === container; }
  function nodesUnder(k, out) { for (const i of view.members[k]) out.push(i); for (const c of view.children[k]) nodesUnder(c, out); return out; }
  function item(i, container) { // the visible item of node i inside `container`: "n<i>" or "g<k>"
    const k = view.node.group[i];
    return k === container ? "n" + i : "g" + owner(k, container);
  }
  function layout(container) {
    if (view.layouts.has(container)) return view.layouts.get(container);
    const g = new dagre.graphlib.Graph();
    g.setGraph({rankdir: "TB", nodesep: 14, ranksep: 26, marginx: PAD, marginy: PAD});
    g.setDefaultEdgeLabel(() => ({}));
    for (const c of view.children[container]) {
      if (view.expanded.has(c)) {  // at least as wide as its header: a long file:line keeps its line number
        const inner = layout(c); g.setNode("g" + c, {width: Math.max(inner.width, width([headerLabel(c)])), height: inner.height + HEAD});
      }
      else g.setNode("g" + c, {width: width(groupLabel(c)), height: GROUP_H});
    }
    const crowded = view.members[container].length >= 400;  // then inputs and parameters add only clutter
    for (const i of view.members[container]) if (view.node.kind[i] !== 2 || !crowded)
      g.setNode("n" + i, {width: width(nodeLabel(i)), height: NODE_H});
    const edges = new Set();
    const { inStart, inputs } = view;
    for (const i of nodesUnder(container, [])) {
      const to = item(i, container);
      for (let e = inStart[i]; e < inStart[i + 1]; e++) {
        const j = inputs[e];
        if (!inside(view.node.group[j], container)) continue;
        const from = item(j, container);
        if (from !== to && g.hasNode(from) && g.hasNode(to)) edges.add(from + " " + to);
      }
    }
    for (const e of edges) { const [a, b] = e.split(" "); g.setEdge(a, b); }
    dagre.layout(g);
    const result = {items: g.nodes().map((id) => ({id, ...g.node(id)})), edges: g.edges().map((e) => ({from: e.v, to: e.w, points: g.edge(e).points})),
                    width: g.graph().width, height: g.graph().height};
    wrap(result);
    view.layouts.set(container, result);
    return result;
  }
  function wrap(result) { // a wide, shallow layout (many unconnected boxes) wrapped into rows
    if (result.width <= 4 * result.height || result.items.length < 8) return;
    const items = result.items.slice().sort((a, b) => a.y - b.y || a.x - b.x);
    const area = items.reduce((s, it) => s + (it.width + 14) * (it.height + 26), 0);
    const rowWidth = Math.max(Math.sqrt(area * 2), ...items.map((it) => it.width + 2 * PAD));
    let x = PAD, y = PAD, rowH = 0, lastY = items[0].y, w = 0;
    for (const it of items) {
      if ((x + it.width > rowWidth || it.y !== lastY) && x > PAD) { x = PAD; y += rowH + 26; rowH = 0; }
      lastY = it.y; it.x = x + it.width / 2; it.y = y + it.height / 2; x += it.width + 14;
      rowH = Math.max(rowH, it.height); w = Math.max(w, x);
    }
    const at = new Map(items.map((it) => [it.id, it])), fanout = new Map();
    for (const e of result.edges) fanout.set(e.from, (fanout.get(e.from) || 0) + 1);
    result.edges = result.edges.filter((e) => fanout.get(e.from) <= 12);  // a hub feeding a grid: its fan is noise
    result.hidden = fanout.size > 0 && result.edges.length === 0;
    for (const e of result.edges) {
      const a = at.get(e.from), b = at.get(e.to);
      e.points = [{x: a.x, y: a.y + a.height / 2}, {x: b.x, y: b.y - b.height / 2}];
    }
    result.width = w + PAD; result.height = y + rowH + PAD;
  }

  // --- drawing ----------------------------------------------------------------------------------------
  const esc = (t) => String(t).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
  function box(parts, x, y, w, h, fill, lines, attrs, extra) {
    const colour = ink(fill);
    parts.push(`<g ${attrs} class="item"><rect x="${x}" y="${y}" width="${w}" height="${h}" rx="5" fill="${fill}" ${extra}/>`);
    lines.forEach((line, n) => parts.push(`<text x="${x + 8}" y="${y + 14 + n * 13}" fill="${colour}" class="${n ? "sub" : "head"}">${esc(clip(line, Math.floor((w - 14) / CHAR)))}</text>`));
    parts.push("</g>");
  }
  function draw(container, ox, oy, parts) {
    const lay = layout(container);
    for (const e of lay.edges) parts.push(`<polyline class="edge" points="${e.points.map((p) => (p.x + ox) + "," + (p.y + oy)).join(" ")}"/>`);
    for (const it of lay.items) {
      const x = ox + it.x - it.width / 2, y = oy + it.y - it.height / 2, id = it.id.slice(1);
      if (it.id[0] === "g") {
        const k = +id;
        const fill = shade(meanCopies(k), view.wasted[k], view.forward[k] === 1);
        if (view.expanded.has(k)) {
          parts.push(`<rect class="frame" x="${x}" y="${y}" width="${it.width}" height="${it.height}" rx="6"/>`);
          box(parts, x, y, it.width, HEAD, fill, [headerLabel(k)], `data-group="${k}" data-open="1"`, 'class="header"');
          draw(k, x, y + HEAD, parts);
        } else {
          box(parts, x, y, it.width, it.height, fill, groupLabel(k), `data-group="${k}"`, 'class="group" stroke-width="2"');
        }
      } else {
        const i = +id, forward = view.node.kind[i] !== 1;
        const fill = view.node.kind[i] === 2 ? "#ffffff" : shade(view.node.copies[i], view.node.wasted[i], forward);
        const ring = view.node.dup[i] ? 'style="stroke:#d7301f;stroke-width:2.5"' : "";  // inline: beats the stylesheet
        box(parts, x, y, it.width, it.height, fill, nodeLabel(i), `data-node="${i}"${i === selected ? ' data-selected="1"' : ""}`, ring + (i === selected ? ' class="selected"' : ""));
      }
    }
  }
  function render() {
    const parts = [];
    draw(0, 0, 0, parts);
    viewport.innerHTML = parts.join("");
    place();
    document.getElementById("caption").textContent = view.title + (layout(0).hidden ? "; edges from the forward box to every call not drawn" : "");
    document.getElementById("legend").innerHTML = colourBy === "copies"
      ? "Fill: how many nodes of the separate form are equal to this one (white: built once; darker red: more copies; grey: forward, traced xN: once per grad call). Red ring: a duplicate that merging removes."
      : "Fill: FLOPs spent on copies beyond the first (log scale; white: none; grey: forward, traced xN: once per grad call). Red ring: a duplicate that merging removes.";
  }
  function place() { viewport.setAttribute("transform", `translate(${transform.x},${transform.y}) scale(${transform.k})`); }
  function fit() {
    const lay = layout(0), r = svg.getBoundingClientRect();
    const k = Math.min(1, (r.width - 20) / lay.width, (r.height - 20) / lay.height);
    transform = {x: 10, y: 10, k: Math.max(k, 0.02)}; place();
  }
  function invalidate(k) { for (; k >= 0; k = view.group.parent[k]) view.layouts.delete(k); }

  // --- details, search --------------------------------------------------------------------------------
  function path(k) { const names = []; for (; k > 0; k = view.group.parent[k]) names.unshift(view.group.label[k]); return names.join(" / "); }
  function showNode(i) {
    const calls = view.callSets[view.node.calls[i]].map((c) => view.callLabels[c]);
    const shown = calls.slice(0, 12).map((c) => `<li>${esc(c)}</li>`).join("") + (calls.length > 12 ? `<li>… and ${calls.length - 12} more</li>` : "");
    details.innerHTML = `<h3>${esc(view.node.name[i])}</h3><dl>` +
      `<dt>op</dt><dd>${esc(view.ops[view.node.op[i]])}</dd><dt>shape</dt><dd>${esc(view.node.shape[i])}</dd>` +
      `<dt>cost</dt><dd>${si(view.node.flops[i], "FLOP")}</dd>` +
      `<dt>copies</dt><dd id="copies">${view.node.copies[i]}</dd><dt>wasted</dt><dd>${si(view.node.wasted[i], "FLOP")}</dd>` +
      `<dt>duplicate</dt><dd>${view.node.dup[i] ? "yes: merging removes it" : "no"}</dd>` +
      `<dt>in</dt><dd>${esc(path(view.node.group[i]))}</dd>` + sourceText(view.node.source[i]) + `</dl>` +
      `<h4>built by ${calls.length} grad call${calls.length === 1 ? "" : "s"}</h4><ul id="calls">${shown}</ul>`;
  }
  function sourceText(k) {  // the user's line behind the node: file:line and its code
    if (k < 0) return "";
    const [file, line, code] = view.sources[k];
    return `<dt>source</dt><dd id="source"><code>${esc(file)}:${line}</code>` + (code ? `<br><code>${esc(code)}</code>` : "") + `</dd>`;
  }
  function showGroup(k) {
    details.innerHTML = `<h3>${esc(view.group.label[k])}</h3><dl><dt>nodes</dt><dd>${view.count[k]}</dd>` +
      `<dt>most copies</dt><dd>x${view.maxCopies[k]}</dd><dt>wasted</dt><dd>${si(view.wasted[k], "FLOP")}</dd>` +
      `<dt>in</dt><dd>${esc(path(view.group.parent[k]) || "top")}</dd>` +
      (view.group.code[k] ? `<dt>code</dt><dd><code>${esc(view.group.code[k])}</code></dd>` : "") + `</dl>`;
  }
  function reveal(i) {
    for (let k = view.node.group[i]; k > 0; k = view.group.parent[k]) if (!view.expanded.has(k)) { view.expanded.add(k); invalidate(k); }
    selected = i; render(); showNode(i);
    const el = viewport.querySelector(`[data-node="${i}"] rect`);
    if (el) {
      const b = el.getBBox(), r = svg.getBoundingClientRect();
      transform.k = Math.max(transform.k, 0.8);
      transform.x = r.width / 2 - (b.x + b.width / 2) * transform.k; transform.y = r.height / 2 - (b.y + b.height / 2) * transform.k;
      place();
    }
  }
  function search(query) {
    const q = query.trim().toLowerCase(), found = [];
    if (q) for (let i = 0; i < view.node.name.length && found.length < 30; i++) if (view.node.name[i].toLowerCase().includes(q)) found.push(i);
    results.innerHTML = found.map((i) => `<button data-hit="${i}">${esc(view.node.name[i])} <small>${esc(path(view.node.group[i]))}</small></button>`).join("")
      || (q ? "<span>no node has that name</span>" : "");
    return found;
  }

  // --- events ----------------------------------------------------------------------------------------
  viewport.addEventListener("click", (event) => {
    const target = event.target.closest("[data-group],[data-node]");
    if (!target) return;
    if (target.dataset.node !== undefined) { selected = +target.dataset.node; render(); showNode(selected); return; }
    const k = +target.dataset.group, before = target.getBoundingClientRect();
    if (view.expanded.has(k)) view.expanded.delete(k); else view.expanded.add(k);
    invalidate(k); render(); showGroup(k);
    const after = viewport.querySelector(`[data-group="${k}"]`);  // keep the clicked box under the pointer
    if (after) { const r = after.getBoundingClientRect(); transform.x += before.left - r.left; transform.y += before.top - r.top; place(); }
  });
  let drag = null;
  svg.addEventListener("mousedown", (e) => { drag = {x: e.clientX - transform.x, y: e.clientY - transform.y}; });
  window.addEventListener("mousemove", (e) => { if (drag) { transform.x = e.clientX - drag.x; transform.y = e.clientY - drag.y; place(); } });
  window.addEventListener("mouseup", () => { drag = null; });
  svg.addEventListener("wheel", (e) => {
    e.preventDefault();
    const r = svg.getBoundingClientRect(), mx = e.clientX - r.left, my = e.clientY - r.top, f = Math.exp(-e.deltaY * 0.0015);
    transform.x = mx - (mx - transform.x) * f; transform.y = my - (my - transform.y) * f; transform.k *= f; place();
  }, {passive: false});
  const searchBox = document.getElementById("search");
  searchBox.addEventListener("input", () => search(searchBox.value));
  searchBox.addEventListener("keydown", (e) => { if (e.key === "Enter") { const hits = search(searchBox.value); if (hits.length) reveal(hits[0]); } });
  results.addEventListener("click", (e) => { const b = e.target.closest("[data-hit]"); if (b) reveal(+b.dataset.hit); });
  document.getElementById("fit").addEventListener("click", fit);
  document.getElementById("colour").addEventListener("change", (e) => { colourBy = e.target.value; render(); });
  for (const b of document.querySelectorAll("[data-view]")) b.addEventListener("click", () => {
    document.querySelectorAll("[data-view]").forEach((o) => o.classList.toggle("on", o === b));
    viewName = b.dataset.view; view = viewOf(viewName, groupBy); selected = -1; results.innerHTML = ""; render(); fit();
  });
  const groupBySelect = document.getElementById("group-by");
  groupBySelect.value = groupBy;
  groupBySelect.addEventListener("change", (e) => {
    groupBy = e.target.value; view = viewOf(viewName, groupBy); selected = -1; results.innerHTML = ""; render(); fit();
  });

  view = viewOf(viewName, groupBy);
  render(); fit();
  window.graphaudit = {ready: true, readyMs: performance.now(), views};
})();
