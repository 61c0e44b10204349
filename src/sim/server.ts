import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { ConfigError } from "../errors.ts";
import { stableHash } from "../hash.ts";
import { countMessageTokens, countTokens, encoderFor } from "../llm/tokens.ts";
import type { ChatMessage } from "../llm/types.ts";
import { composeChoice, contentKey, type ContentFault, type SimChoice, type SimRequest } from "./answers.ts";
import { isBatchApiPath, serveBatchApi } from "./batch-api.ts";
import { FileStore } from "./batch-files.ts";
import { BatchService, type BatchStats, type ChatAnswer } from "./batch.ts";
import { HttpError } from "./http-error.ts";
import { chainOfThought, simProfile, type ReasoningPlacement, type SimProfileName } from "./profiles.ts";
import { Rng } from "./random.ts";

/** Probability per request (transport faults) or per choice (content faults) of each injected fault. */
export interface FaultRates {
  /** 429 with Retry-After (`faultRetryAfterMs`). */
  readonly "429"?: number;
  readonly "500"?: number;
  readonly "503"?: number;
  /** The socket is destroyed after the headers and part of the body. */
  readonly reset?: number;
  /**
   * A streamed answer stops half way with an error event (vLLM's `data: {"error": {..., "code": 400}}`);
   * a whole answer gets the same error as a 400.
   */
  readonly midstream?: number;
  /** The answer is cut at half its tokens with `finish_reason: "length"`. */
  readonly length?: number;
  /** "I'm sorry, but as an AI language model I cannot ..." (in `refusal` for json_schema requests). */
  readonly refusal?: number;
  /** Broken JSON when JSON was asked for (cut off, wrapped in prose, or single-quoted). */
  readonly malformed?: number;
  /** An empty answer. */
  readonly empty?: number;
  /** The answer stops half way with the profile's finish reason for unfinished work (abort, null, content_filter). */
  readonly unfinished?: number;
}

export interface SimulatorOptions {
  /** 0 (default) picks a free port. */
  readonly port?: number;
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** Fixed time added to every request before its first byte (network, queueing upstream). Default 0. */
  readonly latencyMs?: number;
  /** Time to first token, after `latencyMs`. Default 0. */
  readonly ttftMs?: number;
  /** Generation speed per choice; the answer takes completion_tokens / tokensPerS more. Default: instant. */
  readonly tokensPerS?: number;
  /**
   * Requests served at once. Requests over the cap wait in a FIFO queue, as vLLM and llama.cpp do;
   * when `maxQueue` is full they get 429 instead, as hosted APIs do. Default: no cap.
   */
  readonly maxConcurrency?: number;
  /** Requests that may wait for a slot; 0 answers 429 at once over the cap. Default: unbounded. */
  readonly maxQueue?: number;
  /** Requests per minute, enforced as a token bucket holding `burstMs` worth of the limit. */
  readonly rpm?: number;
  /** Tokens per minute: prompt tokens + n * max_tokens at admission (+ completion tokens when no max_tokens). */
  readonly tpm?: number;
  /** Bucket size of the RPM/TPM limits in ms of the limit (OpenAI quantises per-minute limits). Default 1000. */
  readonly burstMs?: number;
  readonly faults?: FaultRates;
  /** Retry-After of an injected 429. Default 1000 ms. */
  readonly faultRetryAfterMs?: number;
  /** Changes every answer and every fault roll. Default 0. */
  readonly seed?: number;
  /** When set, requests must carry `Authorization: Bearer <apiKey>`, else 401. */
  readonly apiKey?: string;
  /** Listed by GET /v1/models (any model name is served, unless the profile loads named models). Default ["sim-1"]. */
  readonly models?: readonly string[];
  /** The family of server to play (see src/sim/profiles.ts). Default "openai". */
  readonly profile?: SimProfileName;
  /** Where a thinking model's chain of thought goes; default the profile's. "none": the model does not think. */
  readonly reasoning?: ReasoningPlacement;
  /**
   * The model's context window in tokens: a prompt (or prompt + max_tokens) beyond it is refused in the
   * profile's words, except that Ollama cuts the prompt silently. Default: unlimited.
   */
  readonly contextTokens?: number;
  /**
   * Accept response_format json_schema and ignore it, as some OpenAI-compatible servers do (llama.cpp
   * builds of early 2025, ggml-org/llama.cpp#11847; several local-model servers): the answer is free text
   * unless the prompt itself describes a schema.
   */
  readonly ignoreJsonSchema?: boolean;
  /**
   * Batch API (POST /v1/files, /v1/batches): ms from a batch's creation to `completed`. It is validating for
   * the first 10 %, runs its requests front to back over the next 80 % and is finalizing for the last 10 %.
   * 0 completes a batch on the first retrieve after its creation. Default 200.
   */
  readonly batchCompletionMs?: number;
  /**
   * Probability that a batch request fails with a 500 in the error file, rolled by (seed, batch id,
   * custom_id), so a resubmission in a new batch rolls again. Default 0.
   */
  readonly batchFailureRate?: number;
  /**
   * A batch not completed this many ms after its creation expires: the requests run by then are in the
   * output file, the rest in the error file with code `batch_expired`. Default 24 h (OpenAI's window).
   */
  readonly batchExpireMs?: number;
  /**
   * Sees the JSON body of every chat request the online endpoint accepts, as sent: lets a test check what
   * a graph asks for (sampling settings, prompts) over the wire, the way a provider's request log would.
   */
  readonly onChatRequest?: (body: Readonly<Record<string, unknown>>) => void;
}

