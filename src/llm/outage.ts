import { EndpointError } from "../errors.ts";

/** What a request may do when it reaches the gate. */
export type Pass =
  /** The endpoint is up: send. */
  | "go"
  /** An outage ended while this request waited: send, with a fresh retry budget. */
  | "resumed"
  /** This request is the outage's one probe: send it, then report `answered`, `probeFailed` or `probeAbandoned`. */
  | Probe;

export interface Probe {
  /** Which outage it probes (outages are numbered from 1). */
  readonly probeOf: number;
}

export interface OutageSettings {
  /** How the endpoint is named in lines and errors (its host). */
  readonly endpoint: string;
  /** How long requests wait for the endpoint before they fail with an EndpointError; 0: not at all. */
  readonly outageMs: number;
  /** First wait between probes; doubles up to `probeMaxMs`. */
  readonly probeBaseMs: number;
  readonly probeMaxMs: number;
}

interface Waiter {
  resolve(pass: Pass): void;
  reject(error: unknown): void;
  readonly signal: AbortSignal | undefined;
  readonly onAbort: () => void;
}

interface Outage {
  readonly id: number;
  /** Wall-clock time of the first failure, for the lines people read. */
  readonly since: number;
  readonly startedAt: number;
  /** Latest failure, as said in the lines and the final error. */
  what: string;
  status: number | undefined;
  probes: number;
  probing: boolean;
  probeTimer: NodeJS.Timeout | undefined;
  readonly deadline: NodeJS.Timeout;
  readonly log: ((line: string) => void) | undefined;
  /** Set when the outage outlasted its limit: what its probe in flight fails with too. */
  error?: EndpointError;
}

function clock(ms: number): string {
  return new Date(ms).toTimeString().slice(0, 5);
}

function seconds(ms: number): string {
  if (ms < 1_000) return `${Math.round(ms)}ms`;
  return `${Number((ms / 1_000).toFixed(ms < 10_000 ? 1 : 0))}s`;
}

/**
 * The client's view of whether its endpoint is up. A request whose retries ran out on connection errors,
 * timeouts, 429s or 5xx while nothing else got an answer declares an outage: from then on every request
 * waits here instead of being sent, while one at a time probes the endpoint with backoff. The first answer
 * ends the outage and everyone continues; an outage longer than `outageMs` fails every waiting request with
 * an EndpointError, which stops a run without rejecting any sample (a rerun resumes).
 */
export class OutageGate {
  private current: Outage | undefined;
  private last: Outage | undefined;
  private outages = 0;
  private readonly waiters: Waiter[] = [];
  /** performance.now() of the latest answer from the endpoint (any HTTP status that is not an outage's). */
  lastAnswerAt = Number.NEGATIVE_INFINITY;

  constructor(private readonly settings: OutageSettings) {}

  get active(): boolean {
    return this.current !== undefined;
  }

