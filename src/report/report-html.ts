import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import type { ReportData } from "./report-data.ts";

/**
 * The page: static sections and tables rendered here, charts drawn in the browser by report-page.js from
 * the same data embedded as JSON. Everything is inlined (ECharts included), so the file opens offline.
 * A section without data says so in one line; the page script draws only the containers written here.
 */
export async function renderReport(data: ReportData): Promise<string> {
  const [echarts, script] = await Promise.all([
    readFile(createRequire(import.meta.url).resolve("echarts/dist/echarts.min.js"), "utf8"),
    readFile(new URL("./report-page.js", import.meta.url), "utf8"),
  ]);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(data.title)}</title>
<style>${STYLE}</style>
</head>
<body>
<header><h1>${esc(data.identity.graph)} <span class="muted">run report</span></h1>
<p class="muted">${esc(headline(data))}</p>
<nav>${SECTIONS.map(([id, title]) => `<a href="#${id}">${esc(title)}</a>`).join("")}</nav></header>
<main>
${summaryCards(data)}
${funnelSection(data)}
${lengthsSection(data)}
${diversitySection(data)}
${dedupSection(data)}
${judgesSection(data)}
${executionSection(data)}
${llmSection(data)}
${timelineSection(data)}
${samplesSection(data)}
${identitySection(data)}
</main>
<script type="application/json" id="report-data">${jsonForScript(data)}</script>
<script>${echarts}</script>
<script>${script}</script>
</body>
</html>
`;
}

const SECTIONS: readonly [string, string][] = [
  ["funnel", "Funnel"],
  ["lengths", "Lengths"],
  ["diversity", "Diversity"],
  ["dedup", "Dedup"],
  ["judges", "Judges and scores"],
  ["execution", "Execution"],
  ["llm", "LLM"],
  ["timeline", "Over time"],
  ["samples", "Samples"],
  ["identity", "Identity"],
];

/** JSON inside a script element: `<` escaped so no text in the data can close the element. */
function jsonForScript(value: unknown): string {
  return JSON.stringify(value).replace(/</g, "\\u003c").replace(/\u2028/g, "\\u2028").replace(/\u2029/g, "\\u2029");
}

function esc(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const n = (value: number) => value.toLocaleString("en");
const pct = (part: number, whole: number) => (whole === 0 ? "–" : `${((100 * part) / whole).toFixed(1)} %`);
const usd = (value: number | null | undefined) => (value === null || value === undefined ? "unknown" : `$${value < 1 && value > 0 ? value.toFixed(4) : value.toFixed(2)}`);

function headline(data: ReportData): string {
  const { accepted, rejected } = data.funnel;
  const id = data.identity;
  const state = id.complete ? "complete" : "not complete (resumable)";
  const chunks = id.chunks > 0 ? `, ${n(id.chunks)} chunks (scaled out)` : "";
  return `${n(accepted)} accepted, ${n(rejected)} rejected; ${state}${chunks}; started ${id.createdAt}, last commit ${id.updatedAt}`;
}

function section(id: string, title: string, body: string): string {
  return `<section id="${id}"><h2>${esc(title)}</h2>\n${body}\n</section>`;
}

function chart(name: string, title: string, options: { arg?: string; tall?: boolean; note?: string } = {}): string {
  const arg = options.arg === undefined ? "" : ` data-arg="${esc(options.arg)}"`;
  const note = options.note ? `<p class="note">${esc(options.note)}</p>` : "";
  return `<figure><figcaption>${esc(title)}</figcaption><div class="chart${options.tall ? " tall" : ""}" data-chart="${name}"${arg}></div>${note}</figure>`;
}

function none(what: string): string {
  return `<p class="none">${esc(what)}</p>`;
}

function table(head: readonly string[], rows: readonly (readonly unknown[])[], numeric: readonly boolean[] = []): string {
  const th = head.map((h, i) => `<th${numeric[i] ? ' class="num"' : ""}>${esc(h)}</th>`).join("");
  const body = rows.map((row) => `<tr>${row.map((cell, i) => `<td${numeric[i] ? ' class="num"' : ""}>${esc(cell)}</td>`).join("")}</tr>`).join("\n");
  return `<table><thead><tr>${th}</tr></thead><tbody>${body}</tbody></table>`;
}

function summaryCards(data: ReportData): string {
  const { accepted, rejected } = data.funnel;
  const totals = data.llmTotals;
  const last = data.timeline.at(-1);
  const cards: [string, string][] = [
    ["accepted", n(accepted)],
    ["rejected", `${n(rejected)} (${pct(rejected, accepted + rejected)})`],
    ["LLM requests", `${n(totals["llm.requests"] ?? 0)}${totals["llm.cache_hits"] ? ` (+${n(totals["llm.cache_hits"])} from cache)` : ""}`],
    ["tokens in / out", `${n(totals["llm.prompt_tokens"] ?? 0)} / ${n(totals["llm.completion_tokens"] ?? 0)}`],
    ["cost", costCard(totals)],
  ];
  if (last?.projectedUsd !== null && last?.projectedUsd !== undefined && !data.identity.complete) cards.push(["projected cost", usd(last.projectedUsd)]);
  return `<div class="cards">${cards.map(([k, v]) => `<div class="card"><div class="k">${esc(k)}</div><div class="v">${esc(v)}</div></div>`).join("")}</div>`;
}

/** What the run spent: the simulator's tokens are free, and tokens of a model with no known price are said. */
function costCard(totals: Readonly<Record<string, number>>): string {
  const calls = (totals["llm.requests"] ?? 0) + (totals["llm.cache_hits"] ?? 0);
  if (calls === 0) return "no LLM calls";
  const simulated = (totals["llm.simulated_tokens"] ?? 0) > 0 ? " (simulator)" : "";
  const unpriced = totals["llm.unpriced_tokens"] ?? 0;
  return `${usd(totals["llm.cost_usd"] ?? 0)}${simulated}${unpriced > 0 ? `, ${n(unpriced)} tokens unpriced` : ""}`;
}

function funnelSection(data: ReportData): string {
  const ops = data.funnel.operators;
  if (ops.length === 0) return section("funnel", "Funnel", none("No per-operator counts in the manifest (written by rxsynth before they were recorded)."));
  const reasons = data.rows.rejectsByReason;
  const body = [
    chart("funnel", "Samples into and out of each operator, rejects stacked by reason", { tall: ops.length > 12 }),
    reasons.length > 0 ? chart("flow", "Where samples went: through the operators, out to a reject reason", { tall: true }) : none("No rejects: every sample that reached the end was kept."),
    reasons.length > 0
      ? table(
          ["operator", "reason", "rejects", "share of rejects"],
          reasons.map((r) => [r.operator, r.reason, n(r.count), pct(r.count, data.funnel.rejected)]),
          [false, false, true, true],
        )
      : "",
    data.rows.otherRejects > 0 ? `<p class="note">${n(data.rows.otherRejects)} rejects under further reasons are counted together.</p>` : "",
  ];
  return section("funnel", "Funnel", body.join("\n"));
}

function lengthsSection(data: ReportData): string {
  const fields = data.rows.lengths;
  if (fields.length === 0) return section("lengths", "Lengths", none("No text fields in the rows."));
  const ts = data.rows.tokenSample;
  const { accepted, rejected } = data.rows.rows;
  const sampledNote =
    ts.accepted < accepted || ts.rejected < rejected
      ? `Tokens (o200k_base) counted on a seeded sample of ${n(ts.accepted)} accepted and ${n(ts.rejected)} rejected rows (at most ${n(ts.limit)} each), scaled to the row counts; words on every row.`
      : "Words and tokens (o200k_base) counted on every row.";
  const charts = fields.map((field) => chart("lengths", `${field.field}: words and tokens, accepted vs rejected`, { arg: field.field }));
  return section("lengths", "Lengths", `<p class="note">${esc(sampledNote)}</p><div class="grid">${charts.join("\n")}</div>`);
}

interface DiversityGroup {
  samples: number;
  distinct1?: { ratio: number };
  distinct2?: { ratio: number };
  distinct3?: { ratio: number };
  vocabulary?: number;
  poolSimilarity?: number | null;
  leadingWords?: unknown[];
  openings?: unknown[];
}

function diversitySection(data: ReportData): string {
  const summary = data.diversity.summary as { samples?: number; groups?: Record<string, DiversityGroup> } | null;
  const groups = summary?.groups ?? {};
  const all = groups.all;
  const parts: string[] = [];
  if (data.rows.origins.length > 0) parts.push(chart("origins", "Accepted rows by origin and generation depth"));
  if (!all) {
    parts.push(none(data.diversity.note ? `No diversity summary: ${data.diversity.note}.` : "No diversity summary: the graph has no diversity tracker (diversity-summary.json)."));
    return section("diversity", "Diversity", parts.join("\n"));
  }
  const names = Object.keys(groups);
  parts.push(
    table(
      ["group", "samples", "distinct-1", "distinct-2", "distinct-3", "vocabulary", "mean similarity to pool"],
      names.map((name) => {
        const g = groups[name]!;
        const r = (d?: { ratio: number }) => (d ? d.ratio.toFixed(3) : "–");
        return [name, n(g.samples), r(g.distinct1), r(g.distinct2), r(g.distinct3), g.vocabulary === undefined ? "–" : n(g.vocabulary), typeof g.poolSimilarity === "number" ? g.poolSimilarity.toFixed(3) : "–"];
      }),
      [false, true, true, true, true, true, true],
    ),
  );
  parts.push(chart("distinct", "Distinct-n and mean MinHash similarity to the pool, by origin and depth"));
  parts.push(all.leadingWords && all.leadingWords.length > 0 ? chart("leading", "Leading words") : none("No leading words recorded."));
  parts.push(all.openings && all.openings.length > 0 ? chart("openings", "Openings: root verb → its first object (Self-Instruct's sunburst)", { tall: true }) : none("No verb-object openings recorded."));
  parts.push(data.diversity.snapshots.length > 1 ? chart("diversity-time", "Distinct-n over the run (diversity.jsonl snapshots)") : none(`One diversity snapshot only (the tracker writes one every N samples): no curve over the run.`));
  return section("diversity", "Diversity", parts.join("\n"));
}

function dedupSection(data: ReportData): string {
  const { clusterSizes, similarity, clustersCapped } = data.rows.dedup;
  if (clusterSizes.length === 0) return section("dedup", "Dedup", none("No rejects name a sample they duplicate: no duplicate clusters."));
  const parts = [chart("clusters", "Duplicate cluster sizes (a kept sample and the rejects naming it), by reason")];
  if (clustersCapped) parts.push(`<p class="note">Clusters counted for the first ${n(100_000)} kept samples with duplicates.</p>`);
  parts.push(
    similarity.length > 0
      ? similarity.map((s) => chart("similarity", `${s.reason}: similarity to the sample it duplicates (${s.reason === "near_duplicate" ? "estimated Jaccard" : "the operator's measure"})`, { arg: s.reason, note: sampleNote(s.summary) })).join("\n")
      : none("The duplicate rejects record no similarity value (exact duplicates)."),
  );
  return section("dedup", "Dedup", parts.join("\n"));
}

function sampleNote(summary: { exact: boolean; sampled: number; count: number }): string | undefined {
  return summary.exact ? undefined : `From a seeded sample of ${n(summary.sampled)} of ${n(summary.count)} values, scaled.`;
}

function judgesSection(data: ReportData): string {
  const scores = data.rows.scores.filter((s) => s.key !== data.rows.execution.runTimeScore);
  const parts: string[] = [];
  if (scores.length === 0) parts.push(none("No scores on the rows: the graph has no judge or scoring filter."));
  else parts.push(`<div class="grid">${scores.map((s) => chart("score", `scores.${s.key}: accepted vs rejected`, { arg: s.key })).join("\n")}</div>`);
  if (data.pairwise.length > 0) {
    parts.push(
      table(
        ["pairwise judge", "agreed in both orders", "disagreed (position_bias)", "agreement rate"],
        data.pairwise.map((p) => [p.operator, n(p.agreed), n(p.disagreed), pct(p.agreed, p.agreed + p.disagreed)]),
        [false, true, true, true],
      ),
    );
    parts.push(chart("pairwise", "Pairwise verdicts: agreed in both orders vs position bias"));
  } else {
    parts.push(none("No pairwise judge in this run (no verdicts asked in both orders)."));
  }
  return section("judges", "Judges and scores", parts.join("\n"));
}

function executionSection(data: ReportData): string {
  const { verdicts, runTime, runTimeScore } = data.rows.execution;
  if (verdicts.length === 0 && !runTime) return section("execution", "Execution", none("No sandboxed execution in this run (no verdicts, no run times)."));
  const parts = [
    verdicts.length > 0 ? chart("verdicts", "Sandbox verdicts by reason (passed: kept rows with a run time)") : none("No verdicts recorded."),
    runTime ? chart("runtime", `Run time of the programs (scores.${runTimeScore}, ms)`, { note: sampleNote(runTime) }) : none("No run times recorded."),
  ];
  return section("execution", "Execution", parts.join("\n"));
}

function llmSection(data: ReportData): string {
  const totals = data.llmTotals;
  const ops = data.rows.llm.byOperator;
  const parts: string[] = [];
  const keys = Object.keys(totals).sort();
  parts.push(
    keys.length > 0
      ? table(["run total (manifest)", "value"], keys.map((key) => [key.replace(/^llm\./, ""), key.endsWith("usd") ? usd(totals[key]) : n(totals[key]!)]), [false, true])
      : none("No LLM totals in the manifest: the graph made no LLM calls."),
  );
  if (ops.length > 0) {
    parts.push(
      table(
        ["operator", "model", "calls", "from cache", "tokens in", "tokens out", "cost (list price)", "latency p50 / p90 / p99 ms"],
        ops.map((o) => [
          o.operator,
          o.model,
          n(o.calls),
          n(o.cached),
          n(o.promptTokens),
          n(o.completionTokens),
          usd(o.costUsd),
          o.latency ? `${Math.round(o.latency.p50)} / ${Math.round(o.latency.p90)} / ${Math.round(o.latency.p99)}` : "–",
        ]),
        [false, false, true, true, true, true, true, true],
      ),
    );
    parts.push(
      `<p class="note">Per operator and model from the provenance steps of the committed rows (a step shared by a fan-out's children counted once; retried and failed calls are only in the run totals). Cost at the built-in list prices as of ${esc(data.rows.llm.pricesAsOf)}, answers from the response cache free.</p>`,
    );
    parts.push(chart("llm-tokens", "Tokens in and out per operator and model"));
    parts.push(ops.some((o) => o.latency) ? chart("latency", "Latency percentiles per operator (calls answered by the endpoint)") : none("No latencies: every call was answered from the cache."));
  } else {
    parts.push(none("No LLM steps in the rows' provenance."));
  }
  return section("llm", "LLM", parts.join("\n"));
}

