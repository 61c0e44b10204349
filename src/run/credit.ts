import type { Ledger, Ticket } from "../sample.ts";

/**
 * The in-flight ledger: how many samples are between a source and a sink, and who may add one. The budget
 * is a hard bound: a source record is pulled, and a fan-out emits a child beyond its first, only against
 * credit. Credit returns when a sink has accepted a sample or it was rejected.
 *
 * Fan-outs are served before the pump: their children finish work already started, and a pump that took
 * the credit first could fill the budget with parents whose children then wait for ever.
 */
export class CreditLedger implements Ledger {
  private current = 0;
  private peak = 0;
  private readonly fanOutWaiters: Array<() => void> = [];
  private pumpWaiter: (() => void) | undefined;

  /**
   * @param budget most samples in flight at once
   * @param resumeLevel the pump waits until in-flight falls to this level, so credit comes back in batches
   *   and the per-sample cost stays a counter update, not an await
   * @param onWait called when someone starts waiting for credit: rows buffered for a sink must be written
   *   now, or nothing ever returns credit
   */
  constructor(
    readonly budget: number,
    private readonly resumeLevel: number,
    private readonly onWait: () => void,
    /** A root has nothing left in flight and nothing left to place: its source position is finished. */
    private readonly onRootFinished: (ticket: Ticket) => void,
  ) {}

  get inFlight(): number {
    return this.current;
  }

  get maxInFlight(): number {
    return this.peak;
  }

  /** True while a fan-out or the pump waits for credit (buffers must not wait to fill). */
  get waiting(): boolean {
    return this.pumpWaiter !== undefined || this.fanOutWaiters.length > 0;
  }

  /** A new root from a source; the pump calls it only after `pumpCredit()` resolved. */
  takeRoot(ticket: Ticket): void {
    ticket.pending++;
    this.add(1);
  }

  /** Resolves when the pump may pull again: in-flight under the budget and no fan-out waiting. */
  pumpCredit(): Promise<void> | undefined {
    if (this.current < this.budget && this.fanOutWaiters.length === 0) return undefined;
    return new Promise<void>((resolve) => {
      this.pumpWaiter = resolve;
      this.onWait();
    });
  }

  /** A fan-out adds `extra` children to `ticket`'s root; resolves once the budget has room for them. */
  grow(ticket: Ticket, extra: number): Promise<void> | undefined {
    if (extra <= 0) return undefined;
    if (this.fanOutWaiters.length === 0 && this.current + extra <= this.budget) {
      ticket.pending += extra;
      this.add(extra);
      return undefined;
    }
    // One child at a time, so a fan-out wider than the whole budget still makes progress.
    let remaining = extra;
    return new Promise<void>((resolve) => {
      const takeOne = () => {
        ticket.pending++;
        this.add(1);
        remaining--;
        if (remaining === 0) resolve();
        else this.fanOutWaiters.push(takeOne);
      };
      this.fanOutWaiters.push(takeOne);
      this.onWait();
    });
  }

  /** A sample left the graph (committed to a sink or rejected). Returns true when its root is finished. */
  release(ticket: Ticket): boolean {
    this.current--;
    while (this.fanOutWaiters.length > 0 && this.current < this.budget) this.fanOutWaiters.shift()!();
    if (this.pumpWaiter && this.fanOutWaiters.length === 0 && this.current <= this.resumeLevel) this.wakePump();
    return this.drop(ticket);
  }

  /**
   * A fan-out is still placing children of `ticket`'s root: its first children may be committed before
   * the later ones have credit, and the root must not count as finished until the last is placed. A
   * hold counts toward the root's pending outputs, not toward the budget.
   */
  hold(ticket: Ticket): void {
    ticket.pending++;
  }

  releaseHold(ticket: Ticket): void {
    this.drop(ticket);
  }

  private drop(ticket: Ticket): boolean {
    ticket.pending--;
    if (ticket.pending !== 0) return false;
    this.onRootFinished(ticket);
    return true;
  }

  /** Stopping: the pump must not wait for credit that may never come. */
  wakePump(): void {
    const resolve = this.pumpWaiter;
    this.pumpWaiter = undefined;
    resolve?.();
  }

  private add(count: number): void {
    this.current += count;
    if (this.current > this.peak) this.peak = this.current;
  }
}
