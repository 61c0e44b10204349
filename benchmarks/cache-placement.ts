// Question: in a scaled-out run, should the LLM response cache stay per worker (today's ResponseCache, LMDB
// on each machine's disk) or move to Redis (one cache for every worker)? Measured side by side, in one run,
// against a redis-server this script starts on a free port (AOF on, every write synced, as the README asks
// of a run's Redis; the machine's 6379 is never touched):
//
//   1. per request, at concurrency 64, 20k operations per contender and answer size (1 KB, 8 KB): a hit
//      (get of a stored key) and a miss + store (get that misses, then put, as the client does); then 1k
//      of each one at a time, for the latency of a request with no queue in front of it. Both contenders
//      run through one driver; best of ROUNDS alternated rounds.
//   2. space per cached answer: Redis INFO used_memory delta / entries; LMDB folder bytes / entries.
//   3. paid requests in the reuse patterns of a scaled-out run, by running both stores through the same
//      sequence: 4 workers, 100 chunks of 50 requests, 5 % of chunks killed half-way and redone by another
//      worker; then a rerun on other machines (fresh local caches), and a rerun on the same machines where
//      chunks land on whichever worker claims them.
//   4. the cheapest miss there is: calls through createLlm to the project's simulator (a child process,
//      latency 0, no generation time), at concurrency 64 and one at a time, and hits through the same
//      client over today's cache.
//
//   npm run bench -- cache-placement      (or: npx tsx benchmarks/cache-placement.ts)
//
// Keys (benchmarks/results/cache-placement.json); the *_us and *_bytes_* keys are for HEADLINE_BYTES
// answers, both sizes are under details.sizes:
//   local_hit_us, redis_hit_us          wall time / hits at concurrency 64 (µs per op; ops/s in details)
//   local_store_us, redis_store_us      the same for a miss + store
//   redis_bytes_per_entry               used_memory delta / entries (JSON of the CachedChoice, uncompressed)
//   local_bytes_per_entry               LMDB folder bytes / entries (values compressed by lmdb, as ResponseCache opens it)
//   reclaim_paid_local, reclaim_paid_shared  requests sent (cache misses) in the run with kills
//   recommendation                      from the rule in `recommend` below, over the measured numbers
//
// Redis's store cannot be a ResponseStore as the interface stands: ResponseStore.get is synchronous (the
// client calls it without await, src/llm/client.ts), and a Redis GET is a round trip. The store below keeps
// put and close of ResponseStore and makes get async; moving the cache to Redis means the same change there.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { ResponseCache, choiceKey, type CachedChoice, type ResponseStore } from "../src/llm/cache.ts";
import { createLlm } from "../src/llm/index.ts";
import { Rng } from "../src/sim/random.ts";
import { sentence } from "../src/sim/text.ts";
import { RedisServer, freePort } from "../test/support/redis-server.ts";
import { writeResults, round } from "./lib/results.ts";

const ROOT = resolve(fileURLToPath(new URL("..", import.meta.url)));
const CLI = join(ROOT, "bin/rxsynth.mjs");
const SIZES = [1_024, 8_192] as const;
const HEADLINE_BYTES = 8_192;
const OPS = 20_000;
const CONCURRENCY = 64;
const ROUNDS = 2;
const WARMUP = 2_000;
/** Operations one at a time (concurrency 1): the latency of one request alone, no queue in front of it. */
const SERIAL_OPS = 1_000;
const REUSE = { workers: 4, chunks: 100, perChunk: 50, killedShare: 0.05, answerBytes: 1_024 } as const;
const SIM_CALLS = 2_000;
const SEED = 20_251_202;
const ENDPOINT = "bench-endpoint";

/** The Redis contender: ResponseStore with an async get (see the header). */
type AsyncResponseStore = Omit<ResponseStore, "get"> & { get(key: string): Promise<CachedChoice | undefined> };

/** One cache for all workers: the serialized CachedChoice under the same key, GET/SET, auto-pipelined. */
class RedisResponseStore implements AsyncResponseStore {
  private readonly redis: Redis;

  constructor(url: string) {
    this.redis = new Redis(url, { enableAutoPipelining: true, maxRetriesPerRequest: 3 });
  }

  async get(key: string): Promise<CachedChoice | undefined> {
    const value = await this.redis.get(`rxsynth:llm:${key}`);
    return value === null ? undefined : (JSON.parse(value) as CachedChoice);
  }

  async put(key: string, value: CachedChoice): Promise<void> {
    await this.redis.set(`rxsynth:llm:${key}`, JSON.stringify(value));
  }

