/**
 * Claim: `rxsynth report` reads a 1M-row run folder in bounded memory (peak RSS under 300 MB) and writes a
 * page under 5 MB, where loading every row first (what a script over `readRows` does) needs memory that
 * grows with the run.
 *
 *   npx tsx benchmarks/report.ts            (REPORT_BENCH_ROWS=100000 for a quick try)
 *
 * Fixture first: a run folder of 1,000,000 rows written with the project's own Parquet sink (70 % accepted
 * in part-*.parquet, 30 % rejected under six reasons in rejects-*.parquet; instruction/input/output text,
 * 2-4 provenance steps with tokens and latencies, judge and run-time scores, near-duplicate rejects with
 * duplicate_of and Jaccard) and its manifest. Then, side by side, each in its own child process so its
 * peak RSS is its own:
 *   1. streaming: `rxsynth report <dir>` (one pass, batch by batch, bounded accumulators)
 *   2. in memory: readRows of every shard first, then the same accumulators and page
 * Writes benchmarks/results/report.json.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { ShardedSink, parquetFormat } from "../src/io/index.ts";
import { writeManifest, type Manifest } from "../src/io/manifest.ts";
import { readRows } from "../src/io/read.ts";
import type { OutputRow, ShardInfo } from "../src/io/types.ts";
import type { Sample } from "../src/index.ts";
import { collectReportData } from "../src/report/report-data.ts";
import { renderReport } from "../src/report/report-html.ts";
import type { ReportRow, RowKind } from "../src/report/report-rows.ts";
import { createProgram } from "../src/cli/main.ts";
import { round, writeResults } from "./lib/results.ts";

const ROWS = Number(process.env.REPORT_BENCH_ROWS ?? 1_000_000);
const REJECT_SHARE = 0.3;
const SEED = 7;
const WRITE_BATCH = 2_000;
const REASONS = [
  ["heuristics", "too_short"],
  ["heuristics", "dup_line_frac"],
  ["refusals", "refusal"],
  ["near_dedup", "near_duplicate"],
  ["judge", "low_score"],
  ["execute", "test_failed"],
] as const;
const OPERATORS = ["generate", "heuristics", "refusals", "near_dedup", "judge", "execute"];

function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

/** A vocabulary with a Zipf-like draw, so distinct-n and lengths look like text rather than noise. */
function textMaker(seed: number): (words: number) => string {
  const next = random(seed);
  const letters = "etaoinshrdlcumwfgypbvkjxqz";
  const vocabulary = Array.from({ length: 5_000 }, () => {
    const length = 2 + Math.floor(next() * 8);
    let word = "";
    for (let i = 0; i < length; i++) word += letters[Math.floor(next() ** 2 * letters.length)];
    return word;
  });
  return (words) => {
    const out: string[] = [];
    for (let i = 0; i < words; i++) out.push(vocabulary[Math.floor(next() ** 3 * vocabulary.length)]!);
    return out.join(" ");
  };
}

function makeRow(index: number, next: () => number, text: (words: number) => string, at: number): { row: OutputRow; rejected: boolean } {
  const stepCount = 2 + (index % 3);
  const steps = Array.from({ length: stepCount }, (_, s) => ({
    op: OPERATORS[s]!,
    version: "1",
    at: at + index * 3 + s,
    params: "5f1c0d9a2b7e4c31",
    ...(s === 0 || s === 4
      ? { model: s === 0 ? "gpt-4o-mini" : "gpt-4.1-mini", promptHash: `p${index}-${s}`, promptTokens: 180 + (index % 70), completionTokens: 120 + (index % 130), latencyMs: 300 + Math.floor(next() * 900) }
      : {}),
    ...(s === 1 ? { note: "checked" } : {}),
  }));
  const sample: Sample = {
    id: `row-${index}`,
    data: {
      instruction: text(6 + Math.floor(next() * 20)),
      input: next() < 0.4 ? "" : text(5 + Math.floor(next() * 40)),
      output: text(20 + Math.floor(next() ** 2 * 220)),
    },
    provenance: { origin: index % 10 === 0 ? "human" : "synthetic", source: "bench", parents: [`seed-${index >> 3}`], depth: index % 10 === 0 ? 0 : 1 + (index % 3), steps },
    scores: { judge: 1 + Math.floor(next() * 10), ...(index % 4 === 0 ? { exec_ms: 20 + Math.floor(next() ** 2 * 2_000) } : {}) },
  };
  if (next() >= REJECT_SHARE) return { row: sample, rejected: false };
  const [operator, reason] = REASONS[index % REASONS.length]!;
  const near = reason === "near_duplicate";
  return {
    row: { ...sample, reject: { operator, reason, at: at + index * 3, ...(near ? { duplicateOf: `row-${Math.floor(next() * index)}`, value: 0.8 + next() * 0.2, threshold: 0.8 } : { value: next(), threshold: 0.5 }) } },
    rejected: true,
  };
}

