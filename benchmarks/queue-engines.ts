// Claim: our work queue (src/scale/queue.ts: one Redis stream read by a consumer group, Lua FEED / COMPLETE)
// costs less per work item than BullMQ, the usual Node choice, for the chunk descriptors a scaled-out run
// hands out. Both engines run side by side in one process against one private redis-server this script
// starts (free port, AOF on with fsync always, as the scale tests' and benchmarks' own), under the same
// settings: N items of about 100 bytes each ({source, index, start, end}), K consumers of concurrency 1 each
// (each its own Redis connection(s), in this process), no work per item, at most MAX_QUEUED items
// outstanding, 3 attempts, a lost item reclaimed after RECLAIM_MS.
//
//   npm run bench -- queue-engines     (or: npx tsx benchmarks/queue-engines.ts; QUEUE_BENCH_QUICK=1 for a smoke run)
//
//   streams   K consumers loop as src/scale/worker.ts does (next: state, feed, claim in one script; complete with the
//             counters a chunk reports), without building or running a graph. The consumers feed the
//             stream themselves, as workers do.
//   bullmq    a producer tops the queue up with addBulk to MAX_QUEUED outstanding (one addBulk in flight,
//             as many jobs as there is room for, after each completion), K Workers (concurrency 1, lock and
//             stalled check at RECLAIM_MS) run a processor that returns the same counters; completed jobs
//             are removed, as our queue XDELs a completed entry.
//
// Each K runs ROUNDS rounds, the engines' order alternating per round; medians are reported. Before every
// run the private server is emptied (FLUSHALL), so each starts from the same empty keyspace.
//
// Keys (benchmarks/results/queue-engines.json), all at K = 4 consumers unless the name says otherwise:
//   streams_items_per_s, bullmq_items_per_s   items completed per second, from the consumers' start to the
//                         last item's completion (median of ROUNDS runs).
//   streams_commands_per_item, bullmq_commands_per_item   Redis commands per item (INFO commandstats deltas,
//                         which count the commands run inside Lua scripts too, as scale.json's
//                         redis_ops_per_sample does), over the whole run: connections, start-up and close
//                         included.
//   streams_vs_bullmq     streams_items_per_s / bullmq_items_per_s.
//   details               per K medians (also µs per item, client commands per item from INFO stats'
//                         total_commands_processed, Redis CPU and this process's CPU per item, each
//                         command's calls per item), Redis memory per outstanding item (N items queued,
//                         no consumer), and every run.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { Queue, Worker } from "bullmq";
import { Redis } from "ioredis";
import { RunQueue, workerName, type Claimed, type RunSpec } from "../src/scale/queue.ts";
import { SUBMIT_DEFAULTS } from "../src/scale/submit.ts";
import { RedisServer } from "../test/support/redis-server.ts";
import { writeResults } from "./lib/results.ts";

const QUICK = process.env.QUEUE_BENCH_QUICK === "1";
const ITEMS = QUICK ? 500 : 5_000;
const CONSUMERS = [1, 4] as const;
const ROUNDS = QUICK ? 1 : 3;
const CHUNK_SIZE = SUBMIT_DEFAULTS.chunkSize;
const MAX_QUEUED = SUBMIT_DEFAULTS.maxQueued;
const MAX_ATTEMPTS = SUBMIT_DEFAULTS.maxAttempts;
/** BullMQ's default lock duration and stalled interval; our reclaim time set to the same. */
const RECLAIM_MS = 30_000;
/** A run that has not finished by then is a broken benchmark, not a slow one. */
const RUN_TIMEOUT_MS = 120_000;
const SOURCE = "/data/rxsynth/bench/queue-engines/source-records-0001.jsonl";
/** What a chunk of a pass-through graph reports (worker.ts always sends these three). */
const COUNTERS = { accepted: CHUNK_SIZE, rejected: 0, records: CHUNK_SIZE } as const;

type Engine = "streams" | "bullmq";

interface Snapshot {
  readonly at: number;
  readonly calls: ReadonlyMap<string, number>;
  readonly processed: number;
  readonly redisCpuUs: number;
  readonly usedMemory: number;
  readonly clientCpuUs: number;
}