  async close(): Promise<void> {
    await this.redis.quit();
  }
}

/** Today's cache behind the same async face, so one driver runs both. */
function asAsync(store: ResponseStore): AsyncResponseStore {
  return { get: async (key) => store.get(key), put: (key, value) => store.put(key, value), close: () => store.close() };
}

// ---------------------------------------------------------------------------------------------------
// Fixtures

/** Prose of exactly `bytes` ASCII bytes, from the simulator's sentence generator (compresses like text). */
function answerText(rng: Rng, bytes: number): string {
  let text = "";
  while (text.length < bytes) text += `${sentence(rng)} `;
  return text.slice(0, bytes);
}

function keyOf(tag: string, i: number): string {
  const request = { model: "gpt-4o-mini", messages: [{ role: "user", content: `${tag} ${i}: write an answer` }], max_tokens: 2_048, seed: 7 };
  return choiceKey(ENDPOINT, request, 0, 0);
}

function choiceOf(text: string, i: number): CachedChoice {
  return { text, finishReason: "stop", completionTokens: Math.round(text.length / 4), promptTokens: 40, model: "gpt-4o-mini-2024-07-18", requestId: `req_${i.toString(16).padStart(24, "0")}`, at: Date.now() };
}

// ---------------------------------------------------------------------------------------------------
// One driver for every contender

interface Timing {
  readonly ops: number;
  readonly wall_s: number;
  readonly us_per_op: number;
  readonly ops_per_s: number;
  readonly p50_latency_us: number;
  readonly p99_latency_us: number;
  /** CPU this process spent per op (user + system): what a worker's own core pays. */
  readonly client_cpu_us_per_op: number;
  /** CPU redis-server spent per op (INFO cpu), for the Redis contender. */
  readonly server_cpu_us_per_op?: number;
}

async function drive(ops: number, op: (i: number) => Promise<void>, serverCpu?: () => Promise<number>, concurrency = CONCURRENCY): Promise<Timing> {
  const latencies = new Float64Array(ops);
  let next = 0;
  const serverBefore = serverCpu ? await serverCpu() : 0;
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < ops) {
        const i = next++;
        const t0 = performance.now();
        await op(i);
        latencies[i] = performance.now() - t0;
      }
    }),
  );
  const wall = (performance.now() - started) / 1_000;
  const cpu = process.cpuUsage(cpuBefore);
  const serverAfter = serverCpu ? await serverCpu() : 0;
  latencies.sort();
  return {
    ops,
    wall_s: round(wall, 4),
    us_per_op: round((wall * 1e6) / ops, 2),
    ops_per_s: Math.round(ops / wall),
    p50_latency_us: round(latencies[Math.floor(ops * 0.5)]! * 1_000, 1),
    p99_latency_us: round(latencies[Math.floor(ops * 0.99)]! * 1_000, 1),
    client_cpu_us_per_op: round((cpu.user + cpu.system) / ops, 2),
    ...(serverCpu ? { server_cpu_us_per_op: round(((serverAfter - serverBefore) * 1e6) / ops, 2) } : {}),
  };
}

const best = (timings: readonly Timing[]): Timing => timings.reduce((a, b) => (b.us_per_op < a.us_per_op ? b : a));

// ---------------------------------------------------------------------------------------------------
// Parts 1 and 2: per-request cost and space per entry

let redis: RedisServer;
const dir = mkdtempSync(join(tmpdir(), "rxsynth-cache-placement-"));
let folders = 0;
const freshFolder = () => join(dir, `lmdb-${folders++}`);

async function admin<T>(use: (client: Redis) => Promise<T>): Promise<T> {
  const client = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  try {
    return await use(client);
  } finally {
    client.disconnect();
  }
}

const infoField = (info: string, field: string): number => Number(new RegExp(`^${field}:([\\d.]+)`, "m").exec(info)![1]);
const usedMemory = () => admin(async (client) => infoField(await client.info("memory"), "used_memory"));
const redisCpuSeconds = () =>
  admin(async (client) => {
    const info = await client.info("cpu");
    return infoField(info, "used_cpu_user") + infoField(info, "used_cpu_sys");
  });
const flush = () => admin((client) => client.flushdb());

/** Bytes the folder's files take: as `ResponseCache.info()` counts them (size), and as allocated on disk. */
function folderBytes(path: string): { size: number; allocated: number } {
  let size = 0;
  let allocated = 0;
  for (const name of readdirSync(path)) {
    const info = statSync(join(path, name));
    if (!info.isFile()) continue;
    size += info.size;
    allocated += info.blocks * 512;
  }
  return { size, allocated };
}

