/**
 * The few error kinds rxsynth raises. Each says where and what to do, and keeps its `cause`.
 * The CLI prints `message` alone unless --verbose.
 */
export class RxsynthError extends Error {
  readonly tag: string = "RxsynthError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A setting is wrong; the message says what to change. */
export class ConfigError extends RxsynthError {
  override readonly tag = "ConfigError";
}

/** Input data is wrong; the message names the file, line and field. */
export class InputError extends RxsynthError {
  override readonly tag = "InputError";
  readonly file: string | undefined;
  readonly line: number | undefined;
  readonly field: string | undefined;
  constructor(
    message: string,
    where: { file?: string; line?: number; field?: string } = {},
    options?: { cause?: unknown },
  ) {
    const place = [where.file, where.line === undefined ? undefined : `line ${where.line}`, where.field]
      .filter((part) => part !== undefined)
      .join(", ");
    super(place ? `${place}: ${message}` : message, options);
    this.file = where.file;
    this.line = where.line;
    this.field = where.field;
  }
}

/** An LLM endpoint failed for good (after retries, or at once for a non-retryable status). */
export class LlmError extends RxsynthError {
  override readonly tag: string = "LlmError";
  readonly status: number | undefined;
  readonly attempt: number;
  readonly requestId: string | undefined;
  readonly retryable: boolean;
  /** The reject reason operators give the sample: "llm_error", or "context_length" for a prompt too long for the model. */
  readonly reason: "llm_error" | "context_length";
  constructor(
    message: string,
    details: { status?: number; attempt: number; requestId?: string; retryable?: boolean; reason?: "llm_error" | "context_length" },
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.status = details.status;
    this.attempt = details.attempt;
    this.requestId = details.requestId;
    this.retryable = details.retryable ?? false;
    this.reason = details.reason ?? "llm_error";
  }
}

/**
 * The endpoint cannot serve the run (a bad key, an unknown model, an outage that outlasted its wait):
 * no sample is at fault, so none is rejected. The run stops, commits what finished, and the samples in
 * flight stay unfinished, to be done when the run is resumed.
 */
export class EndpointError extends LlmError {
  override readonly tag = "EndpointError";
}

/**
 * The response cache could not be read or written (a full disk, a broken LMDB file). Not the sample's
 * fault and not worth sending the request again: the run stops, and a rerun resumes.
 */
export class CacheError extends RxsynthError {
  override readonly tag = "CacheError";
}

/**
 * Redis refused a command of a scaled-out run's shared state (out of memory, a read-only replica, a
 * script it cannot run): no sample is at fault, so none is rejected. The worker stops and its chunk goes
 * back to the queue untouched. (A dropped connection is not this: the command waits for Redis to return.)
 */
export class SharedStateError extends RxsynthError {
  override readonly tag = "SharedStateError";
}

/** Errors that stop the run whatever `failFast` says, instead of rejecting the one sample. */
export function stopsRun(error: unknown): boolean {
  return error instanceof EndpointError || error instanceof CacheError || error instanceof SharedStateError;
}

export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
