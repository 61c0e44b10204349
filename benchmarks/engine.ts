// Claim (issue 9's targets): the engine streams a 5-stage graph at least as fast as a hand-written async-generator
// loop that pulls in batches as rxsynth does (vs_async_loop_batched >= 1.0) and 1.5x Node streams, with memory
// bounded by the budget (peak RSS < 200 MB over 5M samples), and the Parquet sink writes >= 50 MB/s. Each contender
// runs in its own child process so one's heap does not tax another, in ROUNDS rounds; ratios are medians of the
// rounds' ratios. The baselines do the per-record work the engine does for its promises, with the engine's own
// classes (benchmarks/lib/engine-work.ts: the repeated-id check, the finished positions a resume reads); the
// `_bare` keys are the loops without it, to show what that work costs. The "rows checked for encoders" line adds
// the walk the runner does for rows bound for file sinks.
//
//   npm run bench -- engine            (or: npx tsx benchmarks/engine.ts)
import { spawnSync } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { cpus, loadavg } from "node:os";
import { Readable, Transform, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { fileURLToPath } from "node:url";
import { bufferCount, concatMap, from, lastValueFrom, mergeMap, map, filter, type Observable } from "rxjs";
import {
  defineAsyncMap,
  defineFilter,
  defineMap,
  run,
  type Operator,
  type OutputRow,
  type RunSink,
  type Sample,
  type Source,
  type SourceItem,
} from "../src/index.ts";
import {
  doubled,
  incremented,
  keepNotTenth,
  makeRecord,
  RecordBookkeeping,
  resolvedScore,
  rootSample,
  sourceItem,
  stampedCopy,
} from "./lib/engine-work.ts";

const THROUGHPUT_SAMPLES = 2_000_000;
const MEMORY_SAMPLES = 5_000_000;
/** Source batch and the baselines' sink batch; the engine uses its defaults (budget 1024, sink batch 256). */
const BATCH = 1024;
const BUDGET = 1024;
const NAIVE_RSS_CUTOFF_MB = 1024;
/**
 * Every contender runs with the flags the `rxsynth` command sets for itself (bin/rxsynth.mjs): without
 * them V8's allocation-site pretenuring sends about one engine run in three into a mode 4x slower, so a
 * figure would say which mode the run fell into rather than what the engine costs.
 */
const V8_FLAGS = ["--no-allocation-site-pretenuring"];

const THROUGHPUT_PARTS = [
  "rxsynth",
  "rxsynth-encoding-checked",
  "async-loop",
  "async-loop-batched",
  "async-loop-batched-bare",
  "node-streams",
  "node-streams-bare",
] as const;
type ThroughputPart = (typeof THROUGHPUT_PARTS)[number];
/** Rounds of the throughput contenders (odd, for a median). */
const ROUNDS = 3;

type Part =
  | "rxsynth"
  | "rxsynth-encoding-checked"
  | "async-loop"
  | "async-loop-batched"
  | "async-loop-batched-bare"
  | "node-streams"
  | "node-streams-bare"
  | "memory-rxsynth"
  | "memory-naive"
  | "parquet";

interface ThroughputResult {
  samples: number;
  accepted: number;
  seconds: number;
  samples_per_s: number;
}

interface MemoryResult {
  samples_done: number;
  /** RSS of the contender's process before it ran anything: node, tsx's compiled modules, the imports. */
  rss_before_run_mb: number;
  peak_rss_mb: number;
  rss_at_1m_mb: number | null;
  rss_at_5m_mb: number | null;
  max_in_flight: number;
  cut_off: boolean;
  seconds: number;
}

// ---------------------------------------------------------------- fixtures

function countingSource(total: number): Source {
  return {
    name: "bench",
    origin: "human",
    size: async () => total,
    async *batches({ from: start }) {
      for (let i = start; i < total; i += BATCH) {
        const end = Math.min(total, i + BATCH);
        const batch: SourceItem[] = new Array(end - i);
        for (let j = i; j < end; j++) batch[j - i] = { position: j, id: `bench:${j}`, data: makeRecord(j) };
        yield batch;
      }
    },
  };
}

function engineStages(): Operator[] {
  return [
    defineMap({ name: "double", map: (sample) => ({ data: doubled(sample.data) }) }),
    defineFilter({ name: "drop_tenth", test: (sample) => (keepNotTenth(sample.data) ? true : { keep: false, reason: "tenth" }) }),
    defineMap({ name: "increment", map: (sample) => ({ data: incremented(sample.data) }) }),
    defineAsyncMap({ name: "score", concurrency: 8, map: async (sample) => ({ scores: { score: await resolvedScore(sample) } }) }),
    defineMap({ name: "tag", map: () => ({ provenance: { source: "bench-tagged" } }) }),
  ];
}

/**
 * A sink that costs what the issue asks: `delayMs` per batch (0 = a resolved promise). It counts rows and
 * encodes nothing, so it says so (`storesObjects`) unless asked to be taken for an encoder: then the runner
 * walks every row for values no encoder could write, as it does for its own file sinks.
 */
class CountingSink implements RunSink {
  rows = 0;
  readonly storesObjects: boolean;
  constructor(private readonly delayMs: number, options: { readonly asEncoder?: boolean } = {}) {
    this.storesObjects = options.asEncoder !== true;
  }
  async write(rows: readonly OutputRow[]): Promise<void> {
    if (this.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.delayMs));
    this.rows += rows.length;
  }
  async commit() {
    return [];
  }
  async abort() {}
}

