import { hostname } from "node:os";
import { Redis } from "ioredis";
import { ConfigError } from "../errors.ts";
import type { SharedServices } from "../graph.ts";
import { stableHash } from "../hash.ts";
import { SharedBucket, defineBucketCommands } from "./shared-bucket.ts";
import { RedisDistinct, defineDistinctCommands } from "./shared-distinct.ts";
import { RedisNearIndex, defineNearIndexCommands } from "./shared-near-index.ts";
import { RedisRecords } from "./shared-records.ts";
import { RedisSlots, defineSlotCommands } from "./shared-slots.ts";
import { untilAnswered } from "./reconnect.ts";
import { TickBatcher } from "./tick-batch.ts";
import type { Chunk } from "./window.ts";

/** What `submit` registers: everything a worker on another machine needs to run the same graph. */
export interface RunSpec {
  /** The graph file (absolute path) or a ready graph's name. */
  readonly graph: string;
  readonly overrides: Readonly<Record<string, unknown>>;
  /** The graph's options as resolved (defaults and overrides): what decides whether two submissions are one run. */
  readonly options: Readonly<Record<string, unknown>>;
  /** The run's output folder: a file system every worker reaches. */
  readonly out: string;
  readonly chunkSize: number;
  /**
   * Sources in graph order, with the positions they span when they can tell (lines of a JSONL file, blank
   * ones included); a source that cannot ends after the first chunk with nothing past its end.
   */
  readonly sources: ReadonlyArray<{ readonly name: string; readonly size: number | null }>;
  /** Chunks fed ahead of the workers at most: a source of 100M records never sits in Redis at once. */
  readonly maxQueued: number;
  /** Tries of one chunk (a failure or a lost worker each count) before it goes to the dead letters. */
  readonly maxAttempts: number;
  /** A chunk whose worker has not been heard of for this long is given to another. */
  readonly reclaimMs: number;
  readonly budget?: number;
  readonly identity?: Readonly<Record<string, unknown>>;
  readonly submittedAt: string;
}

export type RunState = "running" | "complete" | "failed";

/** A chunk as a worker holds it: its stream entry, and how many tries it has had. */
export interface Claimed extends Chunk {
  readonly entry: string;
  /** The worker it was delivered to: only that one may acknowledge or give it back. */
  readonly worker: string;
  /** The source's place in the spec (1-based), as the feed wrote it into the entry. */
  readonly index: number;
  readonly attempt: number;
  readonly reclaimed: boolean;
}

export interface RunStatus {
  readonly state: RunState;
  readonly reason?: string;
  readonly spec: RunSpec;
  readonly fed: number;
  readonly done: number;
  readonly dead: number;
  readonly pending: number;
  readonly reclaimed: number;
  readonly totals: Readonly<Record<string, number>>;
  /** Workers heard of within the reclaim time, with the time they were last heard of. */
  readonly workers: ReadonlyArray<{ readonly name: string; readonly lastSeen: number }>;
  readonly deadLetters: ReadonlyArray<{ readonly chunk: string; readonly reason: string }>;
  /** The run's shared distinct counters: estimated distinct items (HyperLogLog) and items counted. */
  readonly distinct: ReadonlyArray<{ readonly name: string; readonly distinct: number; readonly total: number }>;
}

const GROUP = "workers";

/**
 * Feeds chunks until `maxQueued` are outstanding (fed, not yet done), source after source; a source whose
 * end is not known yet is fed up to that bound and the next one waits until a short chunk tells its end.
 * KEYS: spec, feed, chunks. Returns the number of chunks added (none once the run is over).
 */
