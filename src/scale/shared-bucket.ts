import type { Redis } from "ioredis";
import type { RateBucket } from "../llm/limiter.ts";
import { untilAnswered } from "./reconnect.ts";

/**
 * One token bucket for all workers: level, time and pause live in a Redis hash and change only inside a
 * script, so N workers together take no more than the provider's per-minute limit (each worker's own
 * bucket would let N times as much through, and the provider would answer the rest with 429s). Time is
 * Redis's clock, the same for every worker. KEYS: bucket. ARGV: amount, perMinute, burstMs.
 * Returns 0 when taken, else the ms to wait before asking again.
 */
const TAKE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local amount, perMinute, burstMs = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local capacity = math.max(1, perMinute * burstMs / 60000)
local rate = perMinute / 60000
local state = redis.call('HMGET', KEYS[1], 'level', 'at', 'paused')
local level = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now
local paused = tonumber(state[3]) or 0
local from = math.max(at, math.min(now, paused))
if now > from then level = math.min(capacity, level + (now - from) * rate) end
local need = math.min(amount, capacity)
local wait = 0
if now < paused then
  wait = paused - now
elseif level < need then
  wait = math.ceil((need - level) / rate)
else
  level = level - amount
end
redis.call('HSET', KEYS[1], 'level', level, 'at', now)
redis.call('PEXPIRE', KEYS[1], 3600000)
return wait
`;

/** ARGV: amount (may be negative), perMinute, burstMs, mode ("charge" | "pause" ms | "cap" remaining). */
const ADJUST = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local value, perMinute, burstMs, mode = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local capacity = math.max(1, perMinute * burstMs / 60000)
local state = redis.call('HMGET', KEYS[1], 'level', 'at', 'paused')
local level = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now
local paused = tonumber(state[3]) or 0
local from = math.max(at, math.min(now, paused))
if now > from then level = math.min(capacity, level + (now - from) * perMinute / 60000) end
if mode == 'charge' then level = math.min(capacity, level - value)
elseif mode == 'pause' then paused = math.max(paused, now + value); level = math.min(level, 0)
elseif mode == 'cap' then level = math.min(level, value) end
redis.call('HSET', KEYS[1], 'level', level, 'at', now, 'paused', paused)
redis.call('PEXPIRE', KEYS[1], 3600000)
return 0
`;

export class SharedBucket implements RateBucket {
  private perMinute: number;
  private consumedTotal = 0;

  constructor(
    private readonly redis: Redis,
    private readonly key: string,
    perMinute: number,
    private readonly burstMs: number,
  ) {
    this.perMinute = perMinute;
  }

  get limit(): number {
    return this.perMinute;
  }

  get consumed(): number {
    return this.consumedTotal;
  }

  async take(amount: number, signal?: AbortSignal): Promise<void> {
    for (;;) {
      signal?.throwIfAborted();
      // Taken twice when the first answer was lost with the connection: one request's worth, once per outage.
      const wait = Number(await untilAnswered(this.redis, () => this.commands().rxBucketTake(this.key, amount, this.perMinute, this.burstMs)));
      if (wait <= 0) {
        this.consumedTotal += amount;
        return;
      }
      // Waiting a little less than asked, plus jitter, so workers that wait together do not all ask at once.
      await sleep(Math.max(1, wait * (0.5 + Math.random() * 0.5)), signal);
    }
  }

  charge(amount: number): void {
    this.consumedTotal += amount;
    void this.commands().rxBucketAdjust(this.key, amount, this.perMinute, this.burstMs, "charge").catch(() => undefined);
  }

  /** The server's remaining count is every worker's: the shared level never stays above it. */
  correct(remaining: number): void {
    void this.commands().rxBucketAdjust(this.key, remaining, this.perMinute, this.burstMs, "cap").catch(() => undefined);
  }

  pause(ms: number): void {
    void this.commands().rxBucketAdjust(this.key, ms, this.perMinute, this.burstMs, "pause").catch(() => undefined);
  }

  setLimit(perMinute: number): void {
    this.perMinute = perMinute;
  }

  private commands(): { rxBucketTake(...args: unknown[]): Promise<unknown>; rxBucketAdjust(...args: unknown[]): Promise<unknown> } {
    return this.redis as unknown as { rxBucketTake(...args: unknown[]): Promise<unknown>; rxBucketAdjust(...args: unknown[]): Promise<unknown> };
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** The bucket's scripts, on a connection that has run no command yet (see defineScaleCommands). */
export function defineBucketCommands(redis: Redis): void {
  redis.defineCommand("rxBucketTake", { numberOfKeys: 1, lua: TAKE });
  redis.defineCommand("rxBucketAdjust", { numberOfKeys: 1, lua: ADJUST });
}