function sinkWait(delayMs: number): Promise<void> {
  return delayMs > 0 ? new Promise((resolve) => setTimeout(resolve, delayMs)) : Promise.resolve();
}

// ---------------------------------------------------------------- throughput contenders

/** `asEncoder`: the sinks are taken for encoders, so the runner also walks every row as it does for file sinks. */
async function rxsynthThroughput(asEncoder = false): Promise<ThroughputResult> {
  const accepted = new CountingSink(0, { asEncoder });
  const started = performance.now();
  const summary = await run(
    {
      name: "bench",
      sources: [countingSource(THROUGHPUT_SAMPLES)],
      operators: engineStages(),
      sinks: { accepted: [accepted], rejects: new CountingSink(0, { asEncoder }) },
    },
    { budget: BUDGET },
  );
  const seconds = (performance.now() - started) / 1000;
  return { samples: THROUGHPUT_SAMPLES, accepted: summary.accepted, seconds, samples_per_s: THROUGHPUT_SAMPLES / seconds };
}

/** Every baseline ends with each record finished, or it did not do the engine's bookkeeping. */
function checkFinished(books: RecordBookkeeping | undefined): void {
  if (books && books.watermark !== THROUGHPUT_SAMPLES) throw new Error(`baseline finished ${books.watermark} of ${THROUGHPUT_SAMPLES} records`);
}