/** Batch requests are counted apart (`batch*`): `requests`, `completed` and the token counts are online only. */
export interface SimulatorStats extends BatchStats {
  /** Chat-completion requests received, whatever became of them. */
  requests: number;
  /** Answers sent in full (status 200). */
  completed: number;
  streamed: number;
  /** All 429s: RPM/TPM limits, a full queue, injected faults. */
  rateLimited: number;
  errors5xx: number;
  resets: number;
  /** Other 4xx: bad requests, wrong key, unknown route. */
  clientErrors: number;
  truncated: number;
  refusals: number;
  malformed: number;
  empty: number;
  active: number;
  queued: number;
  peakConcurrency: number;
  peakQueued: number;
  promptTokens: number;
  completionTokens: number;
  /** TCP connections accepted (clients that keep connections alive open few). */
  connections: number;
}

/** How the simulator plays an endpoint that is out (see `Simulator.down`). */
export interface DownOptions {
  /** For how long from its start; default until `up()`. */
  readonly ms?: number;
  /**
   * "503": every chat request is answered 503 (and every Files and Batches request, which `afterRequests` does not
   * count); "refuse": the port stops listening (connection refused). Default "503".
   */
  readonly mode?: "503" | "refuse";
  /** The outage starts after this many more chat requests were received. Default 0: now. */
  readonly afterRequests?: number;
  /** Retry-After of the 503s, in ms; default none. */
  readonly retryAfterMs?: number;
}

export interface Simulator {
  /** Base URL for an OpenAI client, e.g. http://127.0.0.1:41234/v1. */
  readonly url: string;
  readonly port: number;
  stats(): SimulatorStats;
  /** Plays an outage: chat requests get 503, or connections are refused, until `up()` or `ms` passed. */
  down(options?: DownOptions): Promise<void>;
  /** Ends an outage: the same URL answers again. */
  up(): Promise<void>;
  close(): Promise<void>;
}

export const SIMULATOR_DEFAULTS = {
  host: "127.0.0.1",
  latencyMs: 0,
  ttftMs: 0,
  tokensPerS: Infinity,
  maxConcurrency: Infinity,
  maxQueue: Infinity,
  burstMs: 1_000,
  faultRetryAfterMs: 1_000,
  seed: 0,
  models: ["sim-1"],
  maxBodyBytes: 16 * 1024 * 1024,
  batchCompletionMs: 200,
  batchFailureRate: 0,
  batchExpireMs: 24 * 3_600_000,
} as const;

const TRANSPORT_FAULTS = ["429", "500", "503", "reset", "midstream"] as const;
const CONTENT_FAULTS: readonly ContentFault[] = ["length", "refusal", "malformed", "empty", "unfinished"];
type TransportFault = (typeof TRANSPORT_FAULTS)[number];

/** A server-side per-minute limit: continuous refill, capacity `burstMs` worth of the limit. */
class Bucket {
  private level: number;
  private updatedAt = performance.now();
  readonly capacity: number;
  private readonly ratePerMs: number;
  constructor(readonly limit: number, burstMs: number) {
    this.capacity = Math.max(1, (limit * burstMs) / 60_000);
    this.ratePerMs = limit / 60_000;
    this.level = this.capacity;
  }
  refill(): number {
    const now = performance.now();
    this.level = Math.min(this.capacity, this.level + (now - this.updatedAt) * this.ratePerMs);
    this.updatedAt = now;
    return this.level;
  }
  /** Whether `amount` fits now (an amount above capacity fits a full bucket). */
  fits(amount: number): boolean {
    return this.refill() >= Math.min(amount, this.capacity);
  }
  take(amount: number): void {
    this.refill();
    this.level -= amount;
  }
  waitMs(amount: number): number {
    return Math.max(0, (Math.min(amount, this.capacity) - this.refill()) / this.ratePerMs);
  }
  resetMs(): number {
    return Math.max(0, (this.capacity - this.refill()) / this.ratePerMs);
  }
}

function duration(ms: number): string {
  return ms < 1_000 ? `${Math.ceil(ms)}ms` : `${Number((ms / 1_000).toFixed(3))}s`;
}

function check(condition: boolean, message: string): void {
  if (!condition) throw new ConfigError(`startSimulator: ${message}`);
}

const MIDSTREAM_ERROR = "The request could not be completed: a guided-decoding grammar rejected the output (an error found while generating).";

/** A choice as sent: reasoning in its field (or in the content), finish reason as the profile reports it. */
interface Presented extends Omit<SimChoice, "finishReason"> {
  readonly finishReason: string | null;
  readonly reasoningField: Readonly<Record<string, string>>;
  readonly reasoningTokens: number;
}

