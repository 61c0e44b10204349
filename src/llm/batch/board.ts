/** What batch mode has done so far, for the progress view. */
export interface BatchFigures {
  /** Batches created on the server (a resumed run counts the ones it found in its journal). */
  readonly submitted: number;
  readonly inProgress: number;
  readonly completed: number;
  readonly expired: number;
  /** Failed or cancelled. */
  readonly failed: number;
  /** Requests answered, and requests sent in batches (a resent request counts each time). */
  readonly requestsDone: number;
  readonly requestsTotal: number;
}

/** Counters a batch client updates and the progress view reads; one per run. */
export class BatchBoard {
  submitted = 0;
  completed = 0;
  expired = 0;
  failed = 0;
  requestsDone = 0;
  requestsTotal = 0;

  ended(status: string): void {
    if (status === "completed") this.completed++;
    else if (status === "expired") this.expired++;
    else this.failed++;
  }

  figures(): BatchFigures {
    return {
      submitted: this.submitted,
      inProgress: this.submitted - this.completed - this.expired - this.failed,
      completed: this.completed,
      expired: this.expired,
      failed: this.failed,
      requestsDone: this.requestsDone,
      requestsTotal: this.requestsTotal,
    };
  }
}

const number = new Intl.NumberFormat("en-US");

/** "batches: 3 submitted, 1 in progress, 2 completed, 0 expired; requests 2,000/3,000". */
export function batchLine(figures: BatchFigures): string {
  const failed = figures.failed > 0 ? `, ${number.format(figures.failed)} failed` : "";
  return (
    `batches: ${number.format(figures.submitted)} submitted, ${number.format(figures.inProgress)} in progress, ` +
    `${number.format(figures.completed)} completed, ${number.format(figures.expired)} expired${failed}; ` +
    `requests ${number.format(figures.requestsDone)}/${number.format(figures.requestsTotal)}`
  );
}
