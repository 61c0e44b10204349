// The Batch API's file formats (OpenAI's "request input" and "request output" objects): one JSON object a
// line. Input: { custom_id, method, url, body }. Output and error files: { id, custom_id, response: {
// status_code, request_id, body } | null, error: { code, message } | null }. A request that expired or was
// cancelled with its batch is in the error file with response null and error.code batch_expired /
// batch_cancelled; one the model's endpoint refused has a response with a 4xx status and an error body.

/** The endpoint every line of an rxsynth batch calls. */
export const BATCH_ENDPOINT = "/v1/chat/completions";

export function inputLine(customId: string, body: Record<string, unknown>): string {
  return JSON.stringify({ custom_id: customId, method: "POST", url: BATCH_ENDPOINT, body });
}

/** A chat completion as the output file carries it (the fields rxsynth reads). */
export interface CompletionBody {
  readonly model?: string;
  readonly choices?: ReadonlyArray<{
    readonly index?: number;
    readonly finish_reason?: string | null;
    readonly message?: { readonly content?: string | null; readonly refusal?: string | null; readonly reasoning?: unknown; readonly reasoning_content?: unknown };
  }>;
  readonly usage?: { readonly prompt_tokens?: number; readonly completion_tokens?: number; readonly prompt_tokens_details?: { readonly cached_tokens?: number } };
}

/** What became of one line. */
export type LineOutcome =
  /** Answered: the completion, to cache and hand to the caller. */
  | { readonly kind: "answer"; readonly customId: string; readonly body: CompletionBody; readonly requestId: string | undefined }
  /** Refused for its own content or shape (a 4xx other than 408/409/429): a verdict on the request, not resent. */
  | { readonly kind: "refused"; readonly customId: string; readonly status: number | undefined; readonly code: string | undefined; readonly message: string }
  /** Not done, through no fault of its own (expired, cancelled, 5xx, 429): resent in a later batch. */
  | { readonly kind: "retry"; readonly customId: string; readonly status: number | undefined; readonly code: string | undefined; readonly message: string };

const RETRYABLE_STATUS = (status: number) => status === 408 || status === 409 || status === 429 || status >= 500;

interface RawLine {
  readonly custom_id?: unknown;
  readonly response?: { readonly status_code?: unknown; readonly request_id?: unknown; readonly body?: unknown } | null;
  readonly error?: { readonly code?: unknown; readonly message?: unknown } | null;
}

function text(value: unknown): string | undefined {
  return typeof value === "string" ? value : undefined;
}

/** One output or error line read; undefined for a line without a custom_id (nothing can be matched to it). */
export function readLine(line: string): LineOutcome | undefined {
  let raw: RawLine;
  try {
    raw = JSON.parse(line) as RawLine;
  } catch {
    return undefined;
  }
  const customId = text(raw.custom_id);
  if (!customId) return undefined;
  const response = raw.response ?? undefined;
  const status = typeof response?.status_code === "number" ? response.status_code : undefined;
  if (response && status !== undefined && status >= 200 && status < 300 && typeof response.body === "object" && response.body !== null) {
    return { kind: "answer", customId, body: response.body as CompletionBody, requestId: text(response.request_id) };
  }
  const bodyError = (response?.body as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  const code = text(raw.error?.code) ?? text(bodyError?.code);
  const message = text(raw.error?.message) ?? text(bodyError?.message) ?? (status !== undefined ? `status ${status}` : "no answer");
  if (status !== undefined && !RETRYABLE_STATUS(status)) return { kind: "refused", customId, status, code, message };
  return { kind: "retry", customId, status, code, message };
}

/** Every line of an output or error file, by custom_id (a repeated id keeps its answer over an error). */
export function readOutcomes(...files: readonly string[]): Map<string, LineOutcome> {
  const outcomes = new Map<string, LineOutcome>();
  for (const file of files) {
    for (const line of file.split("\n")) {
      if (!line.trim()) continue;
      const outcome = readLine(line);
      if (!outcome) continue;
      if (outcomes.get(outcome.customId)?.kind === "answer") continue;
      outcomes.set(outcome.customId, outcome);
    }
  }
  return outcomes;
}