async function asyncLoopThroughput(): Promise<ThroughputResult> {
  const books = new RecordBookkeeping(THROUGHPUT_SAMPLES);
  async function* source() {
    for (let i = 0; i < THROUGHPUT_SAMPLES; i++) {
      const item = sourceItem(i);
      books.readOne(item);
      yield rootSample(item);
    }
  }
  async function* mapStage(input: AsyncIterable<Sample>, op: string, fn: (data: Sample["data"]) => Sample["data"]) {
    for await (const sample of input) yield stampedCopy(sample, op, fn(sample.data));
  }
  async function* filterStage(input: AsyncIterable<Sample>, rejected: Sample[]) {
    for await (const sample of input) {
      if (keepNotTenth(sample.data)) yield sample;
      else {
        rejected.push(sample);
        books.finish(sample);
      }
    }
  }
  async function* asyncStage(input: AsyncIterable<Sample>, concurrency: number) {
    const pending = new Set<Promise<Sample>>();
    const settled: Sample[] = [];
    const launch = (sample: Sample) => {
      const task: Promise<Sample> = resolvedScore(sample).then((score) => {
        pending.delete(task);
        settled.push({ ...sample, scores: { ...sample.scores, score } });
        return sample;
      });
      pending.add(task);
    };
    for await (const sample of input) {
      launch(sample);
      while (settled.length > 0) yield settled.shift()!;
      if (pending.size >= concurrency) await Promise.race(pending);
      while (settled.length > 0) yield settled.shift()!;
    }
    await Promise.all(pending);
    while (settled.length > 0) yield settled.shift()!;
  }
  async function* tag(input: AsyncIterable<Sample>) {
    for await (const sample of input) yield stampedCopy(sample, "tag", sample.data, sample.scores, "bench-tagged");
  }
  const rejected: Sample[] = [];
  const started = performance.now();
  let accepted = 0;
  let batch: Sample[] = [];
  const chain = tag(asyncStage(mapStage(filterStage(mapStage(source(), "double", doubled), rejected), "increment", incremented), 8));
  for await (const sample of chain) {
    batch.push(sample);
    if (batch.length === BATCH) {
      await sinkWait(0);
      accepted += batch.length;
      for (const written of batch) books.finish(written);
      batch = [];
    }
    if (rejected.length >= BATCH) rejected.length = 0;
  }
  accepted += batch.length;
  for (const written of batch) books.finish(written);
  const seconds = (performance.now() - started) / 1000;
  checkFinished(books);
  return { samples: THROUGHPUT_SAMPLES, accepted, seconds, samples_per_s: THROUGHPUT_SAMPLES / seconds };
}

/**
 * The same stages as a hand-written loop that pulls in batches as rxsynth does: the source yields
 * arrays of BATCH records, each stage maps a whole array, the async stage runs 8 at a time within it.
 * `bare`: without the engine's per-record bookkeeping (the id check and finished positions), to show what
 * that costs.
 */
async function asyncLoopBatchedThroughput(bare = false): Promise<ThroughputResult> {
  const books = bare ? undefined : new RecordBookkeeping(THROUGHPUT_SAMPLES);
  async function* source() {
    for (let i = 0; i < THROUGHPUT_SAMPLES; i += BATCH) {
      const end = Math.min(THROUGHPUT_SAMPLES, i + BATCH);
      const items: SourceItem[] = new Array(end - i);
      for (let j = i; j < end; j++) items[j - i] = sourceItem(j);
      books?.read(items);
      const batch: Sample[] = new Array(end - i);
      for (let j = 0; j < items.length; j++) batch[j] = rootSample(items[j]!);
      yield batch;
    }
  }
  async function* mapStage(input: AsyncIterable<Sample[]>, op: string, fn: (data: Sample["data"]) => Sample["data"]) {
    for await (const batch of input) yield batch.map((sample) => stampedCopy(sample, op, fn(sample.data)));
  }
  async function* filterStage(input: AsyncIterable<Sample[]>, rejected: Sample[]) {
    for await (const batch of input) {
      const kept: Sample[] = [];
      for (const sample of batch) {
        if (keepNotTenth(sample.data)) kept.push(sample);
        else {
          rejected.push(sample);
          books?.finish(sample);
        }
      }
      yield kept;
    }
  }
  async function* asyncStage(input: AsyncIterable<Sample[]>, concurrency: number) {
    for await (const batch of input) {
      const out: Sample[] = new Array(batch.length);
      let next = 0;
      const worker = async () => {
        while (next < batch.length) {
          const index = next++;
          const sample = batch[index]!;
          out[index] = { ...sample, scores: { ...sample.scores, score: await resolvedScore(sample) } };
        }
      };
      await Promise.all(Array.from({ length: Math.min(concurrency, batch.length) }, worker));
      yield out;
    }
  }
  async function* tag(input: AsyncIterable<Sample[]>) {
    for await (const batch of input) yield batch.map((sample) => stampedCopy(sample, "tag", sample.data, sample.scores, "bench-tagged"));
  }
  const rejected: Sample[] = [];
  const started = performance.now();
  let accepted = 0;
  const chain = tag(asyncStage(mapStage(filterStage(mapStage(source(), "double", doubled), rejected), "increment", incremented), 8));
  for await (const batch of chain) {
    await sinkWait(0);
    accepted += batch.length;
    if (books) for (const written of batch) books.finish(written);
    if (rejected.length >= BATCH) rejected.length = 0;
  }
  const seconds = (performance.now() - started) / 1000;
  checkFinished(books);
  return { samples: THROUGHPUT_SAMPLES, accepted, seconds, samples_per_s: THROUGHPUT_SAMPLES / seconds };
}

