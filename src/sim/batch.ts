import { stableHash } from "../hash.ts";
import { page, type FileStore } from "./batch-files.ts";
import { validateInput, type BatchError, type BatchLine } from "./batch-input.ts";
import { HttpError } from "./http-error.ts";
import { Rng } from "./random.ts";

/** What the online endpoint answers for one request body (see `answerOnce` in server.ts). */
export interface ChatAnswer {
  readonly status: number;
  readonly body: unknown;
  readonly promptTokens: number;
  readonly completionTokens: number;
  readonly reasoningTokens: number;
}

/** The simulator's counters the Batch API adds to; kept apart from the online ones. */
export interface BatchStats {
  /** POST /v1/batches that made a batch (a client that submits twice shows here). */
  batchesCreated: number;
  /** Requests in batches that passed validation. */
  batchRequests: number;
  /** Batch requests answered 200, in an output file. */
  batchCompleted: number;
  /** Batch requests in an error file: failed, expired or cancelled. */
  batchFailed: number;
  batchPromptTokens: number;
  batchCompletionTokens: number;
  filesUploaded: number;
}

export interface BatchTiming {
  /** From creation to `completed`; validating, in progress and finalizing take 10 %, 80 % and 10 % of it. */
  readonly completionMs: number;
  /** A batch not finished this long after creation expires (OpenAI's 24 h completion window). */
  readonly expireMs: number;
  /** Probability that a request fails with a 500 in the error file, rolled by (seed, batch, custom_id). */
  readonly failureRate: number;
  readonly seed: number;
}

type Status = "validating" | "failed" | "in_progress" | "finalizing" | "completed" | "expired" | "cancelling" | "cancelled";

/** One request's fate once it has run: its line in the output or the error file. */
interface Outcome {
  readonly ok: boolean;
  readonly line: string;
  readonly promptTokens: number;
  readonly completionTokens: number;
  readonly reasoningTokens: number;
}

interface BatchRecord {
  readonly id: string;
  readonly inputFileId: string;
  readonly endpoint: string;
  readonly completionWindow: string;
  readonly metadata: Record<string, string> | null;
  readonly createdMs: number;
  readonly model: string | null;
  readonly lines: readonly BatchLine[];
  readonly errors: readonly BatchError[];
  /** When POST cancel came, in ms after creation. */
  cancelAt?: number;
  /** The requests run so far, in input order (a batch runs its file front to back). */
  readonly outcomes: Outcome[];
  /** Set once the batch reached its end and wrote its files. */
  end?: { status: Status; outputFileId: string | null; errorFileId: string | null };
  /** The last look at the batch: looks run one at a time, since running its requests yields to the server. */
  busy?: Promise<void>;
}

/** OpenAI's limits on a batch's metadata. */
const METADATA_MAX_KEYS = 16;
const METADATA_KEY_MAX = 64;
const METADATA_VALUE_MAX = 512;
const ENDPOINT = "/v1/chat/completions";

const EXPIRED = { code: "batch_expired", message: "This request could not be executed before the completion window expired." };
const CANCELLED = { code: "batch_cancelled", message: "This request was not executed because the batch was cancelled." };
const SERVER_ERROR = { message: "The server had an error while processing your request. Sorry about that!", type: "server_error", param: null, code: null };

const seconds = (ms: number) => Math.floor(ms / 1_000);
/** Requests run between two yields to the event loop, so a large batch does not stall the online endpoint. */
const RUN_SLICE = 200;

/**
 * OpenAI's Batch API over the simulator: a batch moves validating -> in_progress -> finalizing -> completed
 * (or failed, expired, cancelling -> cancelled) on a clock measured from its creation, so its state is a
 * function of time, computed when asked. Its requests run front to back during `in_progress`, each getting
 * the answer the online endpoint gives for its body. The simulator charges nothing; rxsynth prices batch
 * tokens at OpenAI's batch rate, 50 % of the online list price.
 */
export class BatchService {
  private readonly batches = new Map<string, BatchRecord>();
  private counter = 0;

  constructor(
    private readonly timing: BatchTiming,
    private readonly files: FileStore,
    private readonly answer: (body: unknown) => ChatAnswer,
    private readonly stats: BatchStats,
  ) {}