const FEED_FUNCTION = `
local function feed()
  if (redis.call('HGET', KEYS[1], 'state') or 'running') ~= 'running' then return 0 end
  local spec = cjson.decode(redis.call('HGET', KEYS[1], 'spec'))
  local fed = tonumber(redis.call('HGET', KEYS[2], 'fed') or '0')
  local done = tonumber(redis.call('HGET', KEYS[2], 'done') or '0')
  local added = 0
  for i, source in ipairs(spec.sources) do
    local nextPos = tonumber(redis.call('HGET', KEYS[2], 'next:' .. i) or '0')
    -- HGET of a missing field is false, not nil: an unknown end must be nil for the comparisons below.
    local last = redis.call('HGET', KEYS[2], 'end:' .. i)
    if last then last = tonumber(last) elseif source.size ~= cjson.null then last = source.size else last = nil end
    while (fed - done) < spec.maxQueued and (last == nil or nextPos < last) do
      local stop = nextPos + spec.chunkSize
      if last ~= nil and stop > last then stop = last end
      redis.call('XADD', KEYS[3], '*', 'source', source.name, 'index', i, 'start', nextPos, 'end', stop, 'attempt', 1)
      nextPos = stop
      fed = fed + 1
      added = added + 1
    end
    redis.call('HSET', KEYS[2], 'next:' .. i, nextPos, 'fed', fed)
    if last == nil or nextPos < last then break end
  end
  return added
end
`;

const FEED = `${FEED_FUNCTION}
return feed()
`;

/**
 * A worker's one round trip between chunks: lists it as live, tells the run's state, tops the queue up,
 * and hands it a chunk, first one a lost worker left idle past the reclaim time, else a new one. Separate
 * calls cost a round trip and, with AOF fsync on every write, an fsync each (benchmarks/queue-engines.ts).
 * KEYS: spec, feed, chunks, workers. ARGV: worker, reclaim ms, now (ms), reclaim ("1": look for lost
 * chunks; "0" right after this worker reconnected, see RunQueue.next). Returns {state, reason} or
 * {state, reason, entry, fields, deliveries, reclaimed (1/0)}.
 */
const NEXT = `${FEED_FUNCTION}
redis.call('HSET', KEYS[4], ARGV[1], ARGV[3])
local state = redis.call('HGET', KEYS[1], 'state') or 'running'
if state ~= 'running' then return {state, redis.call('HGET', KEYS[1], 'reason') or ''} end
feed()
local lost = nil
if ARGV[4] == '1' then lost = redis.call('XAUTOCLAIM', KEYS[3], '${GROUP}', ARGV[1], ARGV[2], '0-0', 'COUNT', 1)[2][1] end
if type(lost) == 'table' and type(lost[2]) == 'table' then
  redis.call('HINCRBY', KEYS[2], 'reclaimed', 1)
  local pending = redis.call('XPENDING', KEYS[3], '${GROUP}', lost[1], lost[1], 1)[1]
  return {state, '', lost[1], lost[2], pending and pending[4] or 1, 1}
end
local read = redis.call('XREADGROUP', 'GROUP', '${GROUP}', ARGV[1], 'COUNT', 1, 'STREAMS', KEYS[3], '>')
if read and read[1] and read[1][2][1] then
  local entry = read[1][2][1]
  return {state, '', entry[1], entry[2], 1, 0}
end
return {state, ''}
`;

/** Whether `worker` holds stream entry `entry` (it is pending, delivered to that worker). KEYS[3]: chunks. */
const HOLDER = `
local function holds(entry, worker)
  local pending = redis.call('XPENDING', KEYS[3], '${GROUP}', entry, entry, 1)[1]
  return pending ~= nil and pending[2] == worker
end
`;

/**
 * Whether every source's end is known and fed, and every fed chunk done: then the run is over, complete
 * or failed (dead letters). Shared by COMPLETE and FAIL.
 */
const SETTLE = `
local function settle()
  local spec = cjson.decode(redis.call('HGET', KEYS[1], 'spec'))
  local fed = tonumber(redis.call('HGET', KEYS[2], 'fed') or '0')
  local done = tonumber(redis.call('HGET', KEYS[2], 'done') or '0')
  if done < fed then return end
  for i, source in ipairs(spec.sources) do
    local last = redis.call('HGET', KEYS[2], 'end:' .. i)
    if last then last = tonumber(last) elseif source.size ~= cjson.null then last = source.size else last = nil end
    if last == nil then return end
    if tonumber(redis.call('HGET', KEYS[2], 'next:' .. i) or '0') < last then return end
  end
  local dead = tonumber(redis.call('HGET', KEYS[2], 'dead') or '0')
  if dead > 0 then
    redis.call('HSET', KEYS[1], 'state', 'failed', 'reason', dead .. ' chunk(s) failed ' .. spec.maxAttempts .. ' times and went to the dead letters')
  else
    redis.call('HSET', KEYS[1], 'state', 'complete')
  end
end
`;