function timelineSection(data: ReportData): string {
  if (data.timeline.length < 2) return section("timeline", "Over time", none("No timeline (timeline.jsonl) in this run folder: throughput, in-flight and cost over time are not known."));
  const sessions = new Set(data.timeline.map((p) => p.session)).size;
  const parts = [
    chart("throughput", "Throughput: accepted and rejected per second"),
    chart("inflight", "Samples in flight, and the budget"),
    chart("llm-time", "LLM requests and tokens over the run"),
    chart("cost-time", "Cost so far and projected at completion"),
  ];
  if (sessions > 1) parts.unshift(`<p class="note">${n(sessions)} sessions (the run was resumed ${n(sessions - 1)} times); dashed lines mark each resume.</p>`);
  return section("timeline", "Over time", parts.join("\n"));
}

function samplesSection(data: ReportData): string {
  const samples = data.rows.samples;
  if (samples.length === 0) return section("samples", "Samples", none("No rows committed."));
  const reasons = [...new Set(samples.filter((s) => s.reason).map((s) => s.reason!))].sort();
  const operators = [...new Set(samples.filter((s) => s.operator).map((s) => s.operator!))].sort();
  const option = (value: string, label: string) => `<option value="${esc(value)}">${esc(label)}</option>`;
  const controls = `<div class="controls">
<label>show <select id="filter-kind">${option("all", "accepted and rejected")}${option("accepted", "accepted")}${option("rejected", "rejected")}</select></label>
<label>reject reason <select id="filter-reason">${option("", "any")}${reasons.map((r) => option(r, r)).join("")}</select></label>
<label>operator <select id="filter-operator">${option("", "any")}${operators.map((o) => option(o, o)).join("")}</select></label>
<span id="sample-count" class="muted"></span></div>`;
  const note = `<p class="note">A seeded random sample: up to 40 accepted rows and 8 per operator and reject reason, so every reason can be looked at.</p>`;
  return section("samples", "Samples", `${note}${controls}<div id="sample-list"></div>`);
}