interface RunResult {
  readonly engine: Engine;
  readonly consumers: number;
  readonly round: number;
  readonly items: number;
  readonly seconds: number;
  readonly items_per_s: number;
  readonly us_per_item: number;
  readonly commands_per_item: number;
  readonly client_commands_per_item: number;
  readonly redis_cpu_us_per_item: number;
  readonly client_cpu_us_per_item: number;
  readonly failed: number;
  /** Per command (commandstats name), calls per item. */
  readonly per_command: Readonly<Record<string, number>>;
  readonly engine_details: Readonly<Record<string, number>>;
}

const dir = mkdtempSync(join(tmpdir(), "rxsynth-queue-engines-bench-"));
let redis: RedisServer;
/** One connection of the script's own, for INFO and FLUSHALL: one INFO per snapshot lands in the counts. */
let probe: Redis;

async function snapshot(): Promise<Snapshot> {
  const info = await probe.info("commandstats", "stats", "cpu", "memory");
  const calls = new Map<string, number>();
  for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls.set(match[1]!, Number(match[2]));
  const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, "m").exec(info)?.[1] ?? Number.NaN);
  const cpu = process.cpuUsage();
  return {
    at: performance.now(),
    calls,
    processed: field("total_commands_processed"),
    redisCpuUs: (field("used_cpu_user") + field("used_cpu_sys")) * 1e6,
    usedMemory: field("used_memory"),
    clientCpuUs: cpu.user + cpu.system,
  };
}

function commandDelta(before: Snapshot, after: Snapshot): Map<string, number> {
  const delta = new Map<string, number>();
  for (const [name, calls] of after.calls) {
    const added = calls - (before.calls.get(name) ?? 0);
    if (added > 0) delta.set(name, added);
  }
  return delta;
}

/** The descriptor both engines carry, as BullMQ stores it (our stream entry holds the same fields). */
function descriptor(index: number): { source: string; index: number; start: number; end: number } {
  return { source: SOURCE, index: 1, start: index * CHUNK_SIZE, end: (index + 1) * CHUNK_SIZE };
}

function deadline(what: string): { promise: Promise<never>; clear: () => void } {
  let timer: NodeJS.Timeout;
  const promise = new Promise<never>((_, fail) => {
    timer = setTimeout(() => fail(new Error(`${what} did not finish within ${RUN_TIMEOUT_MS} ms`)), RUN_TIMEOUT_MS);
  });
  return { promise, clear: () => clearTimeout(timer) };
}

function streamsSpec(maxQueued: number): RunSpec {
  return {
    graph: "queue-engines-bench",
    overrides: {},
    options: {},
    out: join(dir, "out"),
    chunkSize: CHUNK_SIZE,
    sources: [{ name: SOURCE, size: ITEMS * CHUNK_SIZE }],
    maxQueued,
    maxAttempts: MAX_ATTEMPTS,
    reclaimMs: RECLAIM_MS,
    submittedAt: new Date().toISOString(),
  };
}

/**
 * One consumer, the call sequence of src/scale/worker.ts's loop with the chunk's run taken out: the chunk is
 * committed as soon as it is claimed. Resolves once connected; its loop starts when `go` resolves and `done`
 * gives the chunks it completed.
 */
async function streamsConsumer(run: string, go: Promise<void>, onComplete: () => void): Promise<{ done: Promise<number> }> {
  const queue = await RunQueue.connect(redis.url, run);
  const me = workerName();
  const spec = await queue.spec();
  const loop = async () => {
    let holding: Claimed | undefined;
    const beat = setInterval(() => void queue.heartbeat(me, holding?.entry).catch(() => undefined), Math.max(100, spec.reclaimMs / 4));
    beat.unref();
    let chunks = 0;
    try {
      await go;
      for (;;) {
        const { state, chunk } = await queue.next(me, spec.reclaimMs, 1_000);
        if (state !== "running") return chunks;
        if (!chunk) continue;
        holding = chunk;
        if (chunk.attempt > spec.maxAttempts) {
          await queue.fail({ ...chunk, attempt: spec.maxAttempts }, "its worker was lost too often");
          holding = undefined;
          continue;
        }
        // worker.ts runs the chunk's graph here; no work in this benchmark.
        holding = undefined;
        if ((await queue.complete(chunk, false, COUNTERS)) === "completed") {
          chunks++;
          onComplete();
        }
      }
    } finally {
      clearInterval(beat);
      await queue.leave(me).catch(() => undefined);
      await queue.close();
    }
  };
  return { done: loop() };
}

