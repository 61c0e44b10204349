// Claim: deciding Self-Instruct's waves in a fixed order (graphs/self-instruct.ts, `deterministic: true`)
// makes two runs with the same seed write the same rows, and costs little throughput against folding rows
// in completion order (`deterministic: false`, the previous behaviour). The quickstart's pipeline (target
// 200) runs against the simulator with latency that varies with answer length: one warm-up run (not
// counted), then each contender RUNS times, alternating; reported: accepted rows per second (median of
// the runs), waves, peak RSS, and how many accepted ids the first two runs of a contender share.
//
//   npx tsx benchmarks/determinism.ts            (or: npm run bench -- determinism)
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { SIMULATOR_MODEL, buildGraph, listShardFiles, run, startSimulator } from "../src/index.ts";
import selfInstruct from "../graphs/self-instruct.ts";
import { defaults as quickstart } from "../graphs/quickstart.ts";
import { readParquetRows } from "../test/support/parquet.ts";

const RUNS = 3;
const TARGET = quickstart.target;
const SIMULATOR = { seed: quickstart.seed, latencyMs: 20, tokensPerS: 2_000 } as const;
const CONTENDERS = [
  { name: "fixed order (deterministic: true)", deterministic: true },
  { name: "completion order (deterministic: false)", deterministic: false },
] as const;

interface Measurement {
  seconds: number;
  rows: number;
  waves: number;
  ids: string[];
  peakRssMb: number;
}

async function once(deterministic: boolean): Promise<Measurement> {
  const out = await mkdtemp(join(tmpdir(), "rxsynth-bench-determinism-"));
  let peak = process.memoryUsage().rss;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50);
  try {
    const graph = await buildGraph(selfInstruct, { target: TARGET, seed: quickstart.seed, deterministic }, { log: () => {}, out });
    const started = performance.now();
    const summary = await run(graph, { out });
    const seconds = (performance.now() - started) / 1000;
    const ids: string[] = [];
    for (const file of await listShardFiles(out, { prefix: "part" })) for (const row of await readParquetRows(file)) ids.push(row.id as string);
    return { seconds, rows: summary.accepted, waves: summary.metrics.source.pulled, ids: ids.sort(), peakRssMb: peak / 2 ** 20 };
  } finally {
    clearInterval(sampler);
    await rm(out, { recursive: true, force: true });
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

async function main() {
  const simulator = await startSimulator(SIMULATOR);
  process.env.OPENAI_BASE_URL = simulator.url;
  process.env.RXSYNTH_MODEL = SIMULATOR_MODEL;
  // Every request is sent: a shared response cache would serve a repeated run for free.
  process.env.RXSYNTH_CACHE_DIR = "off";
  const measured = new Map<string, Measurement[]>(CONTENDERS.map((c) => [c.name, []]));
  try {
    await once(true);
    for (let i = 0; i < RUNS; i++) for (const contender of CONTENDERS) measured.get(contender.name)!.push(await once(contender.deterministic));
  } finally {
    await simulator.close();
  }

  const results = CONTENDERS.map((contender) => {
    const runs = measured.get(contender.name)!;
    const first = new Set(runs[0]!.ids);
    return {
      contender: contender.name,
      deterministic: contender.deterministic,
      rows: runs[0]!.rows,
      samples_per_s: median(runs.map((m) => m.rows / m.seconds)),
      seconds: runs.map((m) => Number(m.seconds.toFixed(2))),
      waves: runs[0]!.waves,
      peak_rss_mb: Math.max(...runs.map((m) => m.peakRssMb)),
      ids_shared_by_two_runs: runs[1]!.ids.filter((id) => first.has(id)).length,
      identical_runs: runs.every((m) => m.ids.join("\n") === runs[0]!.ids.join("\n")),
    };
  });
  const [fixed, completion] = results;
  const ratio = fixed!.samples_per_s / completion!.samples_per_s;

  console.log(`self-instruct, target ${TARGET}, simulator latency ${SIMULATOR.latencyMs} ms + ${SIMULATOR.tokensPerS} tokens/s, ${RUNS} runs each`);
  console.log(`${"contender".padEnd(42)}${"samples/s".padStart(11)}${"waves".padStart(7)}${"peak RSS MB".padStart(13)}${"ids shared".padStart(12)}  identical`);
  for (const r of results) {
    console.log(
      `${r.contender.padEnd(42)}${r.samples_per_s.toFixed(1).padStart(11)}${String(r.waves).padStart(7)}${r.peak_rss_mb.toFixed(0).padStart(13)}${`${r.ids_shared_by_two_runs}/${r.rows}`.padStart(12)}  ${r.identical_runs}`,
    );
  }
  console.log(`throughput ratio fixed / completion order: ${ratio.toFixed(3)}`);

  const dir = fileURLToPath(new URL("./results/", import.meta.url));
  await mkdir(dir, { recursive: true });
  const report = { benchmark: "determinism", target: TARGET, simulator: SIMULATOR, runs: RUNS, results, throughput_ratio: ratio, at: new Date().toISOString() };
  await writeFile(join(dir, "determinism.json"), `${JSON.stringify(report, null, 2)}\n`);
}

await main();