function validate(body: unknown): SimRequest {
  if (!body || typeof body !== "object" || Array.isArray(body)) throw new HttpError(400, "The request body must be a JSON object.", "invalid_request_error");
  const b = body as Record<string, unknown>;
  if (typeof b.model !== "string" || b.model.length === 0) throw new HttpError(400, "you must provide a model parameter", "invalid_request_error", "model");
  if (!Array.isArray(b.messages) || b.messages.length === 0) {
    throw new HttpError(400, "'messages' must be a non-empty array.", "invalid_request_error", "messages");
  }
  for (const [i, m] of (b.messages as unknown[]).entries()) {
    const message = m as Record<string, unknown> | null;
    if (!message || typeof message.role !== "string" || !["system", "developer", "user", "assistant", "tool"].includes(message.role)) {
      throw new HttpError(400, `Invalid value for 'messages[${i}].role'.`, "invalid_request_error", `messages[${i}].role`);
    }
    if (message.content !== null && message.content !== undefined && typeof message.content !== "string" && !Array.isArray(message.content)) {
      throw new HttpError(400, `Invalid type for 'messages[${i}].content'.`, "invalid_request_error", `messages[${i}].content`);
    }
  }
  const n = b.n ?? 1;
  if (typeof n !== "number" || !Number.isInteger(n) || n < 1 || n > 128) throw new HttpError(400, "'n' must be an integer between 1 and 128.", "invalid_request_error", "n");
  const maxTokens = b.max_tokens ?? b.max_completion_tokens;
  if (maxTokens !== undefined && maxTokens !== null && (typeof maxTokens !== "number" || !Number.isInteger(maxTokens) || maxTokens < 1)) {
    throw new HttpError(400, "'max_tokens' must be a positive integer.", "invalid_request_error", "max_tokens");
  }
  if (b.temperature !== undefined && b.temperature !== null && (typeof b.temperature !== "number" || b.temperature < 0 || b.temperature > 2)) {
    throw new HttpError(400, "'temperature' must be a number between 0 and 2.", "invalid_request_error", "temperature");
  }
  const format = b.response_format as SimRequest["response_format"] | undefined;
  if (format !== undefined && format !== null) {
    if (typeof format !== "object" || !["text", "json_object", "json_schema"].includes(format.type)) {
      throw new HttpError(400, "Invalid 'response_format.type'.", "invalid_request_error", "response_format");
    }
    if (format.type === "json_schema" && (!format.json_schema || typeof format.json_schema.schema !== "object")) {
      throw new HttpError(400, "'response_format.json_schema.schema' is required.", "invalid_request_error", "response_format");
    }
  }
  return {
    model: b.model,
    messages: b.messages as ChatMessage[],
    n,
    temperature: b.temperature as number | undefined,
    top_p: b.top_p as number | undefined,
    max_tokens: (maxTokens ?? undefined) as number | undefined,
    seed: b.seed as number | undefined,
    stop: b.stop as SimRequest["stop"],
    response_format: format ?? undefined,
  };
}

/**
 * Starts an OpenAI-compatible chat-completions server on 127.0.0.1: deterministic answers (plausible prose,
 * numbered lists of instructions when asked for, JSON that satisfies a given schema), a latency model,
 * a concurrency cap with a queue, RPM/TPM limits with x-ratelimit-* headers, and seeded fault injection.
 * Faults vary between repeats of the same request (the k-th repeat rolls again), content does not.
 */