interface SizeResult {
  readonly answer_bytes: number;
  readonly serialized_bytes: number;
  readonly local: { hit: Timing; store: Timing; serial_hit: Timing; serial_store: Timing; hits_verified: number; bytes_per_entry: number; allocated_bytes_per_entry: number; entries: number };
  readonly redis: { hit: Timing; store: Timing; serial_hit: Timing; serial_store: Timing; hits_verified: number; bytes_per_entry: number; entries: number };
}

async function sizePart(bytes: number): Promise<SizeResult> {
  const rng = new Rng(`answers-${bytes}`);
  // 64 distinct answers reused by the keys: distinct enough that nothing dedups, cheap to build.
  const texts = Array.from({ length: 64 }, () => answerText(rng, bytes));
  // OPS keys for the concurrent runs, SERIAL_OPS more for the one-at-a-time miss + store.
  const keys = Array.from({ length: OPS + SERIAL_OPS }, (_, i) => keyOf(`size-${bytes}`, i));
  const values = keys.map((_, i) => choiceOf(texts[i % texts.length]!, i));
  // Hits in a seeded random order, not the insertion order.
  const order = Array.from({ length: OPS }, (_, i) => i);
  for (let i = OPS - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }

  const missAndStore = (store: AsyncResponseStore, offset = 0) => async (index: number) => {
    const i = index + offset;
    if ((await store.get(keys[i]!)) !== undefined) throw new Error(`key ${i} was already stored: not a miss`);
    await store.put(keys[i]!, values[i]!);
  };
  let verified = 0;
  const hit = (store: AsyncResponseStore) => async (i: number) => {
    const value = await store.get(keys[order[i]!]!);
    if (value?.text.length !== bytes) throw new Error(`key ${order[i]} missed or came back wrong`);
    verified++;
  };
  const warm = async (store: AsyncResponseStore) => {
    for (let i = 0; i < WARMUP; i++) await store.put(`warm-${i}`, values[i]!);
    for (let i = 0; i < WARMUP; i++) await store.get(`warm-${i}`);
  };

  const local = { hit: [] as Timing[], store: [] as Timing[], serialHit: [] as Timing[], serialStore: [] as Timing[], verified: 0, size: 0, allocated: 0, entries: 0 };
  const shared = { hit: [] as Timing[], store: [] as Timing[], serialHit: [] as Timing[], serialStore: [] as Timing[], verified: 0, bytesPerEntry: 0, entries: 0 };
  for (let round = 0; round < ROUNDS; round++) {
    // Today's cache: a fresh folder each round, warmed on keys outside the measured set.
    {
      const folder = freshFolder();
      const cache = ResponseCache.open(folder);
      const store = asAsync(cache);
      await warm(store);
      const empty = folderBytes(folder);
      const warmEntries = cache.info().entries;
      local.store.push(await drive(OPS, missAndStore(store)));
      verified = 0;
      local.hit.push(await drive(OPS, hit(store)));
      local.verified = verified;
      local.serialHit.push(await drive(SERIAL_OPS, hit(store), undefined, 1));
      local.serialStore.push(await drive(SERIAL_OPS, missAndStore(store, OPS), undefined, 1));
      const full = folderBytes(folder);
      local.entries = cache.info().entries - warmEntries;
      // Per measured entry; the warm-up entries' share is taken out with the empty folder's bytes.
      local.size = (full.size - empty.size) / local.entries;
      local.allocated = (full.allocated - empty.allocated) / local.entries;
      await store.close();
      rmSync(folder, { recursive: true, force: true });
    }
    // Redis: a flushed database each round, one connection as one worker has.
    {
      await flush();
      const store = new RedisResponseStore(redis.url);
      await warm(store);
      const before = await usedMemory();
      shared.store.push(await drive(OPS, missAndStore(store), redisCpuSeconds));
      const after = await usedMemory();
      verified = 0;
      shared.hit.push(await drive(OPS, hit(store), redisCpuSeconds));
      shared.verified = verified;
      shared.serialHit.push(await drive(SERIAL_OPS, hit(store), undefined, 1));
      shared.serialStore.push(await drive(SERIAL_OPS, missAndStore(store, OPS), undefined, 1));
      shared.entries = OPS;
      shared.bytesPerEntry = (after - before) / OPS;
      await store.close();
    }
  }
  await flush();
  return {
    answer_bytes: bytes,
    serialized_bytes: Buffer.byteLength(JSON.stringify(values[0])),
    local: { hit: best(local.hit), store: best(local.store), serial_hit: best(local.serialHit), serial_store: best(local.serialStore), hits_verified: local.verified, bytes_per_entry: Math.round(local.size), allocated_bytes_per_entry: Math.round(local.allocated), entries: local.entries },
    redis: { hit: best(shared.hit), store: best(shared.store), serial_hit: best(shared.serialHit), serial_store: best(shared.serialStore), hits_verified: shared.verified, bytes_per_entry: Math.round(shared.bytesPerEntry), entries: shared.entries },
  };
}

