/** What the folder's earlier sessions spent on how many finished source records (from the manifest). */
export interface CostHistory {
  readonly spentUsd: number;
  readonly finishedRoots: number;
}

/** The run as the cap sees it when the pump is about to pull another source record. */
export interface CostState {
  /** Spent by this session so far, requests of samples still in flight included. */
  readonly spentUsd: number;
  /** Source records this session finished (committed or rejected), and those it pulled and has not finished. */
  readonly finishedRoots: number;
  readonly rootsInFlight: number;
}

export type CostVerdict = "pull" | "wait" | "stop";

/**
 * `--max-cost`: the pump pulls a source record only while what is spent, plus what the records in flight
 * and this one are expected to cost, stays under the cap. A record's cost is estimated from the records
 * finished so far (this session's, else the folder's earlier sessions'); until one has finished nothing
 * is known, so one record at a time is let through rather than a whole budget's worth at an unknown price.
 * Near the cap (where twice the estimate for the records in flight would pass it) records go one at a
 * time, each measured alone, and the next is pulled only if twice the costliest one measured so far still
 * fits: the spend passes the cap only if a record costs more than that, or if the
 * very first record, pulled while nothing was known, already does.
 * `spentUsd` holds the partial spend of records in flight as well, which errs on the side of stopping early.
 */
/** Records of one graph differ in length (answers of 80 to 250 tokens in one graph here): room left for the last one, over the costliest seen. */
const LAST_RECORD_MARGIN = 2;

export class CostCap {
  /** The most one record cost when it was alone in flight, so its cost is known exactly. */
  private costliest = 0;
  private solo: { readonly from: number } | undefined;

  constructor(
    readonly maxUsd: number,
    private readonly history: CostHistory,
  ) {}

  /** Dollars one source record is expected to cost, or undefined before any has finished. */
  perRoot(state: CostState): number | undefined {
    if (state.finishedRoots > 0) return state.spentUsd / state.finishedRoots;
    if (this.history.finishedRoots > 0) return this.history.spentUsd / this.history.finishedRoots;
    return undefined;
  }

  spent(state: CostState): number {
    return this.history.spentUsd + state.spentUsd;
  }

  verdict(state: CostState): CostVerdict {
    const spent = this.spent(state);
    if (this.solo && state.rootsInFlight === 0) {
      this.costliest = Math.max(this.costliest, state.spentUsd - this.solo.from);
      this.solo = undefined;
    }
    if (spent >= this.maxUsd) return "stop";
    const perRoot = this.perRoot(state);
    if (perRoot === undefined) return state.rootsInFlight === 0 ? this.pullAlone(state) : "wait";
    if (spent + 2 * perRoot * (state.rootsInFlight + 1) <= this.maxUsd) return "pull";
    if (state.rootsInFlight > 0) return "wait";
    return spent + LAST_RECORD_MARGIN * Math.max(perRoot, this.costliest) <= this.maxUsd ? this.pullAlone(state) : "stop";
  }

  private pullAlone(state: CostState): CostVerdict {
    this.solo = { from: state.spentUsd };
    return "pull";
  }
}

/**
 * Spend at completion, extrapolated from the share of the work done: finished source records of a known
 * total, or accepted rows of the graph's own goal (a `target`). Undefined while nothing says how far along it is.
 */
export function projectedCost(spentUsd: number, done: { readonly finished: number; readonly total: number } | undefined): number | undefined {
  if (!done || done.total <= 0 || done.finished <= 0) return undefined;
  return spentUsd * Math.max(1, done.total / done.finished);
}