/**
 * Acknowledges a chunk whose outputs are all committed, once: a replayed acknowledgement (the chunk was
 * reclaimed and finished twice) changes nothing, and only the worker holding the chunk may acknowledge
 * it (-1 otherwise: another took it over). A chunk of a source of unknown size after which the source has
 * nothing more ("exhausted") tells where it ends. KEYS: spec, feed, chunks, totals. ARGV: entry, source
 * index, start, end, exhausted ("1"/"0"), worker, then counter name/value pairs.
 */
const COMPLETE = `${SETTLE}${HOLDER}
if not holds(ARGV[1], ARGV[6]) then return -1 end
if redis.call('XACK', KEYS[3], '${GROUP}', ARGV[1]) == 0 then return 0 end
redis.call('XDEL', KEYS[3], ARGV[1])
redis.call('HINCRBY', KEYS[2], 'done', 1)
local stop, exhausted = tonumber(ARGV[4]), ARGV[5] == '1'
if exhausted then
  -- Nothing at or after this chunk's end: the source ends here at the latest (chunks fed beyond it are empty).
  local known = redis.call('HGET', KEYS[2], 'end:' .. ARGV[2])
  if not known or stop < tonumber(known) then redis.call('HSET', KEYS[2], 'end:' .. ARGV[2], stop) end
end
for i = 7, #ARGV, 2 do redis.call('HINCRBYFLOAT', KEYS[4], ARGV[i], ARGV[i + 1]) end
settle()
return 1
`;

/**
 * A try of a chunk failed: it is fed again with the next attempt number, or, past the last attempt, goes to
 * the dead letters with its reason; "release" (ARGV[8]) gives it back with no try spent. Only the worker
 * holding the chunk may (-1 otherwise). KEYS: spec, feed, chunks, dead. ARGV: entry, source, index, start,
 * end, attempt, reason, mode, worker.
 */
const FAIL = `${SETTLE}${HOLDER}
if not holds(ARGV[1], ARGV[9]) then return -1 end
if redis.call('XACK', KEYS[3], '${GROUP}', ARGV[1]) == 0 then return 0 end
redis.call('XDEL', KEYS[3], ARGV[1])
local spec = cjson.decode(redis.call('HGET', KEYS[1], 'spec'))
local attempt = tonumber(ARGV[6])
if ARGV[8] == 'release' then attempt = attempt - 1 end
if attempt >= spec.maxAttempts and ARGV[8] ~= 'release' then
  redis.call('XADD', KEYS[4], '*', 'source', ARGV[2], 'start', ARGV[4], 'end', ARGV[5], 'attempts', attempt, 'reason', ARGV[7])
  redis.call('HINCRBY', KEYS[2], 'dead', 1)
  redis.call('HINCRBY', KEYS[2], 'done', 1)
  settle()
  return 2
end
redis.call('XADD', KEYS[3], '*', 'source', ARGV[2], 'index', ARGV[3], 'start', ARGV[4], 'end', ARGV[5], 'attempt', attempt + 1)
return 1
`;

/**
 * Restarts a chunk's idle time, only while `worker` still holds it: a worker that stalled past the reclaim
 * time must not take back a chunk another worker has taken over. KEYS: chunks. ARGV: entry, worker.
 */
const HEARTBEAT = `
local pending = redis.call('XPENDING', KEYS[1], '${GROUP}', ARGV[1], ARGV[1], 1)
if pending[1] and pending[1][2] == ARGV[2] then
  redis.call('XCLAIM', KEYS[1], '${GROUP}', ARGV[2], 0, ARGV[1], 'JUSTID')
  return 1
end
return 0
`;

/**
 * Each key of a shared index goes to the first id that claims it, the claims decided in turn. KEYS: index
 * hash. ARGV: key, id, key, id, ... Returns the holder of each key.
 */
const CLAIM = `
local holders = {}
for i = 1, #ARGV, 2 do
  if redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1]) == 1 then holders[#holders + 1] = ARGV[i + 1]
  else holders[#holders + 1] = redis.call('HGET', KEYS[1], ARGV[i]) end
end
return holders
`;

