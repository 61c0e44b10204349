import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { CacheError, ConfigError, EndpointError, LlmError, errorMessage } from "../../errors.ts";
import { stableHash } from "../../hash.ts";
import { ResponseCache, cacheEntries, choiceKey, defaultCacheDir, fromCache, requestBody, type CachedChoice, type ResponseStore } from "../cache.ts";
import { endpointFamily, familyCapabilities, shapeBody, type Capabilities, type EndpointFamily } from "../capabilities.ts";
import type { ChatCallOptions, Llm } from "../client.ts";
import { BATCH_PRICE_FACTOR, BUILTIN_PRICES, SIMULATOR_MODEL, lookupPrice, type ModelPrice } from "../prices.ts";
import { scrubSecrets, sleep } from "../retry.ts";
import { countMessageTokens } from "../tokens.ts";
import type { ChatRequest, ChatResult, LlmStats, LlmStatsDelta } from "../types.ts";
import { BatchApi, TERMINAL_STATUSES, type BatchObject } from "./api.ts";
import { resultOf } from "./answers.ts";
import { BatchBoard } from "./board.ts";
import { Grouper } from "./grouper.ts";
import { BatchJournal, replayJournal, type IntentLine, type IntentState } from "./journal.ts";
import { inputLine, type LineOutcome } from "./lines.ts";
import {
  batchFaultsFromEnvironment,
  download,
  recordDone,
  recover,
  storeAnswers,
  submit,
  type BatchFaultHook,
  type ProtocolParts,
} from "./protocol.ts";

export interface BatchLlmOptions {
  readonly model: string;
  /** Default: OPENAI_BASE_URL, else OpenAI. The server must serve /v1/files and /v1/batches. */
  readonly baseURL?: string;
  /** Default: OPENAI_API_KEY. Never logged or put in errors. */
  readonly apiKey?: string;
  /**
   * The run's state folder: the journal (`batches.jsonl`) lives here, and, when the run has no response
   * cache, the answers the batches brought (`batch-answers/`), so a resumed run never pays for one twice.
   */
  readonly stateDir: string;
  /** As createLlm's: a folder, true for the user's cache folder, or a store of your own. Shared with the online client. */
  readonly cache?: string | boolean | ResponseStore;
  /** Who answers, as the cache key names it (as createLlm's): the same key online and in batch, so their answers are shared. Default: the base URL. */
  readonly endpointId?: string;
  /** Sent as the request seed unless a request sets its own (as createLlm's). */
  readonly seed?: number;
  /** USD per million tokens by model name, over the built-in table; the batch price is `batchPriceFactor` of it. */
  readonly prices?: Readonly<Record<string, ModelPrice>>;
  /** Share of the online price a batch answer costs. Default BATCH_PRICE_FACTOR (0.5, OpenAI's Batch API discount). */
  readonly batchPriceFactor?: number;
  /** The simulator answers: nothing costs, tokens are counted in `simulatedTokens`. */
  readonly simulator?: boolean;
  /** Most requests in one batch. Default 1000 (OpenAI allows 50 000). */
  readonly maxBatchRequests?: number;
  /** Most tokens (prompt + max_tokens) in one batch. Default: no limit but `maxEnqueuedTokens`. */
  readonly maxBatchTokens?: number;
  /**
   * The provider's batch queue limit for the model: tokens (prompt + max_tokens) of requests in batches not
   * yet ended. A group waits until it fits. Default: no limit (set it to your tier's "enqueued tokens").
   */
  readonly maxEnqueuedTokens?: number;
  /** A group is submitted this long after the last request joined it. Default 2000 ms. */
  readonly lingerMs?: number;
  /** ...or this long after its first request, whatever keeps arriving. Default 30 000 ms. */
  readonly maxWaitMs?: number;
  /** Wait between polls of the batches in flight. Default 30 000 ms. */
  readonly pollMs?: number;
  /** Batches a request may go through without an answer (expired, failed) before it fails. Default 3. */
  readonly maxResubmits?: number;
  /** How long polls may fail in a row before the waiting calls fail with an EndpointError. Default 600 s. */
  readonly outageSeconds?: number;
  /** Requests the operators may have waiting at once (their concurrency); the run's budget bounds it too. Default 100 000. */
  readonly concurrency?: number;
  readonly timeoutMs?: number;
  readonly headers?: Readonly<Record<string, string>>;
  /** As createLlm's: how request bodies are shaped (reasoning models' max_completion_tokens, ...). Default: what the base URL names. */
  readonly family?: EndpointFamily;
  readonly supportsJsonSchema?: boolean;
  /** Completion tokens assumed per choice for a request with no max_tokens, in the token limits. Default 256. */
  readonly completionEstimate?: number;
  /** The run's batch figures, for the progress view. */
  readonly board?: BatchBoard;
  /** Called after each protocol step (tests crash here); default RXSYNTH_BATCH_FAULT. */
  readonly fault?: BatchFaultHook;
  readonly log?: (message: string) => void;
}