/** `bare`: without the engine's per-record bookkeeping, as for the batched loop. */
async function nodeStreamsThroughput(bare = false): Promise<ThroughputResult> {
  const books = bare ? undefined : new RecordBookkeeping(THROUGHPUT_SAMPLES);
  const mapTransform = (op: string, fn: (data: Sample["data"]) => Sample["data"]) =>
    new Transform({
      objectMode: true,
      transform(sample: Sample, _encoding, callback) {
        callback(null, stampedCopy(sample, op, fn(sample.data)));
      },
    });
  const rejected: Sample[] = [];
  const filterTransform = new Transform({
    objectMode: true,
    transform(sample: Sample, _encoding, callback) {
      if (keepNotTenth(sample.data)) callback(null, sample);
      else {
        rejected.push(sample);
        books?.finish(sample);
        if (rejected.length >= BATCH) rejected.length = 0;
        callback();
      }
    },
  });
  // The usual bounded-concurrency Transform: accept input while fewer than 8 are pending.
  let pending = 0;
  let waiting: (() => void) | undefined;
  let flushWhenIdle: (() => void) | undefined;
  const asyncTransform = new Transform({
    objectMode: true,
    transform(sample: Sample, _encoding, callback) {
      pending++;
      resolvedScore(sample).then((score) => {
        this.push({ ...sample, scores: { ...sample.scores, score } });
        pending--;
        if (waiting) {
          const resume = waiting;
          waiting = undefined;
          resume();
        }
        if (pending === 0 && flushWhenIdle) flushWhenIdle();
      });
      if (pending < 8) callback();
      else waiting = () => callback();
    },
    flush(callback) {
      if (pending === 0) callback();
      else flushWhenIdle = () => callback();
    },
  });
  let accepted = 0;
  let batch: Sample[] = [];
  const sink = new Writable({
    objectMode: true,
    write(sample: Sample, _encoding, callback) {
      batch.push(sample);
      if (batch.length < BATCH) return callback();
      accepted += batch.length;
      if (books) for (const written of batch) books.finish(written);
      batch = [];
      sinkWait(0).then(() => callback());
    },
    final(callback) {
      accepted += batch.length;
      if (books) for (const written of batch) books.finish(written);
      callback();
    },
  });
  function* source() {
    for (let i = 0; i < THROUGHPUT_SAMPLES; i++) {
      const item = sourceItem(i);
      books?.readOne(item);
      yield rootSample(item);
    }
  }
  const started = performance.now();
  await pipeline(
    Readable.from(source(), { objectMode: true }),
    mapTransform("double", doubled),
    filterTransform,
    mapTransform("increment", incremented),
    asyncTransform,
    new Transform({
      objectMode: true,
      transform(sample: Sample, _encoding, callback) {
        callback(null, stampedCopy(sample, "tag", sample.data, sample.scores, "bench-tagged"));
      },
    }),
    sink,
  );
  const seconds = (performance.now() - started) / 1000;
  checkFinished(books);
  return { samples: THROUGHPUT_SAMPLES, accepted, seconds, samples_per_s: THROUGHPUT_SAMPLES / seconds };
}

// ---------------------------------------------------------------- bounded memory

