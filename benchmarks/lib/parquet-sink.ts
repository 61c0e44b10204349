// Parquet sink throughput: rows of ~1 KB text with full provenance through ShardedSink + parquetFormat
// (zstd, row groups of 10,000) into a temporary folder. Used by benchmarks/engine.ts.
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ShardedSink, parquetFormat } from "../../src/io/index.ts";
import type { Sample } from "../../src/index.ts";

const TEXT_BYTES = 1000;
const POOL = 16_384;
/** Rows handed to the sink per write, like the runner's sink batches. */
const WRITE_BATCH = 1000;

/** Deterministic word soup: zstd finds in it about what it finds in prose, not the runs of a repeated char. */
function textPool(seed: number): string[] {
  let state = seed >>> 0;
  const next = (): number => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
  const letters = "etaoinshrdlcumwfgypbvkjxqz";
  const vocabulary = Array.from({ length: 2000 }, () => {
    const length = 2 + Math.floor(next() * 9);
    let word = "";
    for (let i = 0; i < length; i++) word += letters[Math.floor(next() ** 2 * letters.length)];
    return word;
  });
  return Array.from({ length: POOL }, () => {
    let text = "";
    while (text.length < TEXT_BYTES) text += `${vocabulary[Math.floor(next() * vocabulary.length)]} `;
    return text.slice(0, TEXT_BYTES);
  });
}

function sampleAt(index: number, pool: readonly string[], at: number): Sample {
  // Stepping through the pool by a prime makes every text in a row group distinct and puts equal
  // texts 16 MB apart, beyond zstd's window: the file compresses as if every text were unique.
  const text = pool[(index * 7919) % POOL]!;
  return {
    id: `bench-${index}`,
    data: { instruction: `Summarise passage ${index}.`, text },
    provenance: {
      origin: "synthetic",
      source: "bench",
      parents: [`seed-${index >> 2}`],
      depth: 1,
      steps: [
        {
          op: "selfInstruct",
          version: "1",
          at: at + index,
          params: "5f1c0d9a2b7e4c31",
          model: "sim-1",
          promptHash: "a3b9c2d4e5f60718",
          promptTokens: 212 + (index % 50),
          completionTokens: 256 + (index % 97),
          latencyMs: 12.5 + (index % 13),
        },
      ],
    },
    scores: { quality: (index % 100) / 100, length: TEXT_BYTES },
  };
}

export async function measureParquetSink(rows = 200_000): Promise<{
  parquet_mb_per_s: number;
  rows: number;
  mb: number;
  seconds: number;
  peak_rss_mb: number;
  files: number;
}> {
  const pool = textPool(42);
  const dir = await mkdtemp(join(tmpdir(), "rxsynth-parquet-bench-"));
  let peakRss = process.memoryUsage.rss();
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage.rss());
  }, 50);
  try {
    const sink = new ShardedSink(dir, parquetFormat({ rowGroupRows: 10_000, compression: "zstd" }), "accepted", {
      maxRowsPerShard: 100_000,
    });
    const at = Date.UTC(2025, 0, 1);
    // MB counts the input text only (the `text` field, UTF-8 bytes, 10^6 per MB): the payload a user
    // cares about; ids, instruction and provenance ride along unmeasured.
    let textBytes = 0;
    const started = performance.now();
    for (let start = 0; start < rows; start += WRITE_BATCH) {
      const batch: Sample[] = [];
      for (let index = start; index < Math.min(rows, start + WRITE_BATCH); index++) {
        const sample = sampleAt(index, pool, at);
        textBytes += (sample.data.text as string).length; // ASCII: one byte per character
        batch.push(sample);
      }
      await sink.write(batch);
      peakRss = Math.max(peakRss, process.memoryUsage.rss());
    }
    await sink.commit();
    const seconds = (performance.now() - started) / 1000;
    const files = (await readdir(dir)).filter((name) => name.endsWith(".parquet")).length;
    const mb = textBytes / 1e6;
    return {
      parquet_mb_per_s: Math.round((mb / seconds) * 10) / 10,
      rows,
      mb: Math.round(mb * 10) / 10,
      seconds: Math.round(seconds * 1000) / 1000,
      peak_rss_mb: Math.round(Math.max(peakRss, process.resourceUsage().maxRSS * 1024) / 2 ** 20),
      files,
    };
  } finally {
    clearInterval(sampler);
    await rm(dir, { recursive: true, force: true });
  }
}