async function streamsRun(consumers: number, round: number): Promise<RunResult> {
  const run = `bench-${consumers}c-${round}`;
  const before = await snapshot();
  const submitter = await RunQueue.connect(redis.url, run);
  await submitter.register(streamsSpec(MAX_QUEUED));
  await submitter.close();
  let release!: () => void;
  const go = new Promise<void>((done) => (release = done));
  let completed = 0;
  let lastAt = 0;
  const onComplete = () => {
    completed++;
    if (completed === ITEMS) lastAt = performance.now();
  };
  const started = await Promise.all(Array.from({ length: consumers }, () => streamsConsumer(run, go, onComplete)));
  const startAt = performance.now();
  release();
  // The consumers end once the run is complete: the last one blocked in XREADGROUP after up to its 1 s block.
  const limit = deadline(`streams run ${run}`);
  let perConsumer: number[];
  try {
    perConsumer = await Promise.race([Promise.all(started.map((consumer) => consumer.done)), limit.promise]);
  } finally {
    limit.clear();
  }
  if (completed !== ITEMS) throw new Error(`streams run ${run}: ${completed} of ${ITEMS} completed`);
  const status = await statusOf(run);
  const after = await snapshot();
  return result("streams", consumers, round, before, after, startAt, lastAt, status.dead, {
    chunks_per_consumer_min: Math.min(...perConsumer),
    chunks_per_consumer_max: Math.max(...perConsumer),
    reclaimed: status.reclaimed,
  });
}

async function statusOf(run: string) {
  const queue = await RunQueue.connect(redis.url, run);
  try {
    const status = await queue.status();
    if (status.state !== "complete" || status.done !== ITEMS) throw new Error(`streams run ${run} ended ${status.state} with ${status.done} of ${ITEMS} done`);
    return status;
  } finally {
    await queue.close();
  }
}

async function bullmqRun(consumers: number, round: number): Promise<RunResult> {
  const name = `bench-${consumers}c-${round}`;
  const connection = { host: "127.0.0.1", port: redis.port };
  const before = await snapshot();
  const queue = new Queue(name, { connection, defaultJobOptions: { attempts: MAX_ATTEMPTS, removeOnComplete: true, removeOnFail: false } });
  let completed = 0;
  let failed = 0;
  let added = 0;
  let lastAt = 0;
  let adding = false;
  let bulks = 0;
  let allDone!: () => void;
  let broken!: (error: Error) => void;
  const finished = new Promise<void>((done, fail) => ((allDone = done), (broken = fail)));
  // Tops the queue up to MAX_QUEUED outstanding, one addBulk at a time, as our feed tops the stream up.
  const topUp = async (): Promise<void> => {
    if (adding) return;
    adding = true;
    try {
      for (let room = MAX_QUEUED - (added - completed); room > 0 && added < ITEMS; room = MAX_QUEUED - (added - completed)) {
        const count = Math.min(room, ITEMS - added);
        const jobs = Array.from({ length: count }, (_, i) => ({ name: "chunk", data: descriptor(added + i) }));
        added += count;
        bulks++;
        await queue.addBulk(jobs);
      }
    } catch (error) {
      broken(error as Error);
    } finally {
      adding = false;
    }
  };
  const workers = Array.from(
    { length: consumers },
    () =>
      new Worker(name, async () => COUNTERS, {
        connection,
        concurrency: 1,
        autorun: false,
        lockDuration: RECLAIM_MS,
        stalledInterval: RECLAIM_MS,
      }),
  );
  for (const worker of workers) {
    worker.on("completed", () => {
      completed++;
      if (completed === ITEMS) {
        lastAt = performance.now();
        allDone();
      } else void topUp();
    });
    worker.on("failed", () => failed++);
    worker.on("error", (error) => broken(error));
  }
  await Promise.all([queue.waitUntilReady(), ...workers.map((worker) => worker.waitUntilReady())]);
  const startAt = performance.now();
  const running = workers.map((worker) => worker.run());
  void topUp();
  const limit = deadline(`bullmq run ${name}`);
  let counts: Record<string, number>;
  try {
    await Promise.race([finished, limit.promise]);
  } finally {
    limit.clear();
    await Promise.all(workers.map((worker) => worker.close()));
    await Promise.all(running);
    counts = await queue.getJobCounts("waiting", "active", "completed", "failed", "delayed");
    await queue.close();
  }
  if (counts.waiting! + counts.active! + counts.failed! + counts.delayed! !== 0) throw new Error(`bullmq run ${name} left jobs behind: ${JSON.stringify(counts)}`);
  const after = await snapshot();
  return result("bullmq", consumers, round, before, after, startAt, lastAt, failed, { add_bulk_calls: bulks, jobs_per_add_bulk: round3(ITEMS / bulks) });
}