// ---------------------------------------------------------------------------------------------------
// Part 3: paid requests in a scaled-out run's reuse patterns

interface Paid {
  readonly requests: number;
  readonly paid_local: number;
  readonly paid_shared: number;
}

/**
 * One pass of a run: chunks claimed by a seeded random worker (whoever is free); a killed chunk's worker
 * asks half its requests, is killed, and the chunk is redone whole by another worker (a chunk of 50 commits
 * at its end, so the redo asks everything again). Every request is a get, and on a miss a paid call and a
 * put, through `stores[worker]`; the killed worker's cache keeps what it stored, as LMDB's commits do.
 */
async function pass(tag: string, stores: readonly AsyncResponseStore[], killed: ReadonlySet<number>, rng: Rng, answer: string): Promise<{ requests: number; paid: number; perWorker: number[] }> {
  let requests = 0;
  let paid = 0;
  const perWorker = stores.map(() => 0);
  const ask = async (worker: number, chunk: number, upTo: number) => {
    await Promise.all(
      Array.from({ length: upTo }, async (_, r) => {
        const key = keyOf(tag, chunk * REUSE.perChunk + r);
        requests++;
        if ((await stores[worker]!.get(key)) !== undefined) return;
        paid++;
        perWorker[worker]!++;
        await stores[worker]!.put(key, choiceOf(answer, chunk * REUSE.perChunk + r));
      }),
    );
  };
  for (let chunk = 0; chunk < REUSE.chunks; chunk++) {
    const worker = Math.floor(rng.next() * REUSE.workers);
    if (killed.has(chunk)) {
      await ask(worker, chunk, REUSE.perChunk / 2);
      const other = (worker + 1 + Math.floor(rng.next() * (REUSE.workers - 1))) % REUSE.workers;
      await ask(other, chunk, REUSE.perChunk);
    } else {
      await ask(worker, chunk, REUSE.perChunk);
    }
  }
  return { requests, paid, perWorker };
}

async function reusePart() {
  const rng = new Rng("reuse");
  const answer = answerText(rng, REUSE.answerBytes);
  const killedCount = Math.round(REUSE.chunks * REUSE.killedShare);
  const killed = new Set<number>();
  while (killed.size < killedCount) killed.add(Math.floor(rng.next() * REUSE.chunks));
  const openLocal = () => Array.from({ length: REUSE.workers }, () => asAsync(ResponseCache.open(freshFolder())));
  await flush();
  const shared = Array.from({ length: REUSE.workers }, () => new RedisResponseStore(redis.url));
  let local = openLocal();
  // The same claim order for both placements: each scenario's rng is seeded alike for both.
  const both = async (name: string, kills: ReadonlySet<number>): Promise<Paid> => {
    const a = await pass("reuse", local, kills, new Rng(name), answer);
    const b = await pass("reuse", shared, kills, new Rng(name), answer);
    if (a.requests !== b.requests) throw new Error("the two placements asked different sequences");
    return { requests: a.requests, paid_local: a.paid, paid_shared: b.paid };
  };
  try {
    const firstRun = await both("first-run", killed);
    const sameMachines = await both("rerun-same-machines", new Set());
    for (const store of local) await store.close();
    local = openLocal();
    const otherMachines = await both("rerun-other-machines", new Set());
    return { killed_chunks: [...killed].sort((x, y) => x - y), first_run: firstRun, rerun_same_machines: sameMachines, rerun_other_machines: otherMachines };
  } finally {
    for (const store of [...local, ...shared]) await store.close();
    await flush();
  }
}

// ---------------------------------------------------------------------------------------------------
// Part 4: the cheapest miss, through the real client and the simulator

const children = new Set<ChildProcess>();