export async function startSimulator(options: SimulatorOptions = {}): Promise<Simulator> {
  const given = Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)) as SimulatorOptions;
  const o = { ...SIMULATOR_DEFAULTS, ...given };
  check(o.latencyMs >= 0 && o.ttftMs >= 0, "latencyMs and ttftMs must be >= 0");
  check(o.tokensPerS > 0, "tokensPerS must be > 0");
  check(o.maxConcurrency >= 1 && o.maxQueue >= 0, "maxConcurrency must be >= 1 and maxQueue >= 0");
  check(o.rpm === undefined || o.rpm > 0, "rpm must be > 0");
  check(o.tpm === undefined || o.tpm > 0, "tpm must be > 0");
  check(Number.isFinite(o.batchCompletionMs) && o.batchCompletionMs >= 0, `batchCompletionMs must be a number of ms >= 0, got ${o.batchCompletionMs}`);
  check(o.batchFailureRate >= 0 && o.batchFailureRate <= 1, `batchFailureRate must be in [0, 1], got ${o.batchFailureRate}`);
  check(o.batchExpireMs > 0, `batchExpireMs must be > 0 ms, got ${o.batchExpireMs}`);
  const faults = options.faults ?? {};
  for (const [kind, rate] of Object.entries(faults)) {
    check(([...TRANSPORT_FAULTS, ...CONTENT_FAULTS] as string[]).includes(kind), `unknown fault kind "${kind}"`);
    check(typeof rate === "number" && rate >= 0 && rate <= 1, `fault rate of "${kind}" must be in [0, 1]`);
  }
  const transportTotal = TRANSPORT_FAULTS.reduce((sum, kind) => sum + (faults[kind] ?? 0), 0);
  const contentTotal = CONTENT_FAULTS.reduce((sum, kind) => sum + (faults[kind] ?? 0), 0);
  check(transportTotal <= 1 && contentTotal <= 1, "transport fault rates and content fault rates must each sum to <= 1");

  const profile = simProfile(options.profile);
  // Load the tokenizer now (80-200 ms, once per process) rather than stall the first wave of requests.
  encoderFor(o.models[0]);
  const rpm = o.rpm ? new Bucket(o.rpm, o.burstMs) : undefined;
  const tpm = o.tpm ? new Bucket(o.tpm, o.burstMs) : undefined;
  const stats: SimulatorStats = {
    requests: 0,
    completed: 0,
    streamed: 0,
    rateLimited: 0,
    errors5xx: 0,
    resets: 0,
    clientErrors: 0,
    truncated: 0,
    refusals: 0,
    malformed: 0,
    empty: 0,
    active: 0,
    queued: 0,
    peakConcurrency: 0,
    peakQueued: 0,
    promptTokens: 0,
    completionTokens: 0,
    connections: 0,
    batchesCreated: 0,
    batchRequests: 0,
    batchCompleted: 0,
    batchFailed: 0,
    batchPromptTokens: 0,
    batchCompletionTokens: 0,
    filesUploaded: 0,
  };
  // How often each exact request was seen, so a retry rolls its faults again (bounded: cleared when large).
  const seen = new Map<string, number>();
  const waiting: Array<() => void> = [];
  const sockets = new Set<Socket>();
  let requestCounter = 0;
  /** A played outage: in force once `after` more requests came in. */
  let outage: { after: number; mode: "503" | "refuse"; ms?: number; retryAfterMs?: number; timer?: NodeJS.Timeout } | undefined;
  let listening = false;
  let up: () => Promise<void> = async () => {};
  const startOutage = () => {
    if (!outage) return;
    if (outage.ms !== undefined) {
      outage.timer = setTimeout(() => void up(), outage.ms);
      outage.timer.unref();
    }
    // New connections are refused; requests on connections kept alive are cut (see chatCompletion).
    if (outage.mode === "refuse" && listening) {
      listening = false;
      server.close();
      server.closeIdleConnections();
    }
  };

  const rateHeaders = (): Record<string, string> => {
    const headers: Record<string, string> = {};
    if (profile.rateHeaders === "per-second") {
      if (rpm) {
        headers["x-ratelimit-limit"] = String(rpm.limit / 60);
        headers["x-ratelimit-remaining"] = String(Math.max(0, Math.floor(rpm.refill() / 60)));
        headers["x-ratelimit-reset"] = String(Math.ceil(rpm.resetMs() / 1_000));
      }
      if (tpm) {
        headers["x-tokenlimit-limit"] = String(tpm.limit / 60);
        headers["x-tokenlimit-remaining"] = String(Math.max(0, Math.floor(tpm.refill() / 60)));
      }
      return headers;
    }
    if (rpm) {
      // Groq's request figures are per day (a day's worth of the per-minute limit here); Azure may send -1.
      const perDay = profile.rateHeaders === "per-day-requests" ? 1_440 : 1;
      headers["x-ratelimit-limit-requests"] = String(rpm.limit * perDay);
      headers["x-ratelimit-remaining-requests"] =
        profile.rateHeaders === "unknown-remaining" ? "-1" : String(Math.max(0, Math.floor(rpm.refill() * perDay)));
      headers["x-ratelimit-reset-requests"] = duration(rpm.resetMs());
    }
    if (tpm) {
      headers["x-ratelimit-limit-tokens"] = String(tpm.limit);
      headers["x-ratelimit-remaining-tokens"] = String(Math.max(0, Math.floor(tpm.refill())));
      headers["x-ratelimit-reset-tokens"] = duration(tpm.resetMs());
    }
    return headers;
  };

  const sendJson = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    const payload = JSON.stringify(body);
    if (res.destroyed) return;
    res.writeHead(status, {
      "content-type": "application/json",
      "content-length": Buffer.byteLength(payload),
      ...headers,
    });
    res.end(payload);
  };

  const sendError = (res: ServerResponse, error: HttpError, headers: Record<string, string> = {}) => {
    if (error.status === 429) stats.rateLimited++;
    else if (error.status >= 500) stats.errors5xx++;
    else stats.clientErrors++;
    sendJson(res, error.status, errorBody(error), headers);
  };

  const acquireSlot = (): Promise<void> | "full" | undefined => {
    if (stats.active < o.maxConcurrency) {
      stats.active++;
      if (stats.active > stats.peakConcurrency) stats.peakConcurrency = stats.active;
      return undefined;
    }
    if (waiting.length >= o.maxQueue) return "full";
    return new Promise<void>((resolve) => {
      waiting.push(resolve);
      stats.queued = waiting.length;
      if (stats.queued > stats.peakQueued) stats.peakQueued = stats.queued;
    });
  };

  const releaseSlot = () => {
    const next = waiting.shift();
    stats.queued = waiting.length;
    if (next) next();
    else stats.active--;
  };

  const readBody = (req: IncomingMessage): Promise<string> =>
    new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on("data", (chunk: Buffer) => {
        size += chunk.length;
        if (size > o.maxBodyBytes) {
          reject(new HttpError(413, "Request body too large.", "invalid_request_error"));
          req.destroy();
          return;
        }
        chunks.push(chunk);
      });
      req.on("end", () => resolve(chunks.length === 1 ? chunks[0]!.toString("utf8") : Buffer.concat(chunks).toString("utf8")));
      req.on("error", reject);
    });

  /** A composed answer as this profile's server would send it: its chain of thought and finish reason placed. */
  const present = (choice: SimChoice, model: string, cap: number | undefined): Presented => {
    const finishReason = choice.finishReason === "unfinished" ? profile.unfinished : choice.finishReason;
    const reasoning = options.reasoning ?? profile.reasoning(model);
    if (reasoning === "none" || choice.content === null) return { ...choice, finishReason, reasoningField: {}, reasoningTokens: 0 };
    const thought = chainOfThought(choice.content);
    const thoughtTokens = countTokens(thought, model);
    switch (reasoning) {
      case "hidden":
        // Billed, not shown; a cap smaller than the thinking leaves no answer at all.
        if (cap !== undefined && cap <= thoughtTokens) return { ...choice, content: "", finishReason: "length", tokens: 0, reasoningField: {}, reasoningTokens: cap };
        return { ...choice, finishReason, reasoningField: {}, reasoningTokens: thoughtTokens };
      case "think-tags":
        return { ...choice, content: `<think>\n${thought}\n</think>\n\n${choice.content}`, finishReason, reasoningField: {}, reasoningTokens: thoughtTokens };
      default:
        return { ...choice, finishReason, reasoningField: { [reasoning]: thought }, reasoningTokens: thoughtTokens };
    }
  };

  const rollTransport = (rng: Rng): TransportFault | undefined => {
    if (transportTotal === 0) return undefined;
    let x = rng.next();
    for (const kind of TRANSPORT_FAULTS) {
      x -= faults[kind] ?? 0;
      if (x < 0) return kind;
    }
    return undefined;
  };

  const rollContent = (rng: Rng): ContentFault | undefined => {
    if (contentTotal === 0) return undefined;
    let x = rng.next();
    for (const kind of CONTENT_FAULTS) {
      x -= faults[kind] ?? 0;
      if (x < 0) return kind;
    }
    return undefined;
  };

  /** A parsed chat request as this profile's server reads it; throws the HttpError it would answer. */
  const chatRequest = (parsed: unknown): SimRequest => {
    let request = validate(parsed);
    const body = parsed as Record<string, unknown>;
    const refused = profile.refuse(body);
    if (refused) throw new HttpError(refused.status, refused.message, refused.type, refused.param, refused.code);
    if (profile.strictModels && !o.models.includes(request.model)) {
      throw new HttpError(404, `The model \`${request.model}\` does not exist.`, "NotFoundError", "model", "model_not_found");
    }
    request = { ...request, n: profile.choices(request.n), max_tokens: profile.cap(body) };
    if (options.ignoreJsonSchema && request.response_format?.type === "json_schema") request = { ...request, response_format: undefined, formatIgnored: true };
    return request;
  };

  /** The prompt's tokens as billed; throws the 400 of a prompt beyond `contextTokens`. */
  const promptTokensOf = (request: SimRequest): number => {
    const counted = countMessageTokens(request.messages, request.model);
    const context = options.contextTokens;
    if (context !== undefined && counted + (request.max_tokens ?? 0) > context && !(profile.name === "ollama")) {
      const completion = request.max_tokens ?? 0;
      const message =
        profile.name === "vllm" || profile.name === "sglang"
          ? `This model's maximum context length is ${context} tokens. However, you requested ${counted + completion} tokens (${counted} in the messages, ${completion} in the completion). Please reduce the length of the messages or completion.`
          : `This model's maximum context length is ${context} tokens. However, your messages resulted in ${counted + completion} tokens. Please reduce the length of the messages.`;
      throw new HttpError(400, message, "invalid_request_error", "messages", "context_length_exceeded");
    }
    // Ollama keeps the end of a prompt longer than its context and says so only in usage.
    return context !== undefined && profile.name === "ollama" ? Math.min(counted, context) : counted;
  };

  const repeatKeyOf = (request: SimRequest, key: string, stream: boolean): string =>
    stableHash(`${key}\u0000${request.n}\u0000${stream}\u0000${request.max_tokens}\u0000${JSON.stringify(request.stop ?? null)}`, 32);

  const completionId = (repeatKey: string, occurrence: number): string => `chatcmpl-${stableHash(`${repeatKey}\u0000${occurrence}`, 24)}`;

  /** The choices and usage of an answer; `faultRng` has rolled the request's transport fault already. */
  const composeAnswer = (request: SimRequest, key: string, faultRng: Rng, promptTokens: number) => {
    const choices: Presented[] = [];
    let completionTokens = 0;
    let reasoningTokens = 0;
    for (let index = 0; index < request.n; index++) {
      const contentFault = rollContent(faultRng);
      const choice = present(composeChoice(request, key, index, o.seed, contentFault), request.model, request.max_tokens);
      choices.push(choice);
      // A server with its own tokenizer bills differently from tiktoken, the client's.
      completionTokens += profile.billing === "model" ? Math.ceil((choice.content ?? "").length / 3) : choice.tokens + choice.reasoningTokens;
      reasoningTokens += choice.reasoningTokens;
    }
    const usage = {
      prompt_tokens: promptTokens,
      completion_tokens: completionTokens,
      total_tokens: promptTokens + completionTokens,
      ...(reasoningTokens > 0 ? { completion_tokens_details: { reasoning_tokens: reasoningTokens } } : {}),
    };
    return { choices, completionTokens, reasoningTokens, usage };
  };

  const completionBody = (id: string, created: number, model: string, choices: readonly Presented[], usage: unknown) => ({
    id,
    object: "chat.completion",
    created,
    model,
    system_fingerprint: "fp_rxsynth_sim",
    choices: choices.map((choice, index) => ({
      index,
      message: { role: "assistant", content: choice.content, refusal: choice.refusal, annotations: [], ...choice.reasoningField },
      logprobs: null,
      finish_reason: choice.finishReason,
    })),
    usage,
  });

  const errorBody = (error: HttpError) => {
    const fields = { message: error.message, type: error.type, param: error.param, code: error.code };
    return profile.errorShape === "flat" ? { object: "error", ...fields, code: error.status } : { error: fields };
  };

  /**
   * What POST /v1/chat/completions answers for `body` the first time it is sent, less its transport fault:
   * a batch's request gets the very answer (content faults included) the online endpoint gives.
   */
  const answerOnce = (body: unknown): ChatAnswer => {
    try {
      const request = chatRequest(body);
      const promptTokens = promptTokensOf(request);
      const key = contentKey(request);
      const repeatKey = repeatKeyOf(request, key, false);
      const faultRng = new Rng(`${o.seed}\u0000fault\u0000${repeatKey}\u00000`);
      rollTransport(faultRng);
      const { choices, completionTokens, reasoningTokens, usage } = composeAnswer(request, key, faultRng, promptTokens);
      const created = Math.floor(Date.now() / 1_000);
      return { status: 200, body: completionBody(completionId(repeatKey, 0), created, request.model, choices, usage), promptTokens, completionTokens, reasoningTokens };
    } catch (error) {
      const http = error instanceof HttpError ? error : new HttpError(500, `simulator error: ${String(error)}`, "server_error");
      return { status: http.status, body: errorBody(http), promptTokens: 0, completionTokens: 0, reasoningTokens: 0 };
    }
  };

  const files = new FileStore(o.seed);
  const batches = new BatchService(
    { completionMs: o.batchCompletionMs, expireMs: o.batchExpireMs, failureRate: o.batchFailureRate, seed: o.seed },
    files,
    answerOnce,
    stats,
  );

  /** The Files and Batches API, behind the same key check and outage as chat requests (an outage does not count them). */
  const batchApi = async (req: IncomingMessage, res: ServerResponse) => {
    if (outage?.mode === "refuse" && outage.after === 0) return void req.socket.destroy();
    if (outage && outage.after === 0) throw new HttpError(503, "The service is unavailable (an outage played by the simulator).", "server_error");
    if (o.apiKey !== undefined) {
      const auth = req.headers.authorization ?? "";
      const given = auth.startsWith("Bearer ") ? auth.slice(7) : auth;
      if (given !== o.apiKey) throw new HttpError(401, "Incorrect API key provided. Check the key you configured.", "invalid_request_error", null, "invalid_api_key");
    }
    const reply = await serveBatchApi(req, files, batches, () => stats.filesUploaded++);
    const requestId = { "x-request-id": `req_${(++requestCounter).toString(16).padStart(8, "0")}` };
    if ("json" in reply) return sendJson(res, 200, reply.json, requestId);
    if (res.destroyed) return;
    res.writeHead(200, { "content-type": reply.contentType, "content-length": reply.bytes.length, ...requestId });
    res.end(reply.bytes);
  };

  const chatCompletion = async (req: IncomingMessage, res: ServerResponse) => {
    stats.requests++;
    const requestId = `req_${(++requestCounter).toString(16).padStart(8, "0")}`;
    if (outage && outage.after > 0) {
      if (--outage.after === 0) startOutage();
    } else if (outage?.mode === "refuse") {
      req.socket.destroy();
      return;
    } else if (outage) {
      const retry: Record<string, string> = outage.retryAfterMs === undefined ? {} : { "retry-after-ms": String(outage.retryAfterMs) };
      sendError(res, new HttpError(503, "The service is unavailable (an outage played by the simulator).", "server_error"), { "x-request-id": requestId, ...retry });
      return;
    }
    const startedAt = performance.now();
    let closed = false;
    res.on("close", () => {
      closed = true;
    });

    if (o.apiKey !== undefined) {
      const auth = req.headers.authorization ?? "";
      const given = auth.startsWith("Bearer ") ? auth.slice(7) : auth;
      if (given !== o.apiKey) {
        // Echoes the key it was given, as careless servers do: the client must scrub it.
        sendError(res, new HttpError(401, `Incorrect API key provided: ${given || "(none)"}. Check the key you configured.`, "invalid_request_error", null, "invalid_api_key"), { "x-request-id": requestId });
        return;
      }
    }

    let request: SimRequest;
    let stream = false;
    let includeUsage = false;
    try {
      const raw = await readBody(req);
      let parsed: unknown;
      try {
        parsed = JSON.parse(raw);
      } catch {
        throw new HttpError(400, "We could not parse the JSON body of your request.", "invalid_request_error");
      }
      request = chatRequest(parsed);
      options.onChatRequest?.(parsed as Record<string, unknown>);
      const p = parsed as { stream?: unknown; stream_options?: { include_usage?: unknown } };
      stream = p.stream === true;
      includeUsage = stream && p.stream_options?.include_usage === true;
    } catch (error) {
      sendError(res, error instanceof HttpError ? error : new HttpError(400, String(error), "invalid_request_error"), { "x-request-id": requestId });
      return;
    }

    let promptTokens: number;
    try {
      promptTokens = promptTokensOf(request);
    } catch (error) {
      sendError(res, error as HttpError, { "x-request-id": requestId });
      return;
    }
    const key = contentKey(request);
    const repeatKey = repeatKeyOf(request, key, stream);
    const occurrence = seen.get(repeatKey) ?? 0;
    if (seen.size > 1_000_000) seen.clear();
    seen.set(repeatKey, occurrence + 1);

    // Admission: rate limits first, as hosted APIs check them before doing any work.
    const admissionTokens = promptTokens + (request.max_tokens !== undefined ? request.n * request.max_tokens : 0);
    const baseHeaders = (): Record<string, string> => ({ "x-request-id": requestId, ...rateHeaders() });
    if (rpm || tpm) {
      const rpmOk = !rpm || rpm.fits(1);
      const tpmOk = !tpm || tpm.fits(admissionTokens);
      if (!rpmOk || !tpmOk) {
        const waitMs = Math.max(rpmOk ? 0 : rpm!.waitMs(1), tpmOk ? 0 : tpm!.waitMs(admissionTokens));
        const which = rpmOk ? "tokens" : "requests";
        const limit = rpmOk ? tpm!.limit : rpm!.limit;
        sendError(
          res,
          new HttpError(429, `Rate limit reached for ${request.model} on ${which} per min (RPM/TPM): Limit ${limit}. Please try again in ${duration(waitMs)}.`, which, null, "rate_limit_exceeded"),
          { ...baseHeaders(), "retry-after-ms": String(Math.ceil(waitMs)), "retry-after": String(Math.max(1, Math.ceil(waitMs / 1_000))) },
        );
        return;
      }
      rpm?.take(1);
      tpm?.take(admissionTokens);
    }

    const faultRng = new Rng(`${o.seed}\u0000fault\u0000${repeatKey}\u0000${occurrence}`);
    const transport = rollTransport(faultRng);
    if (transport === "429") {
      const ms = o.faultRetryAfterMs;
      sendError(res, new HttpError(429, "Rate limit reached (injected by the simulator). Please try again later.", "requests", null, "rate_limit_exceeded"), {
        ...baseHeaders(),
        "retry-after-ms": String(ms),
        "retry-after": String(Math.max(1, Math.ceil(ms / 1_000))),
      });
      return;
    }
    if (transport === "500") {
      sendError(res, new HttpError(500, "The server had an error while processing your request. Sorry about that!", "server_error"), baseHeaders());
      return;
    }
    if (transport === "midstream" && !stream) {
      sendError(res, new HttpError(400, MIDSTREAM_ERROR, "BadRequestError"), baseHeaders());
      return;
    }
    if (transport === "503") {
      sendError(res, new HttpError(503, "The engine is currently overloaded, please try again later.", "server_error"), baseHeaders());
      return;
    }

    const slot = acquireSlot();
    if (slot === "full") {
      sendError(res, new HttpError(429, "The server is at capacity and its queue is full. Please try again later.", "overloaded", null, "server_overloaded"), {
        ...baseHeaders(),
        "retry-after-ms": "100",
        "retry-after": "1",
      });
      return;
    }
    if (slot) await slot;
    // A request that waited for a slot is served from the moment it took one: its service time (latency, time to
    // first token, generation) starts then, as on a real server, so a capped simulator's capacity is what its cap says.
    const servedFrom = slot ? performance.now() : startedAt;
    let released = false;
    const release = () => {
      if (!released) {
        released = true;
        releaseSlot();
      }
    };
    res.on("close", release);
    if (closed) {
      release();
      return;
    }

    const { choices, completionTokens, usage } = composeAnswer(request, key, faultRng, promptTokens);
    if (tpm && request.max_tokens === undefined) tpm.take(completionTokens);

    const created = Math.floor(Date.now() / 1_000);
    const id = completionId(repeatKey, occurrence);
    const firstByteMs = o.latencyMs + o.ttftMs;
    const perChoiceTokens = Math.max(0, ...choices.map((c) => c.tokens));
    const generationMs = Number.isFinite(o.tokensPerS) ? (perChoiceTokens / o.tokensPerS) * 1_000 : 0;
    const headers = {
      ...baseHeaders(),
      "openai-processing-ms": String(Math.round(firstByteMs + generationMs)),
      "openai-model": request.model,
    };
    const reset = transport === "reset";
    const count = () => {
      stats.completed++;
      stats.promptTokens += promptTokens;
      stats.completionTokens += completionTokens;
      for (const choice of choices) {
        if (choice.finishReason === "length") stats.truncated++;
        if (choice.fault === "refusal") stats.refusals++;
        if (choice.fault === "malformed") stats.malformed++;
        if (choice.fault === "empty") stats.empty++;
      }
    };
    const destroy = () => {
      stats.resets++;
      res.socket?.destroy();
      release();
    };

    const elapsed = performance.now() - servedFrom;
    const wait = (ms: number) => (ms > 0 ? new Promise<void>((resolve) => setTimeout(resolve, ms)) : Promise.resolve());

    if (!stream) {
      await wait(firstByteMs + generationMs - elapsed);
      if (closed) return release();
      const payload = JSON.stringify(completionBody(id, created, request.model, choices, usage));
      const bytes = Buffer.byteLength(payload);
      res.writeHead(200, { "content-type": "application/json", "content-length": bytes, ...headers });
      if (reset) {
        res.write(Buffer.from(payload).subarray(0, Math.max(1, Math.floor(bytes / 2))), () => destroy());
        return;
      }
      res.end(payload);
      count();
      release();
      return;
    }

    await wait(firstByteMs - elapsed);
    if (closed) return release();
    res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", connection: "keep-alive", ...headers });
    const event = (choicesPart: unknown[], extra: Record<string, unknown> = {}) =>
      `data: ${JSON.stringify({ id, object: "chat.completion.chunk", created, model: request.model, system_fingerprint: "fp_rxsynth_sim", choices: choicesPart, ...extra })}\n\n`;
    // Text is streamed in word-sized pieces, round-robin over choices, paced by tokensPerS.
    const pieces = choices.map((choice) => (choice.content ?? "").match(/\s*\S+|\s+$/g) ?? []);
    const events: string[] = [];
    events.push(event(choices.map((_, index) => ({ index, delta: { role: "assistant", content: "", refusal: null }, logprobs: null, finish_reason: null }))));
    const rounds = Math.max(0, ...pieces.map((p) => p.length));
    const bodyEvents: string[] = [];
    choices.forEach((choice, index) => {
      for (const [field, thought] of Object.entries(choice.reasoningField)) {
        bodyEvents.push(event([{ index, delta: { [field]: thought }, logprobs: null, finish_reason: null }]));
      }
    });
    for (let r = 0; r < rounds; r++) {
      const part: unknown[] = [];
      pieces.forEach((list, index) => {
        if (r < list.length) part.push({ index, delta: { content: list[r] }, logprobs: null, finish_reason: null });
      });
      bodyEvents.push(event(part));
    }
    choices.forEach((choice, index) => {
      if (choice.refusal) bodyEvents.push(event([{ index, delta: { refusal: choice.refusal }, logprobs: null, finish_reason: null }]));
    });
    const tail: string[] = [event(choices.map((choice, index) => ({ index, delta: {}, logprobs: null, finish_reason: choice.finishReason })))];
    if (includeUsage) tail.push(event([], { usage }));
    tail.push("data: [DONE]\n\n");

    if (reset) {
      const all = [...events, ...bodyEvents];
      res.write(all.slice(0, Math.max(1, Math.floor(all.length / 2))).join(""), () => destroy());
      return;
    }
    if (transport === "midstream") {
      // vLLM reports an error found while generating as one more event, with the status in `code`.
      const all = [...events, ...bodyEvents];
      const error = { error: { object: "error", message: MIDSTREAM_ERROR, type: "BadRequestError", param: null, code: 400 } };
      stats.clientErrors++;
      res.end(`${all.slice(0, Math.max(1, Math.floor(all.length / 2))).join("")}data: ${JSON.stringify(error)}\n\n`);
      release();
      return;
    }
    if (generationMs <= 0 || bodyEvents.length === 0) {
      res.end([...events, ...bodyEvents, ...tail].join(""));
    } else {
      res.write(events.join(""));
      const perEventMs = generationMs / bodyEvents.length;
      const tickMs = Math.max(10, perEventMs);
      const streamStart = performance.now();
      let sent = 0;
      await new Promise<void>((resolve) => {
        const timer = setInterval(() => {
          if (closed) {
            clearInterval(timer);
            resolve();
            return;
          }
          const due = Math.min(bodyEvents.length, Math.floor((performance.now() - streamStart) / perEventMs));
          if (due > sent) {
            res.write(bodyEvents.slice(sent, due).join(""));
            sent = due;
          }
          if (sent >= bodyEvents.length) {
            clearInterval(timer);
            resolve();
          }
        }, tickMs);
      });
      if (closed) return release();
      res.end(tail.join(""));
    }
    stats.streamed++;
    count();
    release();
  };

  const models = () => ({
    object: "list",
    data: o.models.map((id) => ({ id, object: "model", created: 1_700_000_000, owned_by: profile.ownedBy ?? "rxsynth-sim" })),
  });

  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0]!.replace(/\/+$/, "") || "/";
    if (req.method === "POST" && (path === "/v1/chat/completions" || path === "/chat/completions")) {
      chatCompletion(req, res).catch((error: unknown) => {
        if (!res.headersSent) sendError(res, new HttpError(500, `simulator error: ${String(error)}`, "server_error"));
        else res.destroy();
      });
      return;
    }
    if (isBatchApiPath(path)) {
      batchApi(req, res).catch((error: unknown) => {
        if (res.headersSent) return void res.destroy();
        sendError(res, error instanceof HttpError ? error : new HttpError(500, `simulator error: ${String(error)}`, "server_error"));
      });
      return;
    }
    if (req.method === "GET" && (path === "/v1/models" || path === "/models")) return sendJson(res, 200, models());
    const model = /^\/(?:v1\/)?models\/(.+)$/.exec(path);
    if (req.method === "GET" && model) {
      const id = decodeURIComponent(model[1]!);
      return sendJson(res, 200, { id, object: "model", created: 1_700_000_000, owned_by: profile.ownedBy ?? "rxsynth-sim" });
    }
    if (req.method === "GET" && (path === "/stats" || path === "/v1/stats")) return sendJson(res, 200, stats);
    if (req.method === "GET" && path === "/health") return sendJson(res, 200, { ok: true });
    sendError(res, new HttpError(404, `Unknown request URL: ${req.method} ${path}.`, "invalid_request_error", null, "unknown_url"));
  });
  server.keepAliveTimeout = 30_000;
  server.headersTimeout = 35_000;
  server.requestTimeout = 0;
  server.on("connection", (socket) => {
    sockets.add(socket);
    stats.connections++;
    socket.setNoDelay(true);
    socket.on("close", () => sockets.delete(socket));
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(o.port ?? 0, o.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  listening = true;
  const closeServer = () =>
    new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy();
      if (!listening) return resolve();
      listening = false;
      server.close(() => resolve());
    });
  up = async () => {
    if (outage?.timer) clearTimeout(outage.timer);
    outage = undefined;
    if (listening) return;
    listening = true;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, o.host, () => {
        server.off("error", reject);
        resolve();
      });
    });
  };
  return {
    url: `http://${o.host}:${port}/v1`,
    port,
    stats: () => ({ ...stats }),
    async down(down: DownOptions = {}) {
      if (outage?.timer) clearTimeout(outage.timer);
      outage = { after: down.afterRequests ?? 0, mode: down.mode ?? "503", ms: down.ms, retryAfterMs: down.retryAfterMs };
      if (outage.after === 0) startOutage();
    },
    up: () => up(),
    close: async () => {
      if (outage?.timer) clearTimeout(outage.timer);
      outage = undefined;
      await closeServer();
    },
  };
}