function rssMb(): number {
  return process.memoryUsage.rss() / 2 ** 20;
}

class RssProbe {
  peak = rssMb();
  at1m: number | null = null;
  at5m: number | null = null;
  private readonly timer = setInterval(() => this.sample(), 20);
  sample(): number {
    const now = rssMb();
    if (now > this.peak) this.peak = now;
    return now;
  }
  /** RSS after a full GC at 1M and 5M samples: what the run retains, not garbage not yet collected. */
  mark(done: number, before: number) {
    if (before < 1_000_000 && done >= 1_000_000) this.at1m = this.retained();
    if (before < 5_000_000 && done >= 5_000_000) this.at5m = this.retained();
  }
  private retained(): number {
    (globalThis as { gc?: () => void }).gc?.();
    return this.sample();
  }
  stop() {
    clearInterval(this.timer);
    this.sample();
  }
}

async function rxsynthMemory(): Promise<MemoryResult> {
  const before = rssMb();
  const probe = new RssProbe();
  let done = 0;
  const sink: RunSink = {
    storesObjects: true,
    async write(rows) {
      await sinkWait(1);
      const before = done;
      done += rows.length;
      probe.mark(done, before);
    },
    commit: async () => [],
    abort: async () => {},
  };
  const rejects: RunSink = {
    storesObjects: true,
    async write(rows) {
      const before = done;
      done += rows.length;
      probe.mark(done, before);
    },
    commit: async () => [],
    abort: async () => {},
  };
  const started = performance.now();
  const summary = await run(
    { name: "bench-memory", sources: [countingSource(MEMORY_SAMPLES)], operators: engineStages(), sinks: { accepted: [sink], rejects } },
    { budget: BUDGET, sinkBatch: BATCH },
  );
  probe.stop();
  return {
    samples_done: done,
    rss_before_run_mb: before,
    peak_rss_mb: probe.peak,
    rss_at_1m_mb: probe.at1m,
    rss_at_5m_mb: probe.at5m,
    max_in_flight: summary.maxInFlight,
    cut_off: false,
    seconds: (performance.now() - started) / 1000,
  };
}

/** The pipeline people write first: RxJS concurrency without credit. It reads the source as fast as it can. */
async function naiveMemory(): Promise<MemoryResult> {
  const before = rssMb();
  const probe = new RssProbe();
  let done = 0;
  let pulled = 0;
  let maxInFlight = 0;
  let cutOff = false;
  async function* source() {
    for (let i = 0; i < MEMORY_SAMPLES; i++) {
      if (i % 4096 === 0 && probe.sample() > NAIVE_RSS_CUTOFF_MB) {
        cutOff = true;
        return;
      }
      pulled++;
      yield rootSample(sourceItem(i));
    }
  }
  const started = performance.now();
  const stream: Observable<unknown> = from(source()).pipe(
    map((sample) => stampedCopy(sample, "double", doubled(sample.data))),
    filter((sample) => {
      if (keepNotTenth(sample.data)) return true;
      done++;
      return false;
    }),
    map((sample) => stampedCopy(sample, "increment", incremented(sample.data))),
    mergeMap(async (sample) => ({ ...sample, scores: { ...sample.scores, score: await resolvedScore(sample) } }), 8),
    map((sample) => stampedCopy(sample, "tag", sample.data, sample.scores, "bench-tagged")),
    bufferCount(BATCH),
    concatMap(async (batch) => {
      await sinkWait(1);
      const before = done;
      done += batch.length;
      probe.mark(done, before);
      maxInFlight = Math.max(maxInFlight, pulled - done);
    }),
  );
  const watch = setInterval(() => (maxInFlight = Math.max(maxInFlight, pulled - done)), 20);
  await lastValueFrom(stream, { defaultValue: undefined });
  clearInterval(watch);
  probe.stop();
  return {
    samples_done: done,
    rss_before_run_mb: before,
    peak_rss_mb: probe.peak,
    rss_at_1m_mb: probe.at1m,
    rss_at_5m_mb: probe.at5m,
    max_in_flight: maxInFlight,
    cut_off: cutOff,
    seconds: (performance.now() - started) / 1000,
  };
}

