/** Waiting for capacity ends early when the caller's signal aborts. */
function abortError(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException("The operation was aborted", "AbortError");
}

interface Waiter {
  readonly amount: number;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
  readonly signal: AbortSignal | undefined;
  readonly onAbort: () => void;
}

/**
 * A per-minute limit as a token bucket that refills continuously. Its capacity is `burstMs` worth of the
 * limit (one second by default): providers enforce per-minute limits over shorter windows, so a client
 * that bursts a whole minute's budget at once gets 429s. Waiters are served first come, first served.
 */
/** What the client asks of a per-minute budget: one process's own (TokenBucket) or one all workers share. */
export interface RateBucket {
  readonly limit: number;
  /** Total taken or charged; lets a response's `remaining` be related to later sends. */
  readonly consumed: number;
  take(amount: number, signal?: AbortSignal): Promise<void>;
  charge(amount: number): void;
  correct(remaining: number, consumedAtSend: number, sentAt: number): void;
  pause(ms: number): void;
  setLimit(perMinute: number): void;
}

export class TokenBucket implements RateBucket {
  private perMinute: number;
  private ratePerMs: number;
  private capacityValue: number;
  private level: number;
  private updatedAt: number;
  private pausedUntil = 0;
  private readonly waiters: Waiter[] = [];
  private timer: NodeJS.Timeout | undefined;
  /** Total taken or charged since creation; lets a response's `remaining` be related to later sends. */
  private consumedTotal = 0;

  constructor(
    perMinute: number,
    private readonly burstMs = 1_000,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.perMinute = perMinute;
    this.ratePerMs = perMinute / 60_000;
    this.capacityValue = Math.max(1, perMinute * (burstMs / 60_000));
    this.level = this.capacityValue;
    this.updatedAt = now();
  }

  get limit(): number {
    return this.perMinute;
  }

  get capacity(): number {
    return this.capacityValue;
  }

  get consumed(): number {
    return this.consumedTotal;
  }

  /** Tokens available now (negative after an under-estimate was corrected). */
  available(): number {
    this.refill();
    return this.level;
  }

  setLimit(perMinute: number): void {
    this.refill();
    this.perMinute = perMinute;
    this.ratePerMs = perMinute / 60_000;
    this.capacityValue = Math.max(1, perMinute * (this.burstMs / 60_000));
    this.level = Math.min(this.level, this.capacityValue);
    this.pump();
  }

  /** Resolves once `amount` could be taken; an amount above capacity waits for a full bucket. */
  take(amount: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(abortError(signal));
    if (this.waiters.length === 0 && this.tryTake(amount)) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        amount,
        resolve,
        reject,
        signal,
        onAbort: () => {
          const at = this.waiters.indexOf(waiter);
          if (at >= 0) this.waiters.splice(at, 1);
          reject(abortError(signal!));
          this.pump();
        },
      };
      signal?.addEventListener("abort", waiter.onAbort, { once: true });
      this.waiters.push(waiter);
      this.pump();
    });
  }

  /** Adds (or with a negative amount, returns) tokens once the true cost is known. */
  charge(amount: number): void {
    this.refill();
    this.level = Math.min(this.capacityValue, this.level - amount);
    this.consumedTotal += amount;
    this.pump();
  }

  /**
   * Lowers the level to what the server says is left. `remaining` was measured when the request that
   * carried it was admitted; what was sent since (`consumedAtSend` marks the total then) and what refilled
   * since (`sentAt`) are accounted for, so a stale header never double-counts.
   */
  correct(remaining: number, consumedAtSend: number, sentAt: number): void {
    this.refill();
    const sentSince = this.consumedTotal - consumedAtSend;
    const refilled = (this.now() - sentAt) * this.ratePerMs;
    const serverNow = remaining - sentSince + refilled;
    if (serverNow < this.level) this.level = serverNow;
  }

  /** After a 429: take nothing until `ms` from now, and start again from an empty bucket. */
  pause(ms: number): void {
    this.refill();
    this.pausedUntil = Math.max(this.pausedUntil, this.now() + ms);
    this.level = Math.min(this.level, 0);
    this.pump();
  }

  private refill(): void {
    const now = this.now();
    const from = Math.max(this.updatedAt, Math.min(now, this.pausedUntil));
    if (now > from) this.level = Math.min(this.capacityValue, this.level + (now - from) * this.ratePerMs);
    this.updatedAt = now;
  }

  private tryTake(amount: number): boolean {
    this.refill();
    if (this.now() < this.pausedUntil) return false;
    const need = Math.min(amount, this.capacityValue);
    if (this.level < need) return false;
    this.level -= amount;
    this.consumedTotal += amount;
    return true;
  }

  private pump(): void {
    while (this.waiters.length > 0 && this.tryTake(this.waiters[0]!.amount)) {
      const waiter = this.waiters.shift()!;
      waiter.signal?.removeEventListener("abort", waiter.onAbort);
      waiter.resolve();
    }
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const head = this.waiters[0];
    if (!head) return;
    const need = Math.min(head.amount, this.capacityValue) - this.level;
    const wait = Math.max(this.pausedUntil - this.now(), need / this.ratePerMs, 1);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.pump();
    }, Math.ceil(wait));
  }
}