export const BATCH_DEFAULTS = {
  maxBatchRequests: 1000,
  lingerMs: 2_000,
  maxWaitMs: 30_000,
  pollMs: 30_000,
  maxResubmits: 3,
  outageSeconds: 600,
  concurrency: 100_000,
  timeoutMs: 120_000,
  completionEstimate: 256,
  journalFile: "batches.jsonl",
  answersFolder: "batch-answers",
} as const;

/** A batch client: an Llm whose calls are answered through the Batch API, with the stats of what it did. */
export interface BatchLlm extends Llm {
  readonly board: BatchBoard;
  /** Resolves once the journal's batches are found again (the first call waits for it too). */
  readonly ready: Promise<void>;
}

/** One request with callers waiting for it. */
interface Waiter {
  readonly id: string;
  readonly model: string;
  readonly line: string;
  readonly keys: readonly string[];
  readonly tokens: number;
  readonly n: number;
  readonly promise: Promise<ChatResult>;
  resolve(result: ChatResult): void;
  reject(error: unknown): void;
  meter: ((delta: LlmStatsDelta) => void) | undefined;
  callers: number;
  state: "pending" | "submitted";
  /** Batches it went through; the first caller's result says so. */
  batches: number;
}

/** A batch not yet ended, with what its lines are. */
interface Group {
  readonly intent: IntentState;
  readonly tokens: number;
  batchId: string | undefined;
}

function positive(name: string, value: number | undefined, integer = false): void {
  if (value === undefined) return;
  if (!(value > 0) || (integer && !Number.isInteger(value))) {
    throw new ConfigError(`createBatchLlm: ${name} must be a positive ${integer ? "integer" : "number"}, got ${value}`);
  }
}

function openStore(cache: BatchLlmOptions["cache"], stateDir: string): { store: ResponseStore; owned: boolean } {
  if (typeof cache === "object") return { store: cache, owned: false };
  const path = cache === true ? defaultCacheDir() : typeof cache === "string" ? cache : false;
  // No cache: the folder keeps its own answers, so a resume never pays for an answer it already collected.
  return { store: ResponseCache.open(path || join(stateDir, BATCH_DEFAULTS.answersFolder)), owned: true };
}

/**
 * An Llm whose calls go through the provider's Batch API at the batch price: each call is a line of a
 * batch file (custom_id: a hash of the request, so a resumed run's identical call finds its line again);
 * lines are grouped into a batch when the group is full or `lingerMs` passes with no new call; each call
 * resolves when its batch's output is collected. Every step is journaled before the next (protocol.ts),
 * so a crash never submits a batch twice and a resumed run collects what finished while it was down.
 * Answers go to the same response cache as the online client's. The run's budget bounds the calls
 * waiting at once: give it several batches' worth (`rxsynth run --batch --budget 5000`).
 */