/**
 * One run's work queue and shared state in Redis: a stream of chunks read by a consumer group, so each
 * chunk is delivered to one worker at a time and stays pending until acknowledged; a worker that dies
 * leaves its chunk pending, and another takes it over once it has been idle for the reclaim time.
 */
export class RunQueue {
  readonly name: string;
  private readonly redis: Redis;
  private readonly keys: { spec: string; feed: string; chunks: string; dead: string; totals: string; workers: string };

  /** When the connection last came back after an outage (0: never lost). */
  private reconnectedAt = 0;
  private readonly reconnectListeners: Array<() => void> = [];

  private constructor(redis: Redis, name: string) {
    this.redis = redis;
    this.name = name;
    const prefix = `rxsynth:run:{${name}}`;
    this.keys = {
      spec: `${prefix}:spec`,
      feed: `${prefix}:feed`,
      chunks: `${prefix}:chunks`,
      dead: `${prefix}:dead`,
      totals: `${prefix}:totals`,
      workers: `${prefix}:workers`,
    };
  }

  /**
   * Connects, failing with one line when Redis cannot be reached at first; later outages are retried by
   * the client (commands wait while it reconnects), so a Redis restart pauses the workers instead of failing them.
   */
  static async connect(url: string, name: string, log: (line: string) => void = () => {}): Promise<RunQueue> {
    if (!/^rediss?:\/\//.test(url)) throw new ConfigError(`--redis must be a redis:// or rediss:// URL, got ${JSON.stringify(url)}`);
    if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new ConfigError(`--run must be letters, digits, '.', '_' or '-', got ${JSON.stringify(name)}`);
    // Auto-pipelining: the many claims and bucket takes one worker has in flight share round trips.
    const redis = new Redis(url, {
      lazyConnect: true,
      maxRetriesPerRequest: null,
      enableOfflineQueue: true,
      enableAutoPipelining: true,
      retryStrategy: (times) => Math.min(times * 200, 2_000),
    });
    defineScaleCommands(redis);
    const shown = redactedUrl(url);
    let reported = false;
    let connected = false;
    let firstError: Error | undefined;
    redis.on("error", (error: Error) => {
      // Before the first connection an error is the start's one line, said below; after it, an outage.
      if (!connected) {
        firstError ??= error;
        return;
      }
      if (reported) return;
      reported = true;
      log(`redis ${shown}: ${error.message}; waiting for it to come back`);
    });
    let queue: RunQueue | undefined;
    redis.on("ready", () => {
      if (reported) log(`redis ${shown}: back`);
      reported = false;
      if (connected) queue?.reconnected();
    });
    try {
      await redis.connect();
      connected = true;
    } catch (error) {
      redis.disconnect();
      throw new ConfigError(`cannot reach Redis at ${shown}: ${(firstError ?? (error as Error)).message} (is redis-server running, and is --redis right?)`);
    }
    queue = new RunQueue(redis, name);
    return queue;
  }

  /** The connection came back after an outage: chunks look idle for as long as Redis was down. */
  private reconnected(): void {
    this.reconnectedAt = Date.now();
    for (const listener of this.reconnectListeners) listener();
  }

  /** Called each time the connection comes back after an outage (a worker beats at once for its chunk). */
  onReconnect(listener: () => void): void {
    this.reconnectListeners.push(listener);
  }

  /**
   * Redis counts a pending chunk's idle time through an outage, so right after one every chunk in progress
   * looks lost. For one reclaim time after this worker reconnected it takes no chunk over, which gives
   * the holders (beating as they reconnect) time to say they are alive.
   */
  private mayReclaim(reclaimMs: number): boolean {
    return Date.now() - this.reconnectedAt >= reclaimMs;
  }

  /** Registers the run; a run of that name with another spec is refused (a name is one dataset). */
  async register(spec: RunSpec): Promise<"created" | "exists"> {
    const created = await this.redis.hsetnx(this.keys.spec, "spec", JSON.stringify(spec));
    if (created === 0) {
      const existing = (await this.spec()) as RunSpec;
      const differing = (["graph", "options", "out", "chunkSize", "maxQueued", "maxAttempts", "reclaimMs", "budget", "identity"] as const).filter(
        (key) => stableHash(existing[key] ?? null) !== stableHash(spec[key] ?? null),
      );
      if (differing.length > 0) {
        throw new ConfigError(`run "${this.name}" is already registered with another ${differing.join(", ")}; submit it as it was, or choose another --run name`);
      }
      return "exists";
    }
    await this.redis.hsetnx(this.keys.spec, "state", "running");
    await this.redis.xgroup("CREATE", this.keys.chunks, GROUP, "0", "MKSTREAM").catch((error: Error) => {
      if (!/BUSYGROUP/.test(error.message)) throw error;
    });
    return "created";
  }

  /** Whether the run has been submitted to this Redis. */
  async submitted(): Promise<boolean> {
    return (await this.redis.hexists(this.keys.spec, "spec")) === 1;
  }

  async spec(): Promise<RunSpec> {
    const text = await this.redis.hget(this.keys.spec, "spec");
    if (!text) throw new ConfigError(`no run "${this.name}" on this Redis: start it with \`rxsynth submit <graph> --run ${this.name} ...\``);
    return JSON.parse(text) as RunSpec;
  }

  async state(): Promise<{ state: RunState; reason?: string }> {
    const [state, reason] = await this.redis.hmget(this.keys.spec, "state", "reason");
    return { state: (state ?? "running") as RunState, reason: reason ?? undefined };
  }

  /** Tops the queue up to the run's bound; any process may call it, the script makes it atomic. */
  async feed(): Promise<number> {
    return (await (this.redis as unknown as RunQueueCommands).rxFeed(this.keys.spec, this.keys.feed, this.keys.chunks)) as number;
  }

  /**
   * Where `worker` stands: the run's state and, while it runs, the next chunk, first one a lost worker left
   * idle past the reclaim time, else a new one (waiting up to `blockMs` when none is there).
   */
  async next(worker: string, reclaimMs: number, blockMs: number): Promise<{ state: RunState; reason?: string; chunk?: Claimed }> {
    // A step whose answer was lost with the connection may have handed this worker a chunk it never saw:
    // the chunk stays pending under this worker's name and is reclaimed after the reclaim time.
    const [state, reason, entry, fields, deliveries, reclaimed] = (await untilAnswered(this.redis, () =>
      (this.redis as unknown as RunQueueCommands).rxNext(this.keys.spec, this.keys.feed, this.keys.chunks, this.keys.workers, worker, reclaimMs, Date.now(), this.mayReclaim(reclaimMs) ? "1" : "0"),
    )) as [RunState, string, string?, string[]?, number?, number?];
    const told = { state, reason: reason || undefined };
    if (entry && fields) {
      const chunk = { ...decode(entry, fields), worker };
      // Each delivery to a worker that was then lost counts as a try (the group counts deliveries).
      if (reclaimed === 1) return { ...told, chunk: { ...chunk, reclaimed: true, attempt: chunk.attempt + Math.max(0, (deliveries ?? 1) - 1) } };
      return { ...told, chunk: { ...chunk, reclaimed: false } };
    }
    if (state !== "running") return told;
    const read = (await this.redis.xreadgroup("GROUP", GROUP, worker, "COUNT", 1, "BLOCK", blockMs, "STREAMS", this.keys.chunks, ">")) as
      | [string, [string, string[]][]][]
      | null;
    const waited = read?.[0]?.[1]?.[0];
    return waited ? { ...told, chunk: { ...decode(waited[0], waited[1]), worker, reclaimed: false } } : told;
  }

  /**
   * Keeps a chunk in progress from looking lost (its idle time restarts), and the worker listed as live.
   * False when the worker no longer holds `entry`: it was silent past the reclaim time and another worker
   * took the chunk over, so this one must not write another byte of it.
   */
  async heartbeat(worker: string, entry: string | undefined): Promise<boolean> {
    const held = entry ? (await untilAnswered(this.redis, () => (this.redis as unknown as RunQueueCommands).rxHeartbeat(this.keys.chunks, entry, worker))) === 1 : true;
    await this.redis.hset(this.keys.workers, worker, Date.now());
    return held;
  }

  async leave(worker: string): Promise<void> {
    await this.redis.hdel(this.keys.workers, worker);
  }

  /**
   * The chunk is committed: acknowledged once, with its counters added to the run's totals. "lost" when
   * another worker holds it now (nothing changes), "again" when it was acknowledged already.
   */
  async complete(chunk: Claimed, exhausted: boolean, counters: Readonly<Record<string, number>>): Promise<"completed" | "again" | "lost"> {
    const pairs = Object.entries(counters).flatMap(([key, value]) => [key, String(value)]);
    // Acknowledged once however often it is sent: the script does nothing for an entry already acknowledged.
    const done = await untilAnswered(this.redis, () =>
      (this.redis as unknown as RunQueueCommands).rxComplete(this.keys.spec, this.keys.feed, this.keys.chunks, this.keys.totals, chunk.entry, chunk.index, chunk.start, chunk.end, exhausted ? "1" : "0", chunk.worker, ...pairs),
    );
    return done === 1 ? "completed" : done === -1 ? "lost" : "again";
  }

  /** The chunk's try failed: fed again, or dead-lettered past the run's tries. True when dead-lettered. */
  async fail(chunk: Claimed, reason: string): Promise<boolean> {
    return this.giveBack(chunk, reason, "fail");
  }

  /** The chunk goes back to the queue as it was: its worker stops for a reason that is not the chunk's. */
  async release(chunk: Claimed): Promise<void> {
    await this.giveBack(chunk, "released", "release");
  }

  private async giveBack(chunk: Claimed, reason: string, mode: "fail" | "release"): Promise<boolean> {
    const result = await untilAnswered(this.redis, () =>
      (this.redis as unknown as RunQueueCommands).rxFail(
        this.keys.spec,
        this.keys.feed,
        this.keys.chunks,
        this.keys.dead,
        chunk.entry,
        chunk.source,
        chunk.index,
        chunk.start,
        chunk.end,
        chunk.attempt,
        reason.slice(0, 2_000),
        mode,
        chunk.worker,
      ),
    );
    return result === 2;
  }

  async status(): Promise<RunStatus> {
    const spec = await this.spec();
    const [{ state, reason }, feed, totals, workers, pending, dead] = await Promise.all([
      this.state(),
      this.redis.hgetall(this.keys.feed),
      this.redis.hgetall(this.keys.totals),
      this.redis.hgetall(this.keys.workers),
      this.redis.xpending(this.keys.chunks, GROUP) as Promise<[number, ...unknown[]]>,
      this.redis.xrange(this.keys.dead, "-", "+", "COUNT", 100) as Promise<[string, string[]][]>,
    ]);
    const distinct = await Promise.all(
      (await this.redis.smembers(this.distinctKeys("").names)).sort().map(async (name) => {
        const keys = this.distinctKeys(name);
        const [count, totals] = await Promise.all([this.redis.pfcount(keys.counter), this.redis.hvals(keys.totals)]);
        return { name, distinct: count, total: totals.reduce((sum, value) => sum + Number(value), 0) };
      }),
    );
    const now = Date.now();
    return {
      distinct,
      state,
      reason,
      spec,
      fed: Number(feed.fed ?? 0),
      done: Number(feed.done ?? 0),
      dead: Number(feed.dead ?? 0),
      reclaimed: Number(feed.reclaimed ?? 0),
      pending: Number(pending[0] ?? 0),
      totals: Object.fromEntries(Object.entries(totals).map(([key, value]) => [key, Number(value)])),
      workers: Object.entries(workers)
        .map(([name, seen]) => ({ name, lastSeen: Number(seen) }))
        .filter((worker) => now - worker.lastSeen <= spec.reclaimMs),
      deadLetters: dead.map(([, fields]) => {
        const record = fieldsOf(fields);
        return { chunk: `${record.source}[${record.start}, ${record.end})`, reason: record.reason ?? "" };
      }),
    };
  }

  /**
   * What the workers share besides the queue. Rate buckets are keyed by endpoint alone, not by run: two
   * runs on one API key draw on the same provider limit.
   */
  shared(): SharedServices {
    return {
      rateBuckets: (endpoint) => (kind, perMinute, burstMs) => new SharedBucket(this.redis, `rxsynth:bucket:${stableHash(endpoint)}:${kind}`, perMinute, burstMs),
      learnedLimits: (endpoint) => {
        const key = `rxsynth:limits:${stableHash(endpoint)}`;
        return {
          read: async () => {
            const [requests, tokens] = await untilAnswered(this.redis, () => this.redis.hmget(key, "requests", "tokens"));
            return { requests: requests ? Number(requests) : undefined, tokens: tokens ? Number(tokens) : undefined };
          },
          // The latest figure the provider sent wins; a lost write is learned again from the next answer.
          write: (kind, perMinute) => void this.redis.hset(key, kind, String(perMinute)).catch(() => undefined),
        };
      },
      // Leases outlive the slowest call's silence by far: a held slot is renewed every 10 s while its request runs.
      concurrency: (endpoint, limit) => new RedisSlots(this.redis, `rxsynth:slots:${stableHash(endpoint)}`, limit, workerName()),
      index: (name) => {
        const key = `rxsynth:run:{${this.name}}:index:${name}`;
        const claims = new TickBatcher<readonly [string, string], string>((pairs) =>
          untilAnswered(this.redis, () => (this.redis as unknown as RunQueueCommands).rxClaim(key, ...pairs.flat()) as Promise<string[]>),
        );
        return { claim: async (member, id) => String(await claims.call([member, id])) };
      },
      nearIndex: (name, shape) => new RedisNearIndex(this.redis, `rxsynth:run:{${this.name}}:near:${name}`, shape),
      distinct: (name) => new RedisDistinct(this.redis, this.distinctKeys(name), name),
      records: (name) => new RedisRecords(this.redis, `rxsynth:run:{${this.name}}:records:${name}`),
    };
  }

  private distinctKeys(name: string) {
    const prefix = `rxsynth:run:{${this.name}}:distinct`;
    return { counter: `${prefix}:${name}`, totals: `${prefix}:${name}:totals`, scratch: `${prefix}:${name}:scratch`, names: `${prefix}-names` };
  }

  async close(): Promise<void> {
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}

/**
 * Every script of the queue and the shared state, on a connection that has run no command yet: ioredis's
 * auto-pipelining copies a connection's commands into each pipeline it opens, so a command defined while
 * one is open is missing from it ("pipeline[name] is not a function"), and its callers never hear back.
 */
export function defineScaleCommands(redis: Redis): void {
  redis.defineCommand("rxFeed", { numberOfKeys: 3, lua: FEED });
  redis.defineCommand("rxNext", { numberOfKeys: 4, lua: NEXT });
  redis.defineCommand("rxComplete", { numberOfKeys: 4, lua: COMPLETE });
  redis.defineCommand("rxFail", { numberOfKeys: 4, lua: FAIL });
  redis.defineCommand("rxClaim", { numberOfKeys: 1, lua: CLAIM });
  redis.defineCommand("rxHeartbeat", { numberOfKeys: 1, lua: HEARTBEAT });
  defineBucketCommands(redis);
  defineNearIndexCommands(redis);
  defineDistinctCommands(redis);
  defineSlotCommands(redis);
}

interface RunQueueCommands {
  rxClaim(...args: unknown[]): Promise<unknown>;
  rxHeartbeat(...args: unknown[]): Promise<unknown>;
  rxFeed(...args: unknown[]): Promise<unknown>;
  rxNext(...args: unknown[]): Promise<unknown>;
  rxComplete(...args: unknown[]): Promise<unknown>;
  rxFail(...args: unknown[]): Promise<unknown>;
}

function fieldsOf(fields: readonly string[]): Record<string, string> {
  const record: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) record[fields[i]!] = fields[i + 1]!;
  return record;
}

function decode(entry: string, fields: readonly string[]): Omit<Claimed, "reclaimed" | "worker"> {
  const record = fieldsOf(fields);
  return { entry, source: record.source!, index: Number(record.index), start: Number(record.start), end: Number(record.end), attempt: Number(record.attempt ?? 1) };
}

/** The URL without its password, for files and logs. */
export function redactedUrl(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, "//$1:***@");
}

/** A consumer name that says where the worker runs. */
export function workerName(): string {
  return `${hostname()}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
}