function result(
  engine: Engine,
  consumers: number,
  round: number,
  before: Snapshot,
  after: Snapshot,
  startAt: number,
  lastAt: number,
  failed: number,
  engineDetails: Record<string, number>,
): RunResult {
  const seconds = (lastAt - startAt) / 1000;
  const delta = commandDelta(before, after);
  const commands = [...delta.values()].reduce((sum, calls) => sum + calls, 0);
  const perCommand = Object.fromEntries([...delta].sort((a, b) => b[1] - a[1]).map(([name, calls]) => [name, round3(calls / ITEMS)]));
  return {
    engine,
    consumers,
    round,
    items: ITEMS,
    seconds: round3(seconds),
    items_per_s: Math.round(ITEMS / seconds),
    us_per_item: round3((seconds * 1e6) / ITEMS),
    commands_per_item: round3(commands / ITEMS),
    client_commands_per_item: round3((after.processed - before.processed) / ITEMS),
    redis_cpu_us_per_item: round3((after.redisCpuUs - before.redisCpuUs) / ITEMS),
    client_cpu_us_per_item: round3((after.clientCpuUs - before.clientCpuUs) / ITEMS),
    failed,
    per_command: perCommand,
    engine_details: engineDetails,
  };
}

/**
 * Redis memory per outstanding item: ITEMS items queued and no consumer, used_memory after minus before.
 * A first, one-item queue loads each engine's scripts before the baseline, so their cache is not counted.
 */