// ---------------------------------------------------------------- orchestration

async function runPart(part: Part): Promise<unknown> {
  switch (part) {
    case "rxsynth":
      return rxsynthThroughput();
    case "rxsynth-encoding-checked":
      return rxsynthThroughput(true);
    case "async-loop":
      return asyncLoopThroughput();
    case "async-loop-batched":
      return asyncLoopBatchedThroughput();
    case "async-loop-batched-bare":
      return asyncLoopBatchedThroughput(true);
    case "node-streams":
      return nodeStreamsThroughput();
    case "node-streams-bare":
      return nodeStreamsThroughput(true);
    case "memory-rxsynth":
      return rxsynthMemory();
    case "memory-naive":
      return naiveMemory();
    case "parquet": {
      const { measureParquetSink } = await import("./lib/parquet-sink.ts");
      return measureParquetSink(200_000);
    }
  }
}

function inChild<T>(part: Part): T {
  const result = spawnSync(process.execPath, ["--expose-gc", ...V8_FLAGS, "--import", "tsx", fileURLToPath(import.meta.url), "--part", part], {
    encoding: "utf8",
    maxBuffer: 1 << 24,
  });
  if (result.status !== 0) throw new Error(`benchmark part ${part} failed:\n${result.stderr}`);
  const line = result.stdout.trim().split("\n").at(-1)!;
  return JSON.parse(line) as T;
}

const round = (value: number, digits = 2) => Math.round(value * 10 ** digits) / 10 ** digits;

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

