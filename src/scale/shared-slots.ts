import type { Redis } from "ioredis";
import type { ConcurrencySlots } from "../llm/limiter.ts";
import { untilAnswered } from "./reconnect.ts";

/**
 * Takes a slot when fewer than `limit` leases are live: leases past their expiry are dropped first, so a
 * killed worker's slots come back after one lease time. Time is Redis's clock, the same for every worker.
 * KEYS: slots (sorted set: lease -> expiry ms). ARGV: lease name, limit, lease ms. Returns 1 when taken.
 */
const ACQUIRE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) * 2)
return 1
`;

/** Extends the leases this worker holds (only those still there: an expired lease is not revived). ARGV: lease ms, names... */
const RENEW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[1]), ARGV[i]) end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]) * 2)
return 1
`;

interface Waiter {
  readonly resolve: (release: () => void) => void;
  readonly reject: (error: unknown) => void;
  readonly signal?: AbortSignal;
  readonly onAbort: () => void;
}

/**
 * At most `limit` requests in flight to one endpoint across every worker of a run (a provider's or a
 * server's concurrency limit is one for all of them). A slot is a lease in a Redis sorted set, renewed
 * while held, so a worker that dies holding slots frees them within one lease time. One poller per
 * worker asks for the next slot, not one per waiting request, so waiting costs Redis little.
 */
export class RedisSlots implements ConcurrencySlots {
  private readonly held = new Set<string>();
  private readonly waiters: Waiter[] = [];
  private polling = false;
  /** Ends the poller's wait early: a slot this worker gave back is free now. */
  private wake: (() => void) | undefined;
  private sequence = 0;
  private readonly renewal: NodeJS.Timeout;

  constructor(
    private readonly redis: Redis,
    private readonly key: string,
    readonly limit: number,
    private readonly owner: string,
    private readonly leaseMs = 30_000,
  ) {
    this.renewal = setInterval(() => void this.renew().catch(() => undefined), leaseMs / 3);
    this.renewal.unref();
  }

  acquire(signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        signal,
        onAbort: () => {
          const at = this.waiters.indexOf(waiter);
          if (at >= 0) this.waiters.splice(at, 1);
          reject(signal!.reason);
        },
      };
      signal?.addEventListener("abort", waiter.onAbort, { once: true });
      this.waiters.push(waiter);
      void this.poll();
    });
  }

  /** Stops renewing: leases still held expire on their own. */
  close(): void {
    clearInterval(this.renewal);
  }

  private async poll(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    let idle = 2;
    try {
      while (this.waiters.length > 0) {
        const lease = `${this.owner}:${this.sequence++}`;
        // A lease taken whose answer was lost with the connection expires unused: one slot short for a lease time.
        const taken = await untilAnswered(this.redis, () => (this.redis as unknown as SlotCommands).rxSlotAcquire(this.key, lease, this.limit, this.leaseMs)).catch((error: unknown) => {
          // Redis gone for good (the client gave up) or refusing the script: every waiter learns it, none waits forever.
          for (const waiter of this.waiters.splice(0)) waiter.reject(error);
          return 0;
        });
        if (taken !== 1) {
          // Full: ask again soon, less often the longer it stays full (up to 10 ms, a small part of any request),
          // with jitter so workers interleave. Another worker's release is heard of only by asking.
          await new Promise<void>((done) => {
            const timer = setTimeout(done, idle * (0.5 + Math.random()));
            this.wake = () => (clearTimeout(timer), done());
          });
          this.wake = undefined;
          idle = Math.min(10, idle * 2);
          continue;
        }
        idle = 2;
        this.held.add(lease);
        const waiter = this.waiters.shift();
        if (!waiter) {
          void this.drop(lease);
          break;
        }
        waiter.signal?.removeEventListener("abort", waiter.onAbort);
        waiter.resolve(() => void this.drop(lease));
      }
    } finally {
      this.polling = false;
    }
  }

  private async drop(lease: string): Promise<void> {
    if (!this.held.delete(lease)) return;
    // A failed ZREM leaves the lease to expire: one slot short for at most one lease time.
    await this.redis.zrem(this.key, lease).catch(() => undefined);
    this.wake?.();
  }

  private async renew(): Promise<void> {
    if (this.held.size === 0) return;
    await (this.redis as unknown as SlotCommands).rxSlotRenew(this.key, this.leaseMs, ...this.held);
  }
}

interface SlotCommands {
  rxSlotAcquire(...args: unknown[]): Promise<unknown>;
  rxSlotRenew(...args: unknown[]): Promise<unknown>;
}

/** The slots' scripts, on a connection that has run no command yet (see defineScaleCommands). */
export function defineSlotCommands(redis: Redis): void {
  redis.defineCommand("rxSlotAcquire", { numberOfKeys: 1, lua: ACQUIRE });
  redis.defineCommand("rxSlotRenew", { numberOfKeys: 1, lua: RENEW });
}