  /** Resolves at once while the endpoint is up; during an outage when it ends or it is this request's turn to probe. */
  enter(signal: AbortSignal | undefined): Promise<Pass> {
    if (!this.current) return Promise.resolve("go");
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<Pass>((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        signal,
        onAbort: () => {
          this.remove(waiter);
          reject(signal!.reason);
          this.refresh();
        },
      };
      signal?.addEventListener("abort", waiter.onAbort, { once: true });
      this.waiters.push(waiter);
      this.schedule();
      this.refresh();
    });
  }

  /** The endpoint answered (a result, or a status that is the request's own problem): an outage is over. */
  answered(): void {
    this.lastAnswerAt = performance.now();
    const outage = this.current;
    if (!outage) return;
    this.end(outage);
    outage.log?.(`llm: endpoint ${this.settings.endpoint} answers again after ${seconds(performance.now() - outage.startedAt)}: requests continue`);
    for (const waiter of this.waiters.splice(0)) this.settle(waiter, "resumed");
  }

  /**
   * Declares an outage, or joins the one already declared. `since` is the wall-clock time of the first
   * failure; `log` gets the one line that says so.
   */
  begin(what: string, status: number | undefined, since: number, log: ((line: string) => void) | undefined): void {
    if (this.current) return;
    const { endpoint, outageMs, probeMaxMs } = this.settings;
    const outage: Outage = {
      id: ++this.outages,
      since,
      startedAt: performance.now(),
      what,
      status,
      probes: 0,
      probing: false,
      probeTimer: undefined,
      deadline: setTimeout(() => this.expire(outage), outageMs),
      log,
    };
    this.current = outage;
    this.last = outage;
    log?.(`llm: endpoint ${endpoint} unreachable since ${clock(since)} (${what}): pausing requests, probing every ${seconds(probeMaxMs)} at most; stops after ${seconds(outageMs)}`);
    this.refresh();
  }

  /**
   * The probe got no answer either: the next one goes out after a longer wait (at least `askedMs`, when
   * the server asked). Returns the error to fail with when its outage ran out meanwhile.
   */
  probeFailed(probe: Probe, what: string, status: number | undefined, askedMs: number | undefined): EndpointError | undefined {
    const outage = this.current;
    if (!outage || outage.id !== probe.probeOf) return this.last?.id === probe.probeOf ? this.last.error : undefined;
    outage.what = what;
    outage.status = status;
    outage.probing = false;
    outage.probes++;
    this.schedule(askedMs);
    this.refresh();
    return undefined;
  }

  /** The probe's caller gave up before it was answered: another waiter probes. */
  probeAbandoned(probe: Probe): void {
    const outage = this.current;
    if (!outage || outage.id !== probe.probeOf || !outage.probing) return;
    outage.probing = false;
    this.schedule();
    this.refresh();
  }

  /** The error a request gets when the endpoint stays away past the limit (also for a limit of 0). */
  gaveUp(what: string, status: number | undefined, since: number, attempt: number): EndpointError {
    const { endpoint, outageMs } = this.settings;
    const waited = outageMs > 0 ? `gave up after ${seconds(outageMs)} of waiting (outageSeconds, RXSYNTH_OUTAGE_SECONDS)` : "not waiting for it (outageSeconds 0)";
    return new EndpointError(
      `endpoint ${endpoint} unreachable since ${clock(since)} (${what}); ${waited}. Nothing was rejected: rerun the same command to resume`,
      { status, attempt, retryable: true },
    );
  }

  close(reason: unknown): void {
    const outage = this.current;
    if (outage) this.end(outage);
    for (const waiter of this.waiters.splice(0)) this.fail(waiter, reason);
  }

  private schedule(askedMs?: number): void {
    const outage = this.current;
    if (!outage || outage.probing || outage.probeTimer || this.waiters.length === 0) return;
    const { probeBaseMs, probeMaxMs } = this.settings;
    const delay = Math.max(askedMs ?? 0, Math.min(probeMaxMs, probeBaseMs * 2 ** outage.probes));
    outage.probeTimer = setTimeout(() => {
      outage.probeTimer = undefined;
      if (this.current !== outage) return;
      const next = this.waiters.shift();
      if (!next) return;
      outage.probing = true;
      this.settle(next, { probeOf: outage.id });
      this.refresh();
    }, delay);
  }

  private expire(outage: Outage): void {
    if (this.current !== outage) return;
    this.end(outage);
    const error = this.gaveUp(outage.what, outage.status, outage.since, 0);
    outage.error = error;
    outage.log?.(`llm: ${error.message}`);
    for (const waiter of this.waiters.splice(0)) this.fail(waiter, error);
  }

  private end(outage: Outage): void {
    clearTimeout(outage.deadline);
    if (outage.probeTimer) clearTimeout(outage.probeTimer);
    outage.probeTimer = undefined;
    this.current = undefined;
  }

  /** Timers keep the process alive only while someone waits on them. */
  private refresh(): void {
    const outage = this.current;
    if (!outage) return;
    const busy = this.waiters.length > 0 || outage.probing;
    for (const timer of [outage.deadline, outage.probeTimer]) {
      if (busy) timer?.ref();
      else timer?.unref();
    }
  }

  private remove(waiter: Waiter): void {
    const index = this.waiters.indexOf(waiter);
    if (index >= 0) this.waiters.splice(index, 1);
  }

  private settle(waiter: Waiter, pass: Pass): void {
    waiter.signal?.removeEventListener("abort", waiter.onAbort);
    waiter.resolve(pass);
  }

  private fail(waiter: Waiter, error: unknown): void {
    waiter.signal?.removeEventListener("abort", waiter.onAbort);
    waiter.reject(error);
  }
}
