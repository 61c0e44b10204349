// The report page's own script (inlined by report-html.ts): draws each chart container the page holds
// from the embedded data, and runs the sample browser. Plain browser JavaScript, no modules, no network.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var PALETTE = ["#3a63c9", "#e8833a", "#3aa76d", "#c94a4a", "#8a5cc9", "#c9a83a", "#3ab0c9", "#c95c9e", "#7a8699", "#5c7a3a"];
  var ACCEPTED = "#3aa76d";
  var REJECTED = "#c94a4a";
  var fmt = function (v) {
    return typeof v === "number" ? v.toLocaleString("en", { maximumFractionDigits: 3 }) : String(v);
  };
  var base = function () {
    return { animation: false, color: PALETTE, tooltip: { trigger: "axis" }, grid: { left: 60, right: 24, top: 56, bottom: 48, containLabel: true } };
  };
  var merge = function (a, b) {
    for (var k in b) a[k] = b[k];
    return a;
  };

  /** Bars of a histogram with edges: labels "lo–hi" for each bar. */
  function edgeLabels(edges) {
    var out = [];
    for (var i = 0; i < edges.length - 1; i++) {
      var lo = edges[i], hi = edges[i + 1];
      var int = Number.isInteger(lo) && Number.isInteger(hi);
      out.push(int && hi === lo + 1 ? String(lo) : fmt(round(lo)) + "–" + fmt(round(hi)));
    }
    return out;
  }
  function round(v) {
    return Math.abs(v) >= 100 ? Math.round(v) : Math.round(v * 1000) / 1000;
  }

  var builders = {
    funnel: function () {
      var ops = data.funnel.operators;
      var names = ops.map(function (o) { return o.name; });
      var reasons = data.rows.rejectsByReason;
      var byReason = {};
      reasons.forEach(function (r) {
        (byReason[r.reason] = byReason[r.reason] || names.map(function () { return 0; }));
        var at = names.indexOf(r.operator);
        if (at >= 0) byReason[r.reason][at] += r.count;
      });
      var series = [
        { name: "in", type: "bar", data: ops.map(function (o) { return o.in; }), itemStyle: { color: "#9db4e8" } },
        { name: "out", type: "bar", data: ops.map(function (o) { return o.out; }), itemStyle: { color: ACCEPTED } },
      ];
      var colors = 0;
      Object.keys(byReason).forEach(function (reason) {
        series.push({ name: "rejected: " + reason, type: "bar", stack: "rejected", data: byReason[reason], itemStyle: { color: PALETTE[(3 + colors++) % PALETTE.length] } });
      });
      // Rejects whose operator left no per-operator count still show, stacked under "(other)".
      var counted = reasons.reduce(function (s, r) { return s + r.count; }, 0);
      var unexplained = ops.map(function (o) {
        var named = reasons.filter(function (r) { return r.operator === o.name; }).reduce(function (s, r) { return s + r.count; }, 0);
        return Math.max(0, o.rejected - named);
      });
      if (unexplained.some(function (v) { return v > 0; }) && counted < data.funnel.rejected + 1) {
        series.push({ name: "rejected: not among the rows", type: "bar", stack: "rejected", data: unexplained, itemStyle: { color: "#b0b7c3" } });
      }
      return merge(base(), {
        legend: { type: "scroll", top: 0 },
        grid: { left: 150, right: 24, top: 40, bottom: 30, containLabel: true },
        yAxis: { type: "category", data: names, inverse: true },
        xAxis: { type: "value" },
        series: series,
      });
    },
    flow: function () {
      // Operators that pass every sample through unchanged only lengthen the picture; the table above has them.
      var ops = data.funnel.operators.filter(function (o, i) {
        return i === 0 || o.rejected > 0 || o.in !== o.out;
      });
      // The ends' names cannot be an operator's, which would close a cycle (a sankey must be acyclic).
      var SOURCE = "\u25b6 source";
      var ACCEPTED_NODE = "\u2713 accepted";
      var nodes = [{ name: SOURCE }];
      var links = [];
      var prev = SOURCE;
      ops.forEach(function (o) {
        nodes.push({ name: o.name });
        if (o.in > 0) links.push({ source: prev, target: o.name, value: o.in });
        prev = o.name;
      });
      nodes.push({ name: ACCEPTED_NODE, itemStyle: { color: ACCEPTED } });
      if (ops.length > 0) links.push({ source: prev, target: ACCEPTED_NODE, value: Math.max(data.funnel.accepted, 1e-9) });
      data.rows.rejectsByReason.forEach(function (r) {
        if (!ops.some(function (o) { return o.name === r.operator; })) return;
        // One sink per operator and reason, so each sits right after the operator that rejected.
        var node = r.operator + " \u2717 " + r.reason;
        nodes.push({ name: node, itemStyle: { color: REJECTED }, label: { formatter: "\u2717 " + r.reason } });
        links.push({ source: r.operator, target: node, value: r.count });
      });
      return {
        animation: false,
        tooltip: { trigger: "item" },
        series: [{ type: "sankey", left: 10, right: 150, top: 10, bottom: 10, nodeGap: 10, nodeAlign: "left", data: nodes, links: links, emphasis: { focus: "adjacency" }, lineStyle: { color: "gradient", opacity: 0.35 }, label: { fontSize: 11 } }],
      };
    },
    lengths: function (field) {
      var f = data.rows.lengths.filter(function (l) { return l.field === field; })[0];
      var edges = data.rows.lengthEdges.concat([Infinity]);
      var all = [f.words.accepted, f.words.rejected, f.tokens.accepted, f.tokens.rejected];
      var lo = edges.length, hi = 0;
      all.forEach(function (counts) {
        counts.forEach(function (c, i) {
          if (c > 0) { lo = Math.min(lo, i); hi = Math.max(hi, i); }
        });
      });
      if (lo > hi) { lo = 0; hi = 0; }
      var labels = [];
      for (var i = lo; i <= hi; i++) labels.push(edges[i + 1] === edges[i] + 1 ? String(edges[i]) : edges[i] + "–" + (edges[i + 1] - 1));
      var cut = function (counts) { return counts.slice(lo, hi + 1); };
      var rows = data.rows.rows;
      var ts = data.rows.tokenSample;
      // Token counts of a sample, scaled to all rows so both units share a y axis.
      var scale = function (counts, sampledRows, allRows) {
        var k = sampledRows > 0 ? allRows / sampledRows : 0;
        return cut(counts).map(function (c) { return Math.round(c * k); });
      };
      return merge(base(), {
        legend: { top: 0 },
        xAxis: { type: "category", data: labels, name: "length", nameLocation: "middle", nameGap: 28 },
        yAxis: { type: "value", name: "rows" },
        series: [
          { name: "words, accepted", type: "bar", data: cut(f.words.accepted), itemStyle: { color: ACCEPTED } },
          { name: "words, rejected", type: "bar", data: cut(f.words.rejected), itemStyle: { color: REJECTED } },
          { name: "tokens, accepted", type: "line", step: "middle", symbol: "none", data: scale(f.tokens.accepted, ts.accepted, rows.accepted), lineStyle: { color: "#1e6b35" }, itemStyle: { color: "#1e6b35" } },
          { name: "tokens, rejected", type: "line", step: "middle", symbol: "none", data: scale(f.tokens.rejected, ts.rejected, rows.rejected), lineStyle: { color: "#7a1b1f", type: "dashed" }, itemStyle: { color: "#7a1b1f" } },
        ],
      });
    },
    origins: function () {
      var cats = data.rows.origins.map(function (o) { return "origin " + o.origin; }).concat(data.rows.depths.map(function (d) { return "depth " + d.depth; }));
      var vals = data.rows.origins.map(function (o) { return o.count; }).concat(data.rows.depths.map(function (d) { return d.count; }));
      return merge(base(), { xAxis: { type: "category", data: cats }, yAxis: { type: "value", name: "accepted rows" }, series: [{ type: "bar", data: vals, name: "rows" }] });
    },
    distinct: function () {
      var groups = data.diversity.summary.groups;
      var names = Object.keys(groups);
      var pick = function (k) {
        return names.map(function (n) { var g = groups[n][k]; return g ? round(g.ratio) : null; });
      };
      return merge(base(), {
        legend: { top: 0 },
        xAxis: { type: "category", data: names },
        yAxis: { type: "value", max: 1 },
        series: [
          { name: "distinct-1", type: "bar", data: pick("distinct1") },
          { name: "distinct-2", type: "bar", data: pick("distinct2") },
          { name: "distinct-3", type: "bar", data: pick("distinct3") },
          { name: "similarity to pool", type: "bar", data: names.map(function (n) { var v = groups[n].poolSimilarity; return typeof v === "number" ? round(v) : null; }) },
        ],
      });
    },
    leading: function () {
      var words = data.diversity.summary.groups.all.leadingWords.slice(0, 25);
      return merge(base(), {
        grid: { left: 100, right: 24, top: 10, bottom: 30, containLabel: true },
        yAxis: { type: "category", data: words.map(function (w) { return w.word; }), inverse: true },
        xAxis: { type: "value" },
        series: [{ type: "bar", name: "samples", data: words.map(function (w) { return w.count; }) }],
      });
    },
    openings: function () {
      var openings = data.diversity.summary.groups.all.openings;
      var byVerb = {};
      openings.forEach(function (o) {
        (byVerb[o.verb] = byVerb[o.verb] || []).push({ name: o.object, value: o.count });
      });
      var tree = Object.keys(byVerb).map(function (verb, i) {
        return { name: verb, children: byVerb[verb], itemStyle: { color: PALETTE[i % PALETTE.length] } };
      });
      return {
        animation: false,
        tooltip: { trigger: "item" },
        series: [{ type: "sunburst", data: tree, radius: ["12%", "95%"], sort: null, label: { rotate: "radial", fontSize: 11, minAngle: 4 }, levels: [{}, { r0: "12%", r: "50%" }, { r0: "50%", r: "95%", label: { align: "right" }, itemStyle: { opacity: 0.8 } }] }],
      };
    },
    "diversity-time": function () {
      var snaps = data.diversity.snapshots;
      var line = function (k) {
        return snaps.map(function (s) { var g = s.groups && s.groups.all && s.groups.all[k]; return [s.samples, g ? round(g.ratio) : null]; });
      };
      return merge(base(), {
        legend: { top: 0 },
        xAxis: { type: "value", name: "samples tracked", nameLocation: "middle", nameGap: 28 },
        yAxis: { type: "value", max: 1 },
        series: [
          { name: "distinct-1", type: "line", data: line("distinct1") },
          { name: "distinct-2", type: "line", data: line("distinct2") },
          { name: "distinct-3", type: "line", data: line("distinct3") },
          { name: "similarity to pool", type: "line", data: snaps.map(function (s) { var g = s.groups && s.groups.all; return [s.samples, g && typeof g.poolSimilarity === "number" ? round(g.poolSimilarity) : null]; }) },
        ],
      });
    },
    clusters: function () {
      var rows = data.rows.dedup.clusterSizes;
      var sizes = Array.from(new Set(rows.map(function (r) { return r.size; }))).sort(function (a, b) { return a - b; });
      var reasons = Array.from(new Set(rows.map(function (r) { return r.reason; })));
      return merge(base(), {
        legend: { top: 0 },
        xAxis: { type: "category", data: sizes.map(String), name: "cluster size", nameLocation: "middle", nameGap: 28 },
        yAxis: { type: "value", name: "clusters" },
        series: reasons.map(function (reason) {
          return { name: reason, type: "bar", stack: "c", data: sizes.map(function (size) { var r = rows.filter(function (x) { return x.reason === reason && x.size === size; })[0]; return r ? r.clusters : 0; }) };
        }),
      });
    },
    similarity: function (reason) {
      var s = data.rows.dedup.similarity.filter(function (x) { return x.reason === reason; })[0].summary;
      return histogramOption(s.histogram, [{ name: reason, h: s.histogram, color: REJECTED }], "similarity");
    },
    score: function (key) {
      var s = data.rows.scores.filter(function (x) { return x.key === key; })[0];
      return twoHistograms(s.accepted, s.rejected, key);
    },
    pairwise: function () {
      var p = data.pairwise;
      return merge(base(), {
        legend: { top: 0 },
        xAxis: { type: "category", data: p.map(function (x) { return x.operator; }) },
        yAxis: { type: "value", name: "verdicts" },
        series: [
          { name: "agreed in both orders", type: "bar", stack: "v", data: p.map(function (x) { return x.agreed; }), itemStyle: { color: ACCEPTED } },
          { name: "position bias", type: "bar", stack: "v", data: p.map(function (x) { return x.disagreed; }), itemStyle: { color: REJECTED } },
        ],
      });
    },
    verdicts: function () {
      var v = data.rows.execution.verdicts;
      return merge(base(), {
        xAxis: { type: "category", data: v.map(function (x) { return x.reason; }) },
        yAxis: { type: "value", name: "programs" },
        series: [{ type: "bar", name: "programs", data: v.map(function (x) { return { value: x.count, itemStyle: { color: x.reason === "passed" ? ACCEPTED : REJECTED } }; }) }],
      });
    },
    runtime: function () {
      var s = data.rows.execution.runTime;
      return histogramOption(s.histogram, [{ name: "programs", h: s.histogram, color: "#3a63c9" }], "ms");
    },
    "llm-tokens": function () {
      var ops = data.rows.llm.byOperator;
      var names = ops.map(function (o) { return o.operator + " (" + o.model + ")"; });
      return merge(base(), {
        legend: { top: 0 },
        grid: { left: 180, right: 24, top: 36, bottom: 30, containLabel: true },
        yAxis: { type: "category", data: names, inverse: true },
        xAxis: { type: "value", name: "tokens" },
        series: [
          { name: "tokens in", type: "bar", stack: "t", data: ops.map(function (o) { return o.promptTokens; }) },
          { name: "tokens out", type: "bar", stack: "t", data: ops.map(function (o) { return o.completionTokens; }) },
        ],
      });
    },
    latency: function () {
      var ops = data.rows.llm.byOperator.filter(function (o) { return o.latency; });
      return merge(base(), {
        legend: { top: 0 },
        xAxis: { type: "category", data: ops.map(function (o) { return o.operator; }) },
        yAxis: { type: "value", name: "ms" },
        series: ["p50", "p90", "p99"].map(function (q) {
          return { name: q, type: "bar", data: ops.map(function (o) { return Math.round(o.latency[q]); }) };
        }),
      });
    },
    throughput: function () {
      var t = data.timeline;
      var rate = function (k) {
        var out = [];
        for (var i = 1; i < t.length; i++) {
          var dt = (t[i].at - t[i - 1].at) / 1000;
          // Across a resume the gap is idle time, not throughput.
          if (dt > 0 && t[i].session === t[i - 1].session) out.push([t[i].at, round((t[i][k] - t[i - 1][k]) / dt)]);
        }
        return out;
      };
      return timeOption([
        { name: "accepted / s", type: "line", data: rate("accepted"), itemStyle: { color: ACCEPTED } },
        { name: "rejected / s", type: "line", data: rate("rejected"), itemStyle: { color: REJECTED } },
      ]);
    },
    inflight: function () {
      var t = data.timeline;
      return timeOption([
        { name: "in flight", type: "line", areaStyle: { opacity: 0.2 }, data: t.map(function (p) { return [p.at, p.inFlight]; }) },
        { name: "budget", type: "line", lineStyle: { type: "dashed" }, data: t.map(function (p) { return [p.at, p.budget]; }) },
      ]);
    },
    "llm-time": function () {
      var t = data.timeline;
      var opt = timeOption([
        { name: "requests", type: "line", data: t.map(function (p) { return [p.at, p.requests]; }) },
        { name: "tokens in", type: "line", yAxisIndex: 1, data: t.map(function (p) { return [p.at, p.promptTokens]; }) },
        { name: "tokens out", type: "line", yAxisIndex: 1, data: t.map(function (p) { return [p.at, p.completionTokens]; }) },
      ]);
      opt.yAxis = [{ type: "value", name: "requests" }, { type: "value", name: "tokens" }];
      return opt;
    },
    "cost-time": function () {
      var t = data.timeline;
      var series = [{ name: "spent (USD)", type: "line", data: t.map(function (p) { return [p.at, p.costUsd]; }) }];
      if (t.some(function (p) { return p.projectedUsd !== null; })) {
        series.push({ name: "projected at completion (USD)", type: "line", lineStyle: { type: "dashed" }, data: t.filter(function (p) { return p.projectedUsd !== null; }).map(function (p) { return [p.at, p.projectedUsd]; }) });
      }
      return timeOption(series);
    },
  };

  function histogramOption(h, layers, xName) {
    return merge(base(), {
      legend: { top: 0 },
      xAxis: { type: "category", data: edgeLabels(h.edges), name: xName, nameLocation: "middle", nameGap: 28 },
      yAxis: { type: "value", name: "rows" },
      series: layers.map(function (l) { return { name: l.name, type: "bar", data: l.h.counts, itemStyle: { color: l.color } }; }),
    });
  }

  /** Accepted and rejected values of one score on shared bars (rebinned over both ranges). */
  function twoHistograms(a, r, key) {
    var parts = [a, r].filter(Boolean);
    var lo = Math.min.apply(null, parts.map(function (s) { return s.histogram.edges[0]; }));
    var hi = Math.max.apply(null, parts.map(function (s) { return s.histogram.edges[s.histogram.edges.length - 1]; }));
    var integer = parts.every(function (s) { return s.histogram.edges.every(Number.isInteger); }) && hi - lo <= 30;
    var bins = integer ? Math.max(1, hi - lo) : 30;
    var width = (hi - lo) / bins || 1;
    var edges = [];
    for (var i = 0; i <= bins; i++) edges.push(lo + i * width);
    var rebin = function (s) {
      var counts = edges.slice(1).map(function () { return 0; });
      if (!s) return counts;
      s.histogram.counts.forEach(function (c, j) {
        var mid = (s.histogram.edges[j] + s.histogram.edges[j + 1]) / 2;
        var at = integer ? s.histogram.edges[j] - lo : Math.floor((mid - lo) / width);
        counts[Math.min(counts.length - 1, Math.max(0, at))] += c;
      });
      return counts;
    };
    return histogramOption({ edges: edges, counts: [] }, [
      { name: "accepted", h: { counts: rebin(a) }, color: ACCEPTED },
      { name: "rejected", h: { counts: rebin(r) }, color: REJECTED },
    ], key);
  }

  /** A time-axis chart with a dashed line at each resume. */
  function timeOption(series) {
    var t = data.timeline;
    var resumes = [];
    for (var i = 1; i < t.length; i++) if (t[i].session !== t[i - 1].session) resumes.push({ xAxis: t[i].at, label: { formatter: "resume " + t[i].session } });
    if (resumes.length > 0 && series.length > 0) series[0].markLine = { symbol: "none", lineStyle: { type: "dashed", color: "#667085" }, data: resumes };
    series.forEach(function (s) { s.showSymbol = false; });
    return merge(base(), { legend: { top: 0 }, xAxis: { type: "time" }, yAxis: { type: "value" }, series: series });
  }

  var charts = [];
  Array.prototype.forEach.call(document.querySelectorAll(".chart[data-chart]"), function (el) {
    var build = builders[el.getAttribute("data-chart")];
    var chart = echarts.init(el, null, { renderer: "svg" });
    chart.setOption(build(el.getAttribute("data-arg")));
    charts.push(chart);
  });
  window.addEventListener("resize", function () {
    charts.forEach(function (c) { c.resize(); });
  });

  // The sample browser: rows drawn at generation time, filtered here.
  var list = document.getElementById("sample-list");
  if (list) {
    var kind = document.getElementById("filter-kind");
    var reason = document.getElementById("filter-reason");
    var operator = document.getElementById("filter-operator");
    var count = document.getElementById("sample-count");
    var el = function (tag, cls, text) {
      var e = document.createElement(tag);
      if (cls) e.className = cls;
      if (text !== undefined) e.textContent = text;
      return e;
    };
    var render = function (row) {
      var d = el("details", "sample");
      d.setAttribute("data-kind", row.kind);
      d.setAttribute("data-reason", row.reason || "");
      d.setAttribute("data-operator", row.operator || "");
      var s = el("summary");
      s.appendChild(el("span", "tag " + row.kind, row.kind === "accepted" ? "accepted" : row.operator + ": " + row.reason));
      var first = Object.keys(row.data)[0];
      s.appendChild(el("span", "", first ? String(row.data[first]).slice(0, 140) : row.id));
      d.appendChild(s);
      var meta = "id " + row.id + " · origin " + row.origin + " · depth " + row.depth;
      if (Object.keys(row.scores).length) meta += " · scores " + JSON.stringify(row.scores);
      d.appendChild(el("p", "note", meta));
      if (row.rejectDetail) d.appendChild(el("p", "note", "why: " + row.rejectDetail));
      Object.keys(row.data).forEach(function (k) {
        d.appendChild(el("div", "", k));
        d.appendChild(el("pre", "", row.data[k]));
      });
      var table = el("table");
      var head = el("tr");
      ["step", "version", "model", "tokens in", "tokens out", "latency ms", "note"].forEach(function (h) { head.appendChild(el("th", "", h)); });
      table.appendChild(head);
      row.steps.forEach(function (st) {
        var tr = el("tr");
        [st.op, st.version, st.model, st.promptTokens, st.completionTokens, st.latencyMs, st.note].forEach(function (v) { tr.appendChild(el("td", "", v === null ? "" : String(v))); });
        table.appendChild(tr);
      });
      d.appendChild(table);
      return d;
    };
    var update = function () {
      list.textContent = "";
      var shown = data.rows.samples.filter(function (row) {
        if (kind.value !== "all" && row.kind !== kind.value) return false;
        if (reason.value && row.reason !== reason.value) return false;
        if (operator.value && row.operator !== operator.value) return false;
        return true;
      });
      shown.forEach(function (row) { list.appendChild(render(row)); });
      count.textContent = shown.length + " of " + data.rows.samples.length + " sampled rows";
    };
    [kind, reason, operator].forEach(function (select) { select.addEventListener("change", update); });
    update();
  }
})();