  create(body: unknown): object {
    if (!body || typeof body !== "object" || Array.isArray(body)) throw new HttpError(400, "The request body must be a JSON object.", "invalid_request_error");
    const b = body as Record<string, unknown>;
    if (typeof b.input_file_id !== "string") throw new HttpError(400, "Missing required parameter: 'input_file_id'.", "invalid_request_error", "input_file_id");
    if (typeof b.endpoint !== "string") throw new HttpError(400, "Missing required parameter: 'endpoint'.", "invalid_request_error", "endpoint");
    if (b.endpoint !== ENDPOINT) {
      throw new HttpError(400, `Invalid value for 'endpoint': '${b.endpoint}'. The simulator batches ${ENDPOINT} only.`, "invalid_request_error", "endpoint");
    }
    if (b.completion_window !== "24h") {
      throw new HttpError(400, `Invalid value for 'completion_window': ${JSON.stringify(b.completion_window ?? null)}. Supported values are: '24h'.`, "invalid_request_error", "completion_window");
    }
    const metadata = checkMetadata(b.metadata);
    let input;
    try {
      input = this.files.get(b.input_file_id);
    } catch {
      throw new HttpError(400, `Invalid 'input_file_id': '${b.input_file_id}'. No such file.`, "invalid_request_error", "input_file_id");
    }
    if (input.purpose !== "batch") {
      throw new HttpError(400, `The input file ${input.id} was uploaded with purpose '${input.purpose}'; a batch needs purpose 'batch'.`, "invalid_request_error", "input_file_id");
    }
    const { lines, errors, model } = validateInput(this.files.content(input.id), ENDPOINT);
    const record: BatchRecord = {
      id: `batch_${stableHash(`${this.timing.seed}\u0000batch\u0000${++this.counter}`, 32)}`,
      inputFileId: input.id,
      endpoint: ENDPOINT,
      completionWindow: "24h",
      metadata,
      createdMs: Date.now(),
      model,
      lines,
      errors,
      outcomes: [],
    };
    this.batches.set(record.id, record);
    this.stats.batchesCreated++;
    this.stats.batchRequests += lines.length;
    // Create answers before any time has passed: the batch is validating, however short its clock.
    return this.view(record, 0);
  }

  async retrieve(id: string): Promise<object> {
    const record = this.record(id);
    return this.locked(record, async () => this.view(record, await this.advance(record)));
  }

  /** Newest first, as OpenAI lists batches; a client that lost an id finds its batch by `metadata`. */
  async list(query: URLSearchParams): Promise<object> {
    const all = [...this.batches.values()].reverse();
    const listed = page(all, query, 100);
    const data: object[] = [];
    for (const record of listed.data) data.push(await this.locked(record, async () => this.view(record, await this.advance(record))));
    return { ...listed, data };
  }

  async cancel(id: string): Promise<object> {
    const record = this.record(id);
    return this.locked(record, async () => {
      const at = await this.advance(record);
      const status = this.phase(record, at).status;
      if (status === "cancelling") return this.view(record, at);
      if (!["validating", "in_progress", "finalizing"].includes(status)) {
        throw new HttpError(409, `Cannot cancel a batch with status '${status}'.`, "invalid_request_error", null, "batch_not_cancellable");
      }
      record.cancelAt = at;
      return this.view(record, await this.advance(record));
    });
  }

  private async locked<T>(record: BatchRecord, look: () => Promise<T>): Promise<T> {
    const before = record.busy;
    let done!: () => void;
    record.busy = new Promise<void>((resolve) => (done = resolve));
    try {
      await before;
      return await look();
    } finally {
      done();
    }
  }

  private record(id: string): BatchRecord {
    const record = this.batches.get(id);
    if (!record) throw new HttpError(404, `No batch found with id '${id}'.`, "invalid_request_error", "batch_id");
    return record;
  }

  /** The phase boundaries, in ms after creation. */
  private clock() {
    const d = this.timing.completionMs;
    return { validated: 0.1 * d, ran: 0.9 * d, completed: d, cancelling: 0.1 * d };
  }

  /** How many requests (a prefix of the file) have run by `t` ms after creation. */
  private doneBy(record: BatchRecord, t: number): number {
    const { validated, ran } = this.clock();
    const n = record.lines.length;
    if (t < validated) return 0;
    if (ran <= validated) return n;
    return Math.min(n, Math.floor((n * (t - validated)) / (ran - validated) + 1e-9));
  }

