import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import type { SweepResult } from "./endpoint-sweep.ts";

/** JSON inside a script element: `<` escaped so no text in the data (a model name) can close the element. */
function jsonForScript(value: unknown): string {
  return JSON.stringify(value).replace(/</g, "\\u003c").replace(/\u2028/g, "\\u2028").replace(/\u2029/g, "\\u2029");
}

function esc(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const num = (value: number, digits = 1) => (Number.isFinite(value) ? value.toFixed(digits) : "–");

/** Draws throughput and latency against concurrency (log axis), the knee marked; runs in the browser. */
const PAGE_SCRIPT = `
const data = JSON.parse(document.getElementById("sweep-data").textContent);
const levels = data.levels.map((l) => String(l.concurrency));
const chart = echarts.init(document.getElementById("curve"));
chart.setOption({
  tooltip: { trigger: "axis" },
  legend: { top: 0 },
  grid: { left: 70, right: 70, top: 40, bottom: 50 },
  xAxis: { type: "category", data: levels, name: "concurrency", nameLocation: "middle", nameGap: 30 },
  yAxis: [
    { type: "value", name: "requests/s", nameLocation: "middle", nameGap: 50 },
    { type: "value", name: "latency ms", nameLocation: "middle", nameGap: 50 },
  ],
  series: [
    { name: "requests/s", type: "line", data: data.levels.map((l) => l.requestsPerS),
      markLine: { symbol: "none", label: { formatter: "knee " + data.knee.knee }, data: [{ xAxis: String(data.knee.knee) }] } },
    { name: "p50 latency", type: "line", yAxisIndex: 1, data: data.levels.map((l) => l.latencyMs.p50) },
    { name: "p95 latency", type: "line", yAxisIndex: 1, lineStyle: { type: "dashed" }, data: data.levels.map((l) => l.latencyMs.p95) },
    { name: "p50 time to first token", type: "line", yAxisIndex: 1, lineStyle: { type: "dotted" }, data: data.levels.map((l) => l.ttftMs.p50) },
  ],
});
addEventListener("resize", () => chart.resize());
`;

const STYLE = `body{font:14px/1.5 system-ui,sans-serif;margin:2rem auto;max-width:60rem;color:#222}
.muted{color:#666}#curve{height:420px}table{border-collapse:collapse;margin-top:1rem}
td,th{padding:.2rem .7rem;text-align:right;border-bottom:1px solid #ddd}th:first-child,td:first-child{text-align:left}`;

/** One self-contained page (ECharts inlined, as in the run report): the curve, the knee and the table. */
export async function renderSweepPage(result: SweepResult): Promise<string> {
  const echarts = await readFile(createRequire(import.meta.url).resolve("echarts/dist/echarts.min.js"), "utf8");
  const rows = result.levels
    .map(
      (l) =>
        `<tr><td>${l.concurrency}</td><td>${num(l.requestsPerS)}</td><td>${num(l.outputTokensPerS, 0)}</td><td>${num(l.latencyMs.p50, 0)}</td><td>${num(l.latencyMs.p95, 0)}</td><td>${num(l.latencyMs.p99, 0)}</td><td>${num(l.ttftMs.p50, 0)}</td><td>${l.errors}</td></tr>`,
    )
    .join("\n");
  const knee = result.knee;
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>rxsynth bench: ${esc(result.model)}</title><style>${STYLE}</style></head>
<body>
<h1>${esc(result.model)} <span class="muted">at ${esc(result.baseURL)}</span></h1>
<p>${knee.reached ? `Knee at concurrency <b>${knee.knee}</b>: beyond it latency rises faster than throughput.` : `No knee up to concurrency ${knee.knee}: throughput was still rising; sweep higher levels.`}
Use concurrency <b>${knee.recommended}</b>. Little's law: about ${Math.round(knee.littleConcurrency)} requests served at once.</p>
<div id="curve"></div>
<table><thead><tr><th>concurrency</th><th>req/s</th><th>out tok/s</th><th>p50 ms</th><th>p95 ms</th><th>p99 ms</th><th>ttft p50 ms</th><th>errors</th></tr></thead>
<tbody>
${rows}
</tbody></table>
<p class="muted">${esc(result.client)}; ${result.settings.requests} requests and ${result.settings.seconds} s at least per level; started ${esc(result.startedAt)}.</p>
<script type="application/json" id="sweep-data">${jsonForScript(result)}</script>
<script>${echarts}</script>
<script>${PAGE_SCRIPT}</script>
</body>
</html>
`;
}