function identitySection(data: ReportData): string {
  const id = data.identity;
  const endpoint = (id.endpoint as { endpoint?: { baseURL?: string; model?: string } } | null)?.endpoint;
  const rows: [string, string][] = [
    ["graph", id.graph],
    ["options hash", id.optionsHash],
    ["endpoint", endpoint?.baseURL ?? JSON.stringify(id.endpoint)],
    ["model", endpoint?.model ?? "–"],
    ["created", id.createdAt],
    ["last commit", id.updatedAt],
    ["complete", id.complete ? "yes" : "no"],
    ["shards", `${n(id.shards.accepted)} accepted, ${n(id.shards.rejects)} rejects, ${n(id.shards.bytes)} bytes`],
    ["report made by", `rxsynth ${id.versions.rxsynth}, node ${id.versions.node}`],
  ];
  if (id.chunks > 0) rows.push(["scaled out", `${n(id.chunks)} chunk folders, merged`]);
  const history = id.identityHistory as { identity: unknown; until: string }[];
  const parts = [table(["", ""], rows)];
  parts.push(history.length > 0 ? table(["earlier endpoint", "until"], history.map((h) => [JSON.stringify(h.identity), h.until])) : none("The endpoint never changed."));
  parts.push(
    id.sessions.length > 0
      ? table(
          ["session", "started", "ended", "accepted at its end", "rejected at its end"],
          id.sessions.map((s) => [s.session === 0 ? "0 (first run)" : `${s.session} (resume)`, new Date(s.startedAt).toISOString(), new Date(s.endedAt).toISOString(), n(s.accepted), n(s.rejected)]),
          [false, false, false, true, true],
        )
      : none("No timeline: the sessions (resumes) of this folder are not known."),
  );
  parts.push(`<details><summary>options</summary><pre>${esc(JSON.stringify(id.options, null, 2))}</pre></details>`);
  parts.push(`<details><summary>operator versions</summary><pre>${esc(Object.entries(id.operators).map(([k, v]) => `${k} v${v.version}`).join("\n"))}</pre></details>`);
  return section("identity", "Identity", parts.join("\n"));
}