/**
 * Slots one endpoint allows in flight across processes (a scaled-out run's workers; see src/scale): taken
 * after the client's own cap, given back by calling what `acquire` resolved to.
 */
export interface ConcurrencySlots {
  readonly limit: number;
  acquire(signal?: AbortSignal): Promise<() => void>;
}

/** Per-minute limits of an endpoint as learned from its rate-limit headers. */
export interface LearnedLimitValues {
  readonly requests?: number;
  readonly tokens?: number;
}

/** Limits learned by any client of one endpoint, kept where every worker of a run reads them (see src/scale). */
export interface LearnedLimits {
  read(): Promise<LearnedLimitValues>;
  write(kind: "requests" | "tokens", perMinute: number): void;
}

/** A slot held while one request is in flight; `epoch` tells whether it started before the last cut. */
export interface Permit {
  readonly epoch: number;
}

/**
 * A concurrency cap that adapts like TCP congestion control (AIMD): every success adds 1/limit (about
 * one slot per round of requests), a 429 cuts the limit in half, at most once per round (429s from
 * requests that started before the cut do not cut again). Never above `max`, never below `min`.
 */
export class AdaptiveConcurrency {
  private limitValue: number;
  private active = 0;
  private epoch = 0;
  private readonly waiters: Array<{ resolve: (permit: Permit) => void; reject: (error: unknown) => void; signal?: AbortSignal; onAbort: () => void }> = [];

  constructor(
    readonly max: number,
    readonly min = 1,
    private readonly decrease = 0.5,
  ) {
    this.limitValue = max;
  }

  get limit(): number {
    return Math.max(this.min, Math.floor(this.limitValue));
  }

  get inFlight(): number {
    return this.active;
  }

  /**
   * A slot now, or none: for a caller that queues its own waiters across several limits (a fleet's
   * members, see fleet.ts), so a request waits for whichever member frees a slot first.
   */
  tryAcquire(): Permit | undefined {
    if (this.waiters.length > 0 || this.active >= this.limit) return undefined;
    this.active++;
    return { epoch: this.epoch };
  }

  acquire(signal?: AbortSignal): Promise<Permit> {
    if (signal?.aborted) return Promise.reject(abortError(signal));
    const permit = this.tryAcquire();
    if (permit) return Promise.resolve(permit);
    return new Promise<Permit>((resolve, reject) => {
      const waiter = {
        resolve,
        reject,
        signal,
        onAbort: () => {
          const at = this.waiters.indexOf(waiter);
          if (at >= 0) this.waiters.splice(at, 1);
          reject(abortError(signal!));
        },
      };
      signal?.addEventListener("abort", waiter.onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  /** Returns the slot; `outcome` steers the limit ("other" for errors that say nothing about load). */
  release(permit: Permit, outcome: "ok" | "overloaded" | "other"): void {
    this.active--;
    if (outcome === "ok") {
      this.limitValue = Math.min(this.max, this.limitValue + 1 / Math.max(1, this.limitValue));
    } else if (outcome === "overloaded" && permit.epoch === this.epoch) {
      this.limitValue = Math.max(this.min, this.limitValue * this.decrease);
      this.epoch++;
    }
    while (this.waiters.length > 0 && this.active < this.limit) {
      const waiter = this.waiters.shift()!;
      waiter.signal?.removeEventListener("abort", waiter.onAbort);
      this.active++;
      waiter.resolve({ epoch: this.epoch });
    }
  }
}