  /** Where the batch stands `t` ms after creation: its status, and the time its end comes (or came). */
  private phase(record: BatchRecord, t: number): { status: Status; endAt: number; endStatus: Status; cutoff: number } {
    const c = this.clock();
    let end: { endAt: number; endStatus: Status; cutoff: number };
    if (record.cancelAt !== undefined) end = { endAt: record.cancelAt + c.cancelling, endStatus: "cancelled", cutoff: record.cancelAt };
    else if (record.errors.length > 0) end = { endAt: c.validated, endStatus: "failed", cutoff: 0 };
    else if (this.timing.expireMs < c.completed) end = { endAt: this.timing.expireMs, endStatus: "expired", cutoff: Math.min(this.timing.expireMs, c.ran) };
    else end = { endAt: c.completed, endStatus: "completed", cutoff: c.ran };
    // A zero-length phase is passed at once, except that a batch is validating when it is created.
    let status: Status;
    if (t >= end.endAt && !(t === 0 && end.endStatus !== "cancelled")) status = end.endStatus;
    else if (record.cancelAt !== undefined && t >= record.cancelAt) status = "cancelling";
    else if (t < c.validated || t === 0) status = "validating";
    else if (t < c.ran) status = "in_progress";
    else status = "finalizing";
    return { status, ...end };
  }

  /** Runs the requests due by now and, at the batch's end, writes its files; returns the ms since creation. */
  private async advance(record: BatchRecord): Promise<number> {
    const t = Math.max(0, Date.now() - record.createdMs);
    if (record.end) return t;
    const phase = this.phase(record, t);
    const due = this.doneBy(record, Math.min(t, phase.cutoff));
    while (record.outcomes.length < due) {
      const slice = Math.min(due, record.outcomes.length + RUN_SLICE);
      while (record.outcomes.length < slice) record.outcomes.push(this.run(record, record.lines[record.outcomes.length]!));
      if (record.outcomes.length < due) await new Promise((resolve) => setImmediate(resolve));
    }
    if (phase.status === phase.endStatus && phase.status !== "validating") this.finish(record, phase.status);
    return t;
  }

  private run(record: BatchRecord, line: BatchLine): Outcome {
    const lineId = `batch_req_${stableHash(`${record.id}\u0000${line.customId}`, 32)}`;
    const requestId = `req_${stableHash(`${record.id}\u0000${line.customId}\u0000request`, 32)}`;
    const injected = this.timing.failureRate > 0 && new Rng(`${this.timing.seed}\u0000batch-failure\u0000${record.id}\u0000${line.customId}`).chance(this.timing.failureRate);
    const answer: ChatAnswer = injected ? { status: 500, body: { error: SERVER_ERROR }, promptTokens: 0, completionTokens: 0, reasoningTokens: 0 } : this.answer(line.body);
    const ok = answer.status === 200;
    // OpenAI writes a request the endpoint answered with an HTTP error as that response, with `error` null.
    const text = JSON.stringify({ id: lineId, custom_id: line.customId, response: { status_code: answer.status, request_id: requestId, body: answer.body }, error: null });
    if (ok) {
      this.stats.batchCompleted++;
      this.stats.batchPromptTokens += answer.promptTokens;
      this.stats.batchCompletionTokens += answer.completionTokens;
    } else this.stats.batchFailed++;
    return { ok, line: text, promptTokens: answer.promptTokens, completionTokens: answer.completionTokens, reasoningTokens: answer.reasoningTokens };
  }

  private finish(record: BatchRecord, status: Status): void {
    if (status === "failed") {
      record.end = { status, outputFileId: null, errorFileId: null };
      return;
    }
    const output: string[] = [];
    const errors: string[] = [];
    for (const outcome of record.outcomes) (outcome.ok ? output : errors).push(outcome.line);
    // Requests that never ran are in the error file with why, so every custom_id is in exactly one file.
    const reason = status === "expired" ? EXPIRED : CANCELLED;
    for (const line of record.lines.slice(record.outcomes.length)) {
      errors.push(JSON.stringify({ id: `batch_req_${stableHash(`${record.id}\u0000${line.customId}`, 32)}`, custom_id: line.customId, response: null, error: reason }));
      this.stats.batchFailed++;
    }
    const write = (lines: string[], kind: string) =>
      lines.length === 0 ? null : this.files.add(Buffer.from(lines.map((l) => `${l}\n`).join("")), `${record.id}_${kind}.jsonl`, "batch_output").id;
    record.end = { status, outputFileId: write(output, "output"), errorFileId: write(errors, "error") };
  }