export function createBatchLlm(options: BatchLlmOptions): BatchLlm {
  if (!options.model) throw new ConfigError("createBatchLlm: set `model` (the model name the endpoint serves)");
  if (!options.stateDir) throw new ConfigError("createBatchLlm: set `stateDir` (the run folder's state/, where the batch journal lives)");
  for (const name of ["maxBatchRequests", "maxResubmits", "concurrency"] as const) positive(name, options[name], true);
  for (const name of ["maxBatchTokens", "maxEnqueuedTokens", "lingerMs", "maxWaitMs", "pollMs", "timeoutMs"] as const) positive(name, options[name]);
  const factor = options.batchPriceFactor ?? BATCH_PRICE_FACTOR;
  if (!(factor >= 0 && factor <= 1)) throw new ConfigError(`createBatchLlm: batchPriceFactor must be between 0 and 1, got ${factor}`);

  const model = options.model;
  const baseURL = options.baseURL ?? process.env.OPENAI_BASE_URL ?? "https://api.openai.com/v1";
  const apiKey = options.apiKey ?? process.env.OPENAI_API_KEY ?? "rxsynth-no-key";
  const scrub = (text: string) => scrubSecrets(text, [apiKey]);
  const log = (line: string) => options.log?.(scrub(line));
  const endpointId = options.endpointId ?? baseURL.replace(/\/+$/, "");
  const maxBatchRequests = options.maxBatchRequests ?? BATCH_DEFAULTS.maxBatchRequests;
  const maxBatchTokens = options.maxBatchTokens ?? Infinity;
  const maxEnqueued = options.maxEnqueuedTokens ?? Infinity;
  const lingerMs = options.lingerMs ?? BATCH_DEFAULTS.lingerMs;
  const maxWaitMs = options.maxWaitMs ?? BATCH_DEFAULTS.maxWaitMs;
  const pollMs = options.pollMs ?? BATCH_DEFAULTS.pollMs;
  const maxResubmits = options.maxResubmits ?? BATCH_DEFAULTS.maxResubmits;
  const outageMs = (options.outageSeconds ?? BATCH_DEFAULTS.outageSeconds) * 1000;
  const concurrency = options.concurrency ?? BATCH_DEFAULTS.concurrency;
  const completionEstimate = options.completionEstimate ?? BATCH_DEFAULTS.completionEstimate;
  const family = options.family ?? endpointFamily(baseURL);
  const capabilitiesOf = (name: string): Capabilities => ({
    ...familyCapabilities(family, name),
    ...(options.supportsJsonSchema === false ? { jsonSchema: false } : {}),
  });
  const board = options.board ?? new BatchBoard();
  const prices = { ...BUILTIN_PRICES, ...options.prices };

  const stop = new AbortController();
  const journal = new BatchJournal(join(options.stateDir, BATCH_DEFAULTS.journalFile));
  const opened = openStore(options.cache, options.stateDir);
  const store = opened.store;
  const api = new BatchApi({ baseURL, apiKey, timeoutMs: options.timeoutMs ?? BATCH_DEFAULTS.timeoutMs, headers: options.headers });
  const parts: ProtocolParts = {
    journal,
    api,
    store,
    fault: options.fault ?? batchFaultsFromEnvironment() ?? (() => {}),
    log,
    retryMs: Math.min(pollMs, 5_000),
    outageMs,
    signal: stop.signal,
  };

  const totals: { -readonly [K in keyof LlmStats]: number } = {
    requests: 0,
    retries: 0,
    cacheHits: 0,
    coalesced: 0,
    promptTokens: 0,
    completionTokens: 0,
    costUsd: 0,
    unpricedTokens: 0,
    simulatedTokens: 0,
    rateLimited: 0,
    failures: 0,
  };
  const count = (delta: LlmStatsDelta, meter?: (delta: LlmStatsDelta) => void) => {
    for (const [key, value] of Object.entries(delta) as Array<[keyof LlmStatsDelta, number]>) if (key !== "latencySeconds") totals[key] += value;
    meter?.(delta);
  };

  /** The batch price of one answer, or where its tokens are counted when it has none. */
  const costOf = (modelName: string, prompt: number, cached: number, completion: number): LlmStatsDelta => {
    const tokens = prompt + completion;
    if (options.simulator || modelName === SIMULATOR_MODEL) return { simulatedTokens: tokens };
    const price = lookupPrice(modelName, prices) ?? lookupPrice(model, prices);
    if (!price) return { unpricedTokens: tokens };
    const hit = Math.min(prompt, cached);
    const usd = ((prompt - hit) * price.input + hit * (price.cachedInput ?? price.input) + completion * price.output) / 1_000_000;
    return { costUsd: usd * factor };
  };

  /** Calls waiting, by custom_id. */
  const waiters = new Map<string, Waiter>();
  /** Batches not yet ended, by journal key; and which of them holds each request. */
  const groups = new Map<string, Group>();
  const inGroup = new Map<string, string>();
  /** Batches each request went through without an answer (from the journal, then as they end). */
  let attempts = new Map<string, number>();
  let closed = false;
  let polling: Promise<void> | undefined;
  let failingSince: number | undefined;

  const enqueuedTokens = () => {
    let sum = 0;
    for (const group of groups.values()) sum += group.tokens;
    return sum;
  };

  /** Waiting to join a batch, in arrival order. */
  const queue: Grouper<Waiter> = new Grouper<Waiter>({
    maxRequests: maxBatchRequests,
    maxTokens: maxBatchTokens,
    maxEnqueued,
    lingerMs,
    maxWaitMs,
    enqueued: () => ({ tokens: enqueuedTokens(), batches: groups.size }),
    submit: (group) => submitGroup(group),
    onError: (error) => log(`llm batch: ${errorMessage(error)}`),
  });

  const track = (intent: IntentState, tokens: number) => {
    groups.set(intent.key, { intent, tokens, batchId: intent.batchId });
    for (const line of intent.lines) inGroup.set(line.id, intent.key);
  };


  const submitGroup = async (group: readonly Waiter[]) => {
    const key = `rxb_${randomUUID()}`;
    const lines: IntentLine[] = group.map((waiter) => ({ id: waiter.id, keys: waiter.keys, tokens: waiter.tokens }));
    const tokens = lines.reduce((sum, line) => sum + line.tokens, 0);
    for (const waiter of group) {
      waiter.state = "submitted";
      count(waiter.batches > 0 ? { requests: 1, retries: 1 } : { requests: 1 }, waiter.meter);
      waiter.batches++;
    }
    const intent: IntentState = { key, at: Date.now(), lines, state: "open" };
    track(intent, tokens);
    let batch: BatchObject;
    try {
      batch = await submit(parts, key, lines, `${group.map((waiter) => waiter.line).join("\n")}\n`);
    } catch (error) {
      groups.delete(key);
      for (const line of lines) inGroup.delete(line.id);
      if (stop.signal.aborted) return;
      const status = (error as { status?: number }).status;
      // Refused outright, the batch does not exist; otherwise it may, and only a resume's lookup can tell.
      const refused = typeof status === "number" && status >= 400 && status < 500 && status !== 408 && status !== 409 && status !== 429;
      if (refused) await journal.append({ type: "abandoned", key }).catch(() => undefined);
      const failure = new EndpointError(
        refused
          ? scrub(`${model} at ${baseURL}: the Batch API refused a batch (${errorMessage(error)}): check that the endpoint serves /v1/files and /v1/batches for this model, or run without --batch`)
          : scrub(`${model} at ${baseURL}: the Batch API did not answer (${errorMessage(error)}): rerun the same command to resume; a batch it created meanwhile is found by its journal key`),
        { status, attempt: 1, retryable: !refused },
        { cause: error },
      );
      for (const waiter of group) settle(waiter, () => waiter.reject(failure), { failures: 1 });
      return;
    }
    groups.get(key)!.batchId = batch.id;
    board.submitted++;
    board.requestsTotal += lines.length;
    log(`llm batch: submitted ${batch.id} (${lines.length} request${lines.length === 1 ? "" : "s"})`);
    ensurePolling();
  };

  const settle = (waiter: Waiter, done: () => void, delta?: LlmStatsDelta) => {
    if (waiters.get(waiter.id) === waiter) waiters.delete(waiter.id);
    if (delta) count(delta, waiter.meter);
    done();
  };

  const ensurePolling = () => {
    if (polling || closed) return;
    polling = (async () => {
      // After `polling` is set, so the `finally` below cannot run before it and leave it set for good.
      await null;
      try {
        while (!closed && [...groups.values()].some((group) => group.batchId !== undefined)) {
          for (const group of [...groups.values()]) {
            if (closed || group.batchId === undefined) continue;
            let batch: BatchObject;
            try {
              batch = await api.retrieve(group.batchId);
              failingSince = undefined;
            } catch (error) {
              if (closed) return;
              if ((error as { status?: unknown }).status === 404) {
                // Not on this server (another key or project, a restarted server): nothing will come of it.
                log(`llm batch: ${group.batchId} is not on ${baseURL} (another API key or project, or a restarted server): its requests go again`);
                await collect(group, { id: group.batchId, status: "lost" } as unknown as BatchObject);
                continue;
              }
              failingSince ??= Date.now();
              log(`llm batch: polling ${group.batchId} failed (${errorMessage(error)})`);
              if (Date.now() - failingSince > outageMs) failEveryone(error);
              continue;
            }
            if (TERMINAL_STATUSES.has(batch.status)) await collect(group, batch);
          }
          if ([...groups.values()].some((group) => group.batchId !== undefined)) await sleep(pollMs, stop.signal);
        }
      } catch (error) {
        if (!closed) failEveryone(error);
      } finally {
        polling = undefined;
      }
    })();
  };

  /** The endpoint stopped answering polls, or collecting failed (the cache): every waiting call fails, the run stops and resumes later. */
  const failEveryone = (error: unknown) => {
    const failure =
      error instanceof EndpointError || (error as { tag?: string }).tag === "CacheError"
        ? error
        : new EndpointError(scrub(`${baseURL}: the Batch API did not answer for ${Math.round(outageMs / 1000)} s (${errorMessage(error)}): rerun the same command to resume; submitted batches are collected then`), { attempt: 1, retryable: true }, { cause: error });
    for (const waiter of [...waiters.values()]) settle(waiter, () => waiter.reject(failure), { failures: 1 });
  };

  /** Steps 6-9 for an ended batch. */
  const collect = async (group: Group, batch: BatchObject) => {
    const { intent } = group;
    const outcomes = await download(parts, batch, intent.lines);
    const now = Date.now();
    const answers = new Map<string, ChatResult & { cost: LlmStatsDelta }>();
    const entries: Array<[string, CachedChoice]> = [];
    for (const line of intent.lines) {
      const outcome = outcomes.get(line.id);
      if (outcome?.kind !== "answer") continue;
      const read = resultOf(outcome.body, model, outcome.requestId, capabilitiesOf(outcome.body.model ?? model));
      const cost = costOf(read.model, read.usage.promptTokens, read.cachedPromptTokens, read.usage.completionTokens);
      const { cachedPromptTokens: _cached, ...result } = read;
      answers.set(line.id, { ...result, latencyMs: 0, attempts: 1, costUsd: cost.costUsd ?? 0, cost });
      entries.push(...cacheEntries(result, line.keys, now));
    }
    await storeAnswers(parts, entries);
    const retry = intent.lines.filter((line) => outcomes.get(line.id)?.kind === "retry").map((line) => line.id);
    const refused = intent.lines.length - answers.size - retry.length;
    await recordDone(parts, intent.key, batch.status, answers.size, retry, refused);
    intent.state = "done";
    groups.delete(intent.key);
    for (const line of intent.lines) if (inGroup.get(line.id) === intent.key) inGroup.delete(line.id);
    board.ended(batch.status);
    board.requestsDone += answers.size;
    for (const id of retry) attempts.set(id, (attempts.get(id) ?? 0) + 1);
    log(`llm batch: ${batch.id} ${batch.status}: ${answers.size} answered${retry.length ? `, ${retry.length} to resend` : ""}${refused ? `, ${refused} refused` : ""}`);
    for (const line of intent.lines) {
      const waiter = waiters.get(line.id);
      if (!waiter) continue;
      const answer = answers.get(line.id);
      if (answer) {
        const { cost, ...result } = answer;
        settle(waiter, () => waiter.resolve({ ...result, attempts: waiter.batches }), { promptTokens: result.usage.promptTokens, completionTokens: result.usage.completionTokens, ...cost });
        continue;
      }
      const outcome = outcomes.get(line.id) as Exclude<LineOutcome, { kind: "answer" }>;
      if (outcome.kind === "refused") {
        const error = new LlmError(scrub(`${model} at ${baseURL} (batch ${batch.id}) refused the request: ${outcome.message}`), { status: outcome.status, attempt: waiter.batches });
        settle(waiter, () => waiter.reject(error), { failures: 1 });
      } else if ((attempts.get(line.id) ?? 0) <= maxResubmits) {
        waiter.state = "pending";
        enqueue(waiter);
      } else {
        const hint = outcome.code === "token_limit_exceeded" ? " (the model's enqueued-token limit: set --batch-queue-tokens to your tier's)" : "";
        const what = `${model} at ${baseURL}: no answer after ${waiter.batches} batch${waiter.batches === 1 ? "" : "es"} (last: ${batch.id} ${batch.status}, ${outcome.code ?? outcome.message})${hint}`;
        // Nothing in the batch was answered either: the endpoint's doing, no verdict on the sample.
        const error =
          answers.size === 0
            ? new EndpointError(scrub(`${what}: the Batch API answers nothing; rerun the same command later to resume`), { status: outcome.status, attempt: waiter.batches, retryable: true })
            : new LlmError(scrub(what), { status: outcome.status, attempt: waiter.batches, retryable: true });
        settle(waiter, () => waiter.reject(error), { failures: 1 });
      }
    }
    await parts.fault("resolve");
    // Room in the queue limit, or resent requests: the next groups may go.
    if (queue.size > 0) await queue.flush(true);
  };

  const enqueue = (waiter: Waiter) => queue.add(waiter);

  const joinWaiter = (waiter: Waiter, signal: AbortSignal | undefined): Promise<ChatResult> => {
    waiter.callers++;
    if (!signal) return waiter.promise;
    if (signal.aborted) {
      leave(waiter);
      return Promise.reject(signal.reason);
    }
    return new Promise<ChatResult>((resolve, reject) => {
      const onAbort = () => {
        leave(waiter);
        reject(signal.reason);
      };
      signal.addEventListener("abort", onAbort, { once: true });
      waiter.promise.then(
        (result) => {
          signal.removeEventListener("abort", onAbort);
          resolve(result);
        },
        (error: unknown) => {
          signal.removeEventListener("abort", onAbort);
          reject(error);
        },
      );
    });
  };

  /** A caller gave up: a request nobody waits for leaves the queue; one already submitted is still collected (and cached). */
  const leave = (waiter: Waiter) => {
    if (--waiter.callers > 0) return;
    if (waiters.get(waiter.id) === waiter) waiters.delete(waiter.id);
    if (waiter.state === "pending") queue.remove(waiter.id);
  };

  const chat = async (request: ChatRequest, call: ChatCallOptions = {}): Promise<ChatResult> => {
    if (closed) throw new ConfigError("llm.chat called after llm.close()");
    const n = request.n ?? 1;
    if (!Number.isInteger(n) || n < 1) throw new ConfigError(`llm.chat: n must be an integer >= 1, got ${n}`);
    if (!Array.isArray(request.messages) || request.messages.length === 0) throw new ConfigError("llm.chat: messages must be a non-empty array");
    if (request.stream) throw new ConfigError("llm.chat: a batch client does not stream (run without --batch, or ask without stream)");
    await ready;
    const body = requestBody(request, model, options.seed);
    const cacheIndex = call.cacheIndex ?? 0;
    const keys = Array.from({ length: n }, (_, i) => choiceKey(endpointId, body, cacheIndex, i));
    const hits: CachedChoice[] = [];
    for (const key of keys) {
      let hit: CachedChoice | undefined;
      try {
        hit = store.get(key);
      } catch (error) {
        throw new CacheError(`the response cache could not be read (${errorMessage(error)}): fix the cache folder (RXSYNTH_CACHE_DIR) or pass --no-cache`, { cause: error });
      }
      if (!hit) break;
      hits.push(hit);
    }
    if (hits.length === n) {
      count({ cacheHits: 1 }, call.meter);
      return fromCache(hits);
    }
    const id = stableHash({ endpoint: endpointId, body, n, cacheIndex }, 32);
    const existing = waiters.get(id);
    if (existing) {
      count({ coalesced: 1 }, call.meter);
      const shared = await joinWaiter(existing, call.signal);
      return { ...shared, attempts: 0, costUsd: 0 };
    }
    const requestModel = String(body.model);
    let resolve!: (result: ChatResult) => void;
    let reject!: (error: unknown) => void;
    const promise = new Promise<ChatResult>((ok, fail) => {
      resolve = ok;
      reject = fail;
    });
    // Nobody may be listening when a shared request fails after its callers left.
    promise.catch(() => {});
    const waiter: Waiter = {
      id,
      model: requestModel,
      line: inputLine(id, shapeBody(n > 1 ? { ...body, n } : body, capabilitiesOf(requestModel))),
      keys,
      tokens: countMessageTokens(request.messages, requestModel) + n * (request.max_tokens ?? completionEstimate),
      n,
      promise,
      resolve,
      reject,
      meter: call.meter,
      callers: 0,
      state: "submitted",
      batches: attempts.get(id) ?? 0,
    };
    waiters.set(id, waiter);
    // In a batch the journal found again: its answer comes when that batch ends.
    if (!inGroup.has(id)) {
      waiter.state = "pending";
      enqueue(waiter);
    }
    return joinWaiter(waiter, call.signal);
  };

  const ready = (async () => {
    const state = replayJournal(journal.read());
    attempts = state.attempts;
    for (const intent of state.intents.values()) {
      if (intent.batchId !== undefined) {
        board.submitted++;
        board.requestsTotal += intent.lines.length;
      }
      if (intent.state === "done") board.ended(intent.status ?? "completed");
    }
    const open = [...state.intents.values()].filter((intent) => intent.state === "open");
    if (open.length === 0) return;
    const before = open.filter((intent) => intent.batchId !== undefined).length;
    const live = await recover(parts, open);
    board.submitted += live.length - before;
    for (const intent of live) {
      if (!state.intents.get(intent.key)?.batchId) board.requestsTotal += intent.lines.length;
      track(intent, intent.lines.reduce((sum, line) => sum + line.tokens, 0));
    }
    log(`llm batch: resuming ${live.length} batch${live.length === 1 ? "" : "es"} from ${journal.path}${open.length > live.length ? ` (${open.length - live.length} never reached the server and go again)` : ""}`);
    ensurePolling();
  })();
  // A run that never calls still closes cleanly; a failure here is the first call's.
  ready.catch(() => {});

  return {
    model,
    baseURL,
    get supportsJsonSchema() {
      return capabilitiesOf(model).jsonSchema;
    },
    concurrency,
    board,
    ready,
    chat,
    stats: () => ({ ...totals }),
    limits: () => ({ concurrency, inFlight: waiters.size, rpm: undefined, tpm: undefined }),
    async close() {
      if (closed) return;
      closed = true;
      stop.abort(new Error("llm closed"));
      const closing = new Error("llm closed");
      for (const waiter of [...waiters.values()]) settle(waiter, () => waiter.reject(closing));
      await ready.catch(() => undefined);
      await queue.close();
      await polling?.catch(() => undefined);
      await journal.close();
      if (opened.owned) await store.close();
    },
  };
}