async function simPart() {
  const port = await freePort();
  const child = spawn(process.execPath, [CLI, "sim", "--port", String(port), "--max-concurrency", "256"], { cwd: ROOT, stdio: "ignore", env: { ...process.env, OPENAI_BASE_URL: "" } });
  children.add(child);
  const exited = new Promise((done) => child.once("exit", () => (children.delete(child), done(undefined))));
  const base = `http://127.0.0.1:${port}`;
  try {
    let up = false;
    for (let i = 0; i < 150 && !up; i++) {
      up = await fetch(`${base}/health`).then((r) => r.ok, () => false);
      if (!up) await new Promise((done) => setTimeout(done, 100));
    }
    if (!up) throw new Error("the simulator did not start");
    const folder = freshFolder();
    const cache = ResponseCache.open(folder);
    const llm = createLlm({ baseURL: `${base}/v1`, model: "sim-1", concurrency: CONCURRENCY, simulator: true, seed: SEED, cache, maxRetries: 0 });
    const call = (tag: string) => async (i: number) => {
      const result = await llm.chat({ messages: [{ role: "user", content: `${tag} ${i}: explain caching` }], max_tokens: 300 });
      if (!result.choices[0]?.text) throw new Error("empty answer");
    };
    try {
      await drive(500, call("warm-up"));
      const before = llm.stats();
      const miss = await drive(SIM_CALLS, call("calls"));
      const hit = await drive(SIM_CALLS, call("calls"));
      const serialMiss = await drive(SERIAL_OPS, call("serial"), undefined, 1);
      const serialHit = await drive(SERIAL_OPS, call("serial"), undefined, 1);
      const after = llm.stats();
      return { miss, hit, serial_miss: serialMiss, serial_hit: serialHit, requests_sent: after.requests - before.requests, cache_hits: after.cacheHits - before.cacheHits, note: "simulator latency 0, no generation time: a floor; any real endpoint adds its generation time" };
    } finally {
      await llm.close();
      await cache.close();
    }
  } finally {
    child.kill("SIGTERM");
    await exited;
  }
}

// ---------------------------------------------------------------------------------------------------
// The rule

interface Measured {
  readonly redisHitLatencyUs: number;
  readonly localHitLatencyUs: number;
  readonly missFloorLatencyUs: number | undefined;
  readonly reuse: Awaited<ReturnType<typeof reusePart>>;
  readonly redisBytesPerEntry: number;
}

/**
 * The question is the scaled-out run's: Redis is worth it when sharing saves requests that per-worker
 * caches pay again within one run (>= 5 % of its requests in the run with kills: a reclaimed chunk's
 * answers are asked again by the worker that takes it over) and a Redis hit alone (concurrency 1, p50)
 * waits a small part (<= 10 %) of the cheapest miss measured (one call alone through createLlm to the
 * simulator at latency 0, a floor). A rerun is another run: what sharing would save there is reported,
 * not decided on, because it trades against Redis memory (RAM, stated per million answers) that the
 * per-worker caches keep on disk, compressed.
 */
function recommend(m: Measured): string {
  const saved = (p: Paid) => (p.paid_local - p.paid_shared) / p.requests;
  const inRun = saved(m.reuse.first_run);
  const reruns = `a rerun would save ${pct(saved(m.reuse.rerun_same_machines))} on the same machines, ${pct(saved(m.reuse.rerun_other_machines))} on other machines`;
  const gbPerMillion = (m.redisBytesPerEntry * 1e6) / 1e9;
  const memory = `${gbPerMillion.toFixed(1)} GB of Redis memory per million ${HEADLINE_BYTES / 1024} KB answers`;
  const share = m.missFloorLatencyUs ? m.redisHitLatencyUs / m.missFloorLatencyUs : undefined;
  if (inRun < 0.05) return `stay per worker: sharing saves ${pct(inRun)} of a run's requests (the run with kills); ${reruns}, for ${memory}`;
  if (share === undefined) return `undecided: sharing saves ${pct(inRun)} of a run's requests, but the miss cost was not measured`;
  if (share > 0.1) return `stay per worker: a Redis hit (${Math.round(m.redisHitLatencyUs)} µs) costs ${pct(share)} of the cheapest miss measured (${Math.round(m.missFloorLatencyUs!)} µs)`;
  return `move to Redis (shared): it saves ${pct(inRun)} of a run's requests; a Redis hit waits ${Math.round(m.redisHitLatencyUs)} µs, ${pct(share)} of the cheapest miss; ${reruns}; it holds ${memory}`;
}

function pct(x: number): string {
  return `${(x * 100).toFixed(1)} %`;
}

// ---------------------------------------------------------------------------------------------------