  /** The Batch object as OpenAI sends it, `t` ms after the batch's creation. */
  private view(record: BatchRecord, t: number): object {
    const c = this.clock();
    const phase = this.phase(record, t);
    const status = phase.status;
    const at = (ms: number | undefined) => (ms === undefined ? null : seconds(record.createdMs + ms));
    const ended = status === phase.endStatus && status !== "validating";
    // The batch worked until it was cancelled, ended, or now: a phase it never reached has no timestamp.
    const workedUntil = record.cancelAt ?? (ended ? phase.endAt : t);
    const ran = status !== "validating" && status !== "failed";
    const started = ran && c.validated <= workedUntil;
    const reachedFinalizing = ran && status !== "in_progress" && c.ran <= workedUntil;
    const counted = status === "validating" ? [] : record.outcomes;
    const unrun = ended && status !== "failed" ? record.lines.length - record.outcomes.length : 0;
    const completed = counted.filter((o) => o.ok);
    const usage = completed.reduce(
      (sum, o) => ({ input: sum.input + o.promptTokens, output: sum.output + o.completionTokens, reasoning: sum.reasoning + o.reasoningTokens }),
      { input: 0, output: 0, reasoning: 0 },
    );
    return {
      id: record.id,
      object: "batch",
      endpoint: record.endpoint,
      model: record.model,
      errors: record.errors.length > 0 && status === "failed" ? { object: "list", data: record.errors } : null,
      input_file_id: record.inputFileId,
      completion_window: record.completionWindow,
      status,
      output_file_id: ended ? (record.end?.outputFileId ?? null) : null,
      error_file_id: ended ? (record.end?.errorFileId ?? null) : null,
      created_at: seconds(record.createdMs),
      in_progress_at: started ? at(c.validated) : null,
      expires_at: seconds(record.createdMs + this.timing.expireMs),
      finalizing_at: reachedFinalizing ? at(c.ran) : null,
      completed_at: ended && status === "completed" ? at(phase.endAt) : null,
      failed_at: ended && status === "failed" ? at(phase.endAt) : null,
      expired_at: ended && status === "expired" ? at(phase.endAt) : null,
      cancelling_at: record.cancelAt !== undefined ? at(record.cancelAt) : null,
      cancelled_at: ended && status === "cancelled" ? at(phase.endAt) : null,
      request_counts: {
        total: status === "validating" ? 0 : record.lines.length,
        completed: completed.length,
        failed: counted.length - completed.length + unrun,
      },
      usage: {
        input_tokens: usage.input,
        input_tokens_details: { cached_tokens: 0 },
        output_tokens: usage.output,
        output_tokens_details: { reasoning_tokens: usage.reasoning },
        total_tokens: usage.input + usage.output,
      },
      metadata: record.metadata,
    };
  }
}

function checkMetadata(value: unknown): Record<string, string> | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== "object" || Array.isArray(value)) throw new HttpError(400, "Invalid type for 'metadata': expected an object of strings.", "invalid_request_error", "metadata");
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length > METADATA_MAX_KEYS) throw new HttpError(400, `Invalid 'metadata': at most ${METADATA_MAX_KEYS} keys, got ${entries.length}.`, "invalid_request_error", "metadata");
  for (const [key, v] of entries) {
    if (key.length > METADATA_KEY_MAX) throw new HttpError(400, `Invalid 'metadata': key '${key.slice(0, 20)}...' is longer than ${METADATA_KEY_MAX} characters.`, "invalid_request_error", "metadata");
    if (typeof v !== "string") throw new HttpError(400, `Invalid type for 'metadata.${key}': expected a string.`, "invalid_request_error", `metadata.${key}`);
    if (v.length > METADATA_VALUE_MAX) throw new HttpError(400, `Invalid 'metadata.${key}': longer than ${METADATA_VALUE_MAX} characters.`, "invalid_request_error", `metadata.${key}`);
  }
  return Object.fromEntries(entries) as Record<string, string>;
}