const STYLE = `
:root{--fg:#1d2330;--muted:#667085;--line:#e4e7ec;--bg:#fafbfc;--accent:#3a63c9}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
header{padding:18px 28px 8px;background:#fff;border-bottom:1px solid var(--line);position:sticky;top:0;z-index:2}
h1{margin:0;font-size:22px}h2{font-size:18px;margin:0 0 12px}
.muted{color:var(--muted);font-weight:normal}
nav a{margin-right:14px;color:var(--accent);text-decoration:none;font-size:13px}
main{padding:16px 28px 60px;max-width:1320px}
section{background:#fff;border:1px solid var(--line);border-radius:8px;padding:16px 18px;margin:14px 0}
.cards{display:flex;flex-wrap:wrap;gap:10px}
.card{background:#fff;border:1px solid var(--line);border-radius:8px;padding:10px 16px;min-width:150px}
.card .k{color:var(--muted);font-size:12px}.card .v{font-size:20px;font-weight:600}
figure{margin:10px 0}figcaption{font-weight:600;margin-bottom:4px}
.chart{width:100%;height:320px}.chart.tall{height:520px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(560px,1fr));gap:10px}
table{border-collapse:collapse;margin:8px 0;font-size:13px}
th,td{border-bottom:1px solid var(--line);padding:4px 10px;text-align:left;vertical-align:top}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.none{color:var(--muted);font-style:italic}.note{color:var(--muted);font-size:12px}
.controls{display:flex;gap:16px;align-items:center;margin:8px 0;flex-wrap:wrap}
.sample{border:1px solid var(--line);border-radius:6px;margin:6px 0;padding:6px 10px}
.sample summary{cursor:pointer}.sample .tag{display:inline-block;border-radius:4px;padding:0 6px;margin-right:6px;font-size:12px}
.tag.accepted{background:#e6f4ea;color:#1e6b35}.tag.rejected{background:#fdecea;color:#a4262c}
.sample pre,details pre{white-space:pre-wrap;word-break:break-word;background:var(--bg);padding:6px;border-radius:4px;margin:4px 0;font-size:12px}
`;