async function memoryPerItem(engine: Engine): Promise<{ bytes_per_item: number; items: number; used_memory_before: number; used_memory_after: number }> {
  await probe.flushall();
  let before: Snapshot;
  let after: Snapshot;
  if (engine === "streams") {
    const warm = await RunQueue.connect(redis.url, "mem-warm");
    const queue = await RunQueue.connect(redis.url, "mem");
    try {
      await warm.register({ ...streamsSpec(1) });
      await warm.feed();
      before = await snapshot();
      await queue.register(streamsSpec(ITEMS));
      const fed = await queue.feed();
      if (fed !== ITEMS) throw new Error(`memory: fed ${fed} of ${ITEMS}`);
      after = await snapshot();
    } finally {
      await warm.close();
      await queue.close();
    }
  } else {
    const connection = { host: "127.0.0.1", port: redis.port };
    const options = { connection, defaultJobOptions: { attempts: MAX_ATTEMPTS, removeOnComplete: true, removeOnFail: false } };
    const warm = new Queue("mem-warm", options);
    const queue = new Queue("mem", options);
    try {
      await warm.addBulk([{ name: "chunk", data: descriptor(0) }]);
      await queue.waitUntilReady();
      before = await snapshot();
      for (let added = 0; added < ITEMS; added += MAX_QUEUED) {
        await queue.addBulk(Array.from({ length: Math.min(MAX_QUEUED, ITEMS - added) }, (_, i) => ({ name: "chunk", data: descriptor(added + i) })));
      }
      const waiting = await queue.getWaitingCount();
      if (waiting !== ITEMS) throw new Error(`memory: ${waiting} of ${ITEMS} jobs waiting`);
      after = await snapshot();
    } finally {
      await warm.close();
      await queue.close();
    }
  }
  return { bytes_per_item: Math.round((after.usedMemory - before.usedMemory) / ITEMS), items: ITEMS, used_memory_before: before.usedMemory, used_memory_after: after.usedMemory };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Each measure's median over the runs, and each command's median calls per item. */
function medians(runs: readonly RunResult[]) {
  const of = (key: "items_per_s" | "us_per_item" | "commands_per_item" | "client_commands_per_item" | "redis_cpu_us_per_item" | "client_cpu_us_per_item") =>
    round3(median(runs.map((run) => run[key])));
  const names = [...new Set(runs.flatMap((run) => Object.keys(run.per_command)))];
  const perCommand = Object.fromEntries(
    names.map((name) => [name, round3(median(runs.map((run) => run.per_command[name] ?? 0)))] as const).sort((a, b) => b[1] - a[1]),
  );
  return {
    runs: runs.length,
    items_per_s: Math.round(median(runs.map((run) => run.items_per_s))),
    us_per_item: of("us_per_item"),
    commands_per_item: of("commands_per_item"),
    client_commands_per_item: of("client_commands_per_item"),
    redis_cpu_us_per_item: of("redis_cpu_us_per_item"),
    client_cpu_us_per_item: of("client_cpu_us_per_item"),
    per_command: perCommand,
  };
}

async function main() {
  redis = await RedisServer.start(dir);
  probe = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  try {
    const runs: RunResult[] = [];
    for (const consumers of CONSUMERS) {
      for (let round = 0; round < ROUNDS; round++) {
        // Alternated, so a slow minute of the shared machine falls on both engines.
        const order: Engine[] = round % 2 === 0 ? ["streams", "bullmq"] : ["bullmq", "streams"];
        for (const engine of order) {
          await probe.flushall();
          const run = engine === "streams" ? await streamsRun(consumers, round) : await bullmqRun(consumers, round);
          runs.push(run);
          console.log(
            `${engine} K=${consumers} round ${round}: ${run.items_per_s} items/s, ${run.us_per_item} µs/item, ${run.commands_per_item} commands/item (${run.client_commands_per_item} from clients), ${run.redis_cpu_us_per_item} µs Redis CPU/item`,
          );
        }
      }
    }
    const memory = { streams: await memoryPerItem("streams"), bullmq: await memoryPerItem("bullmq") };
    const summary = Object.fromEntries(
      CONSUMERS.map((consumers) => {
        const of = (engine: Engine) => medians(runs.filter((run) => run.engine === engine && run.consumers === consumers));
        const streams = of("streams");
        const bullmq = of("bullmq");
        return [`k${consumers}`, { streams, bullmq, streams_vs_bullmq: round3(streams.items_per_s / bullmq.items_per_s) }] as const;
      }),
    ) as Record<`k${(typeof CONSUMERS)[number]}`, { streams: ReturnType<typeof medians>; bullmq: ReturnType<typeof medians>; streams_vs_bullmq: number }>;
    const k4 = summary.k4;
    const result = {
      streams_items_per_s: k4.streams.items_per_s,
      bullmq_items_per_s: k4.bullmq.items_per_s,
      streams_commands_per_item: k4.streams.commands_per_item,
      bullmq_commands_per_item: k4.bullmq.commands_per_item,
      streams_vs_bullmq: k4.streams_vs_bullmq,
      details: {
        medians: summary,
        memory_per_outstanding_item: memory,
        settings: {
          items: ITEMS,
          consumers: CONSUMERS,
          rounds: ROUNDS,
          chunk_size: CHUNK_SIZE,
          max_queued: MAX_QUEUED,
          max_attempts: MAX_ATTEMPTS,
          reclaim_ms: RECLAIM_MS,
          descriptor_bytes: JSON.stringify(descriptor(ITEMS - 1)).length,
          consumers_in: "this process, each its own connection(s)",
          redis: "private redis-server, AOF on, appendfsync always",
        },
        redis_version: /^redis_version:(\S+)/m.exec(await probe.info("server"))?.[1],
        bullmq_version: (JSON.parse(readFileSync(new URL("../node_modules/bullmq/package.json", import.meta.url), "utf8")) as { version: string }).version,
        runs,
      },
      node: process.version,
      cpus: cpus().length,
      load_average_1m: round3(loadavg()[0]!),
      measured_at: new Date().toISOString(),
    };
    const table: Record<string, Record<string, number>> = {};
    for (const consumers of CONSUMERS) {
      for (const engine of ["streams", "bullmq"] as const) {
        const row = summary[`k${consumers}`][engine];
        table[`${engine} K=${consumers}`] = {
          "items/s": row.items_per_s,
          "µs/item": row.us_per_item,
          "commands/item": row.commands_per_item,
          "client cmds/item": row.client_commands_per_item,
          "redis CPU µs/item": row.redis_cpu_us_per_item,
          "node CPU µs/item": row.client_cpu_us_per_item,
          "redis bytes/queued item": memory[engine].bytes_per_item,
        };
      }
    }
    console.table(table);
    console.table({ ...result, details: undefined });
    if (QUICK) {
      console.log("quick run: benchmarks/results/queue-engines.json not written");
      return;
    }
    await writeResults("queue-engines", result);
  } finally {
    probe.disconnect();
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

function round3(value: number): number {
  return Number(value.toFixed(3));
}

// A failed run exits at once: clients of the stopped server would otherwise keep reconnecting.
await main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