async function main() {
  redis = await RedisServer.start(dir);
  try {
    const sizes: SizeResult[] = [];
    for (const bytes of SIZES) {
      sizes.push(await sizePart(bytes));
      console.log(`size ${bytes} B done`);
    }
    const reuse = await reusePart();
    console.log("reuse patterns done");
    const sim = await simPart().catch((error: unknown) => {
      console.log(`simulator part skipped: ${error instanceof Error ? error.message : String(error)}`);
      return undefined;
    });

    const rows: Record<string, Record<string, number | string>> = {};
    for (const size of sizes) {
      for (const [name, side] of [["local (LMDB)", size.local], ["redis", size.redis]] as const) {
        rows[`${size.answer_bytes} B ${name}`] = {
          "hit µs/op": side.hit.us_per_op,
          "hit ops/s": side.hit.ops_per_s,
          "hit p50 µs": side.hit.p50_latency_us,
          "hit p99 µs": side.hit.p99_latency_us,
          "miss+store µs/op": side.store.us_per_op,
          "miss+store ops/s": side.store.ops_per_s,
          "store p50 µs": side.store.p50_latency_us,
          "hit alone p50 µs": side.serial_hit.p50_latency_us,
          "miss+store alone p50 µs": side.serial_store.p50_latency_us,
          "client cpu µs/hit": side.hit.client_cpu_us_per_op,
          "bytes/entry": side.bytes_per_entry,
        };
      }
    }
    console.table(rows);
    console.table({
      "first run, 5 % chunks killed": reuse.first_run,
      "rerun, same machines": reuse.rerun_same_machines,
      "rerun, other machines": reuse.rerun_other_machines,
    });
    if (sim) {
      console.table({
        "client miss (sim, latency 0)": { "µs/op": sim.miss.us_per_op, "ops/s": sim.miss.ops_per_s, "p50 µs": sim.miss.p50_latency_us, "p99 µs": sim.miss.p99_latency_us, "alone p50 µs": sim.serial_miss.p50_latency_us },
        "client hit (LMDB cache)": { "µs/op": sim.hit.us_per_op, "ops/s": sim.hit.ops_per_s, "p50 µs": sim.hit.p50_latency_us, "p99 µs": sim.hit.p99_latency_us, "alone p50 µs": sim.serial_hit.p50_latency_us },
      });
    }

    const headline = sizes.find((size) => size.answer_bytes === HEADLINE_BYTES)!;
    const recommendation = recommend({
      redisHitLatencyUs: headline.redis.serial_hit.p50_latency_us,
      localHitLatencyUs: headline.local.serial_hit.p50_latency_us,
      missFloorLatencyUs: sim?.serial_miss.p50_latency_us,
      reuse,
      redisBytesPerEntry: headline.redis.bytes_per_entry,
    });
    const result = {
      headline_answer_bytes: HEADLINE_BYTES,
      local_hit_us: headline.local.hit.us_per_op,
      redis_hit_us: headline.redis.hit.us_per_op,
      local_store_us: headline.local.store.us_per_op,
      redis_store_us: headline.redis.store.us_per_op,
      redis_bytes_per_entry: headline.redis.bytes_per_entry,
      local_bytes_per_entry: headline.local.bytes_per_entry,
      reclaim_paid_local: reuse.first_run.paid_local,
      reclaim_paid_shared: reuse.first_run.paid_shared,
      recommendation,
      details: {
        sizes,
        reuse: { ...reuse, setup: REUSE },
        simulator: sim ?? null,
        ops: OPS,
        concurrency: CONCURRENCY,
        rounds: ROUNDS,
        redis: "private redis-server on a free port, loopback, appendonly yes, appendfsync always; store: JSON of the CachedChoice under rxsynth:llm:<choiceKey>, ioredis auto-pipelining",
        local: "ResponseCache (LMDB, compression on) in a temp folder; bytes as ResponseCache.info() counts them (file sizes)",
        rule: "Redis when sharing saves >= 5 % of the requests of a scaled-out run with kills and a Redis hit alone (p50, concurrency 1, 8 KB) waits <= 10 % of one simulator miss alone through createLlm (p50, concurrency 1); else per worker; reruns reported, not decided on",
      },
      node: process.version,
      cpus: cpus().length,
      load_average_1m: round(loadavg()[0]!),
      measured_at: new Date().toISOString(),
    };
    console.table({ ...result, details: undefined });
    await writeResults("cache-placement", result);
  } finally {
    for (const child of children) child.kill("SIGKILL");
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