/** Writes the fixture run folder; returns its committed shards. */
async function writeFixture(dir: string): Promise<{ shards: ShardInfo[]; accepted: number; rejected: number }> {
  const format = parquetFormat();
  const accepted = new ShardedSink(dir, format, "accepted", { prefix: "part" });
  const rejects = new ShardedSink(dir, format, "rejects", { prefix: "rejects" });
  const next = random(SEED);
  const text = textMaker(SEED);
  const at = Date.UTC(2026, 0, 1);
  const shards: ShardInfo[] = [];
  let counts = { accepted: 0, rejected: 0 };
  for (let start = 0; start < ROWS; start += WRITE_BATCH) {
    const keep: OutputRow[] = [];
    const drop: OutputRow[] = [];
    for (let index = start; index < Math.min(ROWS, start + WRITE_BATCH); index++) {
      const { row, rejected } = makeRow(index, next, text, at);
      (rejected ? drop : keep).push(row);
    }
    counts = { accepted: counts.accepted + keep.length, rejected: counts.rejected + drop.length };
    await accepted.write(keep);
    await rejects.write(drop);
  }
  // The manifest names shards relative to the run folder.
  for (const shard of [...(await accepted.commit()), ...(await rejects.commit())]) shards.push({ ...shard, file: basename(shard.file) });
  return { shards, ...counts };
}

function manifestFor(shards: ShardInfo[], accepted: number, rejected: number): Manifest {
  const now = new Date(Date.UTC(2026, 0, 1)).toISOString();
  return {
    version: 1,
    graph: "report-bench",
    optionsHash: "0000000000000000",
    options: { rows: ROWS },
    identity: { endpoint: { baseURL: "https://api.example.invalid/v1", model: "gpt-4o-mini" } },
    createdAt: now,
    updatedAt: now,
    complete: true,
    shards,
    sources: {},
    partial: {},
    operators: Object.fromEntries(OPERATORS.map((name) => [name, { version: "1", params: {} }])),
    totals: { "llm.requests": ROWS * 2 },
    operatorCounts: { generate: { in: ROWS, out: ROWS, rejected: 0 }, sink: { in: ROWS, out: accepted, rejected } },
  };
}

interface ChildResult {
  readonly rows: number;
  readonly seconds: number;
  readonly peakRssMb: number;
  readonly bytes: number;
}

/** The contender in its own process, so the peak RSS it reports (getrusage) is its own. */
async function inChild(mode: "streaming" | "in-memory", dir: string): Promise<ChildResult> {
  const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", fileURLToPath(import.meta.url), "--child", mode, dir], {
    maxBuffer: 1 << 20,
    env: { ...process.env, NODE_OPTIONS: "--max-old-space-size=16384" },
  });
  return JSON.parse(stdout.trim().split("\n").at(-1)!) as ChildResult;
}

