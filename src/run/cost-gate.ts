import type { SpendBound, SpendGate, SpendSettle } from "../llm/index.ts";

interface Waiter {
  readonly bound: () => SpendBound | undefined;
  readonly resolve: (settle: SpendSettle) => void;
  readonly reject: (reason: unknown) => void;
  readonly signal: AbortSignal;
  readonly onAbort: () => void;
}

/**
 * `--max-cost` as a gate every priced LLM request passes before it is sent. A request is admitted while
 * what is spent, plus the most that the requests in flight and this one can cost, stays under the cap.
 * The bound of a request with `max_tokens` is exact (prompt tokens with a margin, n × max_tokens at the
 * output price), so such requests never pass the cap. Without `max_tokens` the first request goes alone,
 * (a resumed folder's first is bounded by twice what its earlier requests cost on average), then one at
 * a time for a few more (`alone`), and later ones are bounded by twice the longest answer
 * seen: an estimate, so near the cap (where twice
 * it would not fit beside what is in flight) they go one at a time; the spend passes the cap only by what
 * answers more than twice as long as the longest before them cost beyond their estimate. Cache hits and unpriced requests never
 * reach the gate.
 *
 * The gate trips when a request waits and nothing is in flight whose answer could make room: from then
 * on nothing is admitted, and the run stops, committing what finished. The held samples are unfinished,
 * not rejected; a resume with a higher cap redoes them, answered ones from the cache.
 *
 * A gate, not an estimate per source record: one record of a generative graph (a Self-Instruct wave, a
 * fan-out) may be most of a run, and a per-record average is 0 when the cache answered the first ones.
 */
export class CostGate implements SpendGate {
  private spentBeforeUsd = 0;
  private spentNowUsd = 0;
  private reservedUsd = 0;
  private inFlight = 0;
  private readonly waiters: Waiter[] = [];
  private opened = false;
  /** What a request cost on average in the folder's earlier sessions: the guess for one with no bound yet. */
  private requestUsdBefore: number | undefined;
  private openWaiters: Array<() => void> = [];
  private trippedFlag = false;
  private onTrip: (() => void) | undefined;

  constructor(readonly maxUsd: number) {}

  /**
   * Called by the run once it knows what the folder's earlier sessions spent; requests wait until then. A
   * folder already at its cap does not trip here: what the cache answers still finishes.
   */
  open(spentBeforeUsd: number, onTrip: () => void, requestUsdBefore?: number): void {
    this.spentBeforeUsd = spentBeforeUsd;
    this.requestUsdBefore = requestUsdBefore;
    this.onTrip = onTrip;
    this.opened = true;
    for (const wake of this.openWaiters.splice(0)) wake();
  }

  get tripped(): boolean {
    return this.trippedFlag;
  }

  /** The folder's spend: earlier sessions' and this one's settled requests. */
  spent(): number {
    return this.spentBeforeUsd + this.spentNowUsd;
  }

  async admit(bound: () => SpendBound | undefined, signal: AbortSignal): Promise<SpendSettle> {
    if (!this.opened) await new Promise<void>((resolve) => this.openWaiters.push(resolve));
    if (!this.trippedFlag && this.waiters.length === 0) {
      const now = bound();
      if (this.fits(now)) return this.enter(now);
    }
    return new Promise<SpendSettle>((resolve, reject) => {
      if (signal.aborted) return reject(signal.reason);
      const waiter: Waiter = {
        bound,
        resolve,
        reject,
        signal,
        onAbort: () => {
          const index = this.waiters.indexOf(waiter);
          if (index >= 0) this.waiters.splice(index, 1);
          reject(signal.reason);
        },
      };
      signal.addEventListener("abort", waiter.onAbort, { once: true });
      this.waiters.push(waiter);
      this.admitWaiting();
    });
  }

  private fits(given: SpendBound | undefined): boolean {
    const bound = given ?? (this.requestUsdBefore ? { usd: 2 * this.requestUsdBefore, exact: false, alone: true } : undefined);
    if (bound === undefined) return this.inFlight === 0 && this.spent() < this.maxUsd;
    const room = this.maxUsd - this.spent() - this.reservedUsd;
    if (bound.usd > room) return false;
    if (bound.alone) return this.inFlight === 0;
    return bound.exact || room >= 2 * bound.usd || this.inFlight === 0;
  }

  private enter(bound: SpendBound | undefined): SpendSettle {
    this.inFlight++;
    // An unbounded request is alone: nothing else is admitted until it settles.
    const reserved = bound?.usd ?? Infinity;
    this.reservedUsd += reserved;
    let settled = false;
    return (actualUsd: number) => {
      if (settled) return;
      settled = true;
      this.inFlight--;
      this.reservedUsd -= reserved;
      if (this.inFlight === 0) this.reservedUsd = 0;
      this.spentNowUsd += actualUsd;
      this.admitWaiting();
    };
  }

  /** In order: a request that does not fit holds the ones behind it, so a large one is not starved. */
  private admitWaiting(): void {
    if (this.trippedFlag) return;
    for (;;) {
      const waiter = this.waiters[0];
      const bound = waiter?.bound();
      if (!waiter || !this.fits(bound)) break;
      this.waiters.shift();
      waiter.signal.removeEventListener("abort", waiter.onAbort);
      waiter.resolve(this.enter(bound));
    }
    if (this.waiters.length > 0 && this.inFlight === 0) this.trip();
  }

  private trip(): void {
    if (this.trippedFlag) return;
    this.trippedFlag = true;
    this.onTrip?.();
  }
}