async function main() {
  const partFlag = process.argv.indexOf("--part");
  if (partFlag >= 0) {
    console.log(JSON.stringify(await runPart(process.argv[partFlag + 1] as Part)));
    return;
  }
  console.log(`engine benchmark: ${THROUGHPUT_SAMPLES.toLocaleString()} samples x 5 stages, then ${MEMORY_SAMPLES.toLocaleString()} samples into a 1 ms/batch sink`);
  // Rounds of every contender in turn: a ratio is the median of its rounds' ratios, each taken between runs
  // seconds apart, so the drift of a shared machine cancels; a throughput is the round of the median engine run.
  const rounds: Record<ThroughputPart, ThroughputResult>[] = [];
  for (let index = 0; index < ROUNDS; index++) {
    rounds.push(Object.fromEntries(THROUGHPUT_PARTS.map((part) => [part, inChild<ThroughputResult>(part)])) as Record<ThroughputPart, ThroughputResult>);
  }
  const medianRound = [...rounds].sort((a, b) => a.rxsynth.samples_per_s - b.rxsynth.samples_per_s)[Math.floor(ROUNDS / 2)]!;
  const ratio = (part: ThroughputPart) => median(rounds.map((each) => each.rxsynth.samples_per_s / each[part].samples_per_s));
  const {
    rxsynth: rx,
    "rxsynth-encoding-checked": checked,
    "async-loop": loop,
    "async-loop-batched": batched,
    "async-loop-batched-bare": batchedBare,
    "node-streams": streams,
    "node-streams-bare": streamsBare,
  } = medianRound;
  const memory = inChild<MemoryResult>("memory-rxsynth");
  const naive = inChild<MemoryResult>("memory-naive");
  const parquet = inChild<{ parquet_mb_per_s: number; rows: number; mb: number; seconds: number; peak_rss_mb: number; files: number }>("parquet");

  console.table({
    rxsynth: { "samples/s": Math.round(rx.samples_per_s), accepted: rx.accepted, seconds: round(rx.seconds) },
    "rxsynth, rows checked for encoders": { "samples/s": Math.round(checked.samples_per_s), accepted: checked.accepted, seconds: round(checked.seconds) },
    "async-generator loop": { "samples/s": Math.round(loop.samples_per_s), accepted: loop.accepted, seconds: round(loop.seconds) },
    "async-generator loop, batched": { "samples/s": Math.round(batched.samples_per_s), accepted: batched.accepted, seconds: round(batched.seconds) },
    "async-generator loop, batched, bare": { "samples/s": Math.round(batchedBare.samples_per_s), accepted: batchedBare.accepted, seconds: round(batchedBare.seconds) },
    "node stream.pipeline": { "samples/s": Math.round(streams.samples_per_s), accepted: streams.accepted, seconds: round(streams.seconds) },
    "node stream.pipeline, bare": { "samples/s": Math.round(streamsBare.samples_per_s), accepted: streamsBare.accepted, seconds: round(streamsBare.seconds) },
  });
  console.table({
    "rxsynth (credit)": { ...memory, peak_rss_mb: round(memory.peak_rss_mb), rss_at_1m_mb: memory.rss_at_1m_mb && round(memory.rss_at_1m_mb), rss_at_5m_mb: memory.rss_at_5m_mb && round(memory.rss_at_5m_mb) },
    "from(asyncIterable)+mergeMap": { ...naive, peak_rss_mb: round(naive.peak_rss_mb), rss_at_1m_mb: naive.rss_at_1m_mb && round(naive.rss_at_1m_mb), rss_at_5m_mb: naive.rss_at_5m_mb && round(naive.rss_at_5m_mb) },
  });
  console.table({ "parquet sink (zstd)": parquet });

  const growth = memory.rss_at_1m_mb && memory.rss_at_5m_mb ? (memory.rss_at_5m_mb - memory.rss_at_1m_mb) / memory.rss_at_1m_mb : null;
  const result = {
    samples_per_s: Math.round(rx.samples_per_s),
    encoding_checked_samples_per_s: Math.round(checked.samples_per_s),
    vs_async_loop: round(ratio("async-loop"), 3),
    vs_async_loop_batched: round(ratio("async-loop-batched"), 3),
    vs_node_streams: round(ratio("node-streams"), 3),
    vs_async_loop_batched_bare: round(ratio("async-loop-batched-bare"), 3),
    vs_node_streams_bare: round(ratio("node-streams-bare"), 3),
    vs_async_loop_batched_rounds: rounds.map((each) => round(each.rxsynth.samples_per_s / each["async-loop-batched"].samples_per_s, 3)),
    rounds: ROUNDS,
    async_loop_samples_per_s: Math.round(loop.samples_per_s),
    async_loop_batched_samples_per_s: Math.round(batched.samples_per_s),
    async_loop_batched_bare_samples_per_s: Math.round(batchedBare.samples_per_s),
    node_streams_samples_per_s: Math.round(streams.samples_per_s),
    node_streams_bare_samples_per_s: Math.round(streamsBare.samples_per_s),
    peak_rss_mb: round(memory.peak_rss_mb),
    rss_before_run_mb: round(memory.rss_before_run_mb),
    rss_growth_1m_to_5m: growth === null ? null : round(growth, 4),
    max_in_flight: memory.max_in_flight,
    budget: BUDGET,
    naive_peak_rss_mb: round(naive.peak_rss_mb),
    naive_cut_off: naive.cut_off,
    naive_samples_done: naive.samples_done,
    naive_max_in_flight: naive.max_in_flight,
    parquet_mb_per_s: round(parquet.parquet_mb_per_s),
    parquet_peak_rss_mb: round(parquet.peak_rss_mb),
    node: process.version,
    v8_flags: V8_FLAGS.join(" "),
    load_average_1m: round(loadavg()[0]!),
    cpus: cpus().length,
    measured_at: new Date().toISOString(),
  };
  console.table(result);
  const dir = fileURLToPath(new URL("./results/", import.meta.url));
  await mkdir(dir, { recursive: true });
  await writeFile(`${dir}engine.json`, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`wrote benchmarks/results/engine.json`);
}

await main();