async function child(mode: string, dir: string): Promise<void> {
  const started = performance.now();
  const manifest = JSON.parse(await readFile(join(dir, "manifest.json"), "utf8")) as Manifest;
  let rows = manifest.shards.reduce((sum, shard) => sum + shard.rows, 0);
  let bytes: number;
  if (mode === "streaming") {
    // Exactly what `rxsynth report <dir> --out <file>` runs.
    const out = join(dir, "report-streaming.html");
    const log = console.log;
    console.log = () => {};
    await createProgram().parseAsync(["node", "rxsynth", "report", dir, "--out", out, "--no-card"]);
    console.log = log;
    bytes = (await stat(out)).size;
  } else {
    const loaded: Record<RowKind, ReportRow[]> = {
      accepted: (await readRows(dir, { prefix: "part" })) as unknown as ReportRow[],
      rejected: (await readRows(dir, { prefix: "rejects" })) as unknown as ReportRow[],
    };
    rows = loaded.accepted.length + loaded.rejected.length;
    const html = await renderReport(await collectReportData(dir, {}, async function* (kind) {
      yield loaded[kind];
    }));
    await writeFile(join(dir, "report-in-memory.html"), html);
    bytes = Buffer.byteLength(html);
  }
  const seconds = (performance.now() - started) / 1000;
  // maxRSS is in kilobytes.
  console.log(JSON.stringify({ rows, seconds, peakRssMb: process.resourceUsage().maxRSS / 1024, bytes }));
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "rxsynth-report-bench-"));
  try {
    const fixtureStarted = performance.now();
    const { shards, accepted, rejected } = await writeFixture(dir);
    await writeManifest(dir, manifestFor(shards, accepted, rejected));
    const fixtureSeconds = (performance.now() - fixtureStarted) / 1000;
    const fileMb = shards.reduce((sum, shard) => sum + shard.bytes, 0) / 1e6;
    console.log(`fixture: ${ROWS.toLocaleString("en")} rows (${accepted.toLocaleString("en")} accepted, ${rejected.toLocaleString("en")} rejected), ${shards.length} shards, ${fileMb.toFixed(0)} MB of Parquet, written in ${fixtureSeconds.toFixed(1)} s`);
    const streaming = await inChild("streaming", dir);
    const inMemory = await inChild("in-memory", dir);
    const rate = (r: ChildResult) => r.rows / r.seconds;
    console.log("");
    console.log("contender        rows/s     peak RSS MB   page bytes   seconds");
    for (const [name, r] of [["streaming", streaming], ["in memory", inMemory]] as const) {
      console.log(`${name.padEnd(14)} ${Math.round(rate(r)).toLocaleString("en").padStart(9)}  ${r.peakRssMb.toFixed(0).padStart(12)}  ${r.bytes.toLocaleString("en").padStart(11)}  ${r.seconds.toFixed(1).padStart(8)}`);
    }
    await writeResults("report", {
      claim: "report generation over a 1M-row run folder in bounded memory (peak RSS < 300 MB) with a page < 5 MB",
      rows: ROWS,
      fixture: { accepted, rejected, shards: shards.length, parquet_mb: round(fileMb, 1) },
      report_rows_per_s: Math.round(rate(streaming)),
      report_peak_rss_mb: Math.round(streaming.peakRssMb),
      report_bytes: streaming.bytes,
      report_seconds: round(streaming.seconds, 1),
      baseline_in_memory: {
        rows_per_s: Math.round(rate(inMemory)),
        peak_rss_mb: Math.round(inMemory.peakRssMb),
        bytes: inMemory.bytes,
        seconds: round(inMemory.seconds, 1),
      },
      ratios: {
        rows_per_s_streaming_over_in_memory: round(rate(streaming) / rate(inMemory)),
        peak_rss_in_memory_over_streaming: round(inMemory.peakRssMb / streaming.peakRssMb),
      },
      machine: { cpus: (await import("node:os")).cpus().length, node: process.version },
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const at = process.argv.indexOf("--child");
const fixtureAt = process.argv.indexOf("--fixture");
if (at >= 0) await child(process.argv[at + 1]!, process.argv[at + 2]!);
else if (fixtureAt >= 0) {
  // Only the fixture, into a folder that stays: for looking at the report (`rxsynth report <dir>`).
  const dir = process.argv[fixtureAt + 1]!;
  const { shards, accepted, rejected } = await writeFixture(dir);
  await writeManifest(dir, manifestFor(shards, accepted, rejected));
} else await main();
