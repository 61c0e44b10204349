import type OpenAI from "openai";
import { lazyModule } from "./lazy.ts";
import { CacheError, ConfigError, EndpointError, LlmError, errorMessage } from "../errors.ts";
import { ResponseCache, cacheEntries, choiceKey, defaultCacheDir, fromCache, requestBody, type CachedChoice, type ResponseStore } from "./cache.ts";
import { CircuitBreaker } from "./breaker.ts";
import { OutageGate, type Pass } from "./outage.ts";
import {
  TokenBucket,
  type ConcurrencySlots,
  type LearnedLimitValues,
  type LearnedLimits,
  type RateBucket,
} from "./limiter.ts";
import { backoffMs, isRetryableStatus, retryAfterMs, scrubSecrets, seededRandom, sleep } from "./retry.ts";
import {
  describeChange,
  endpointFamily,
  familyCapabilities,
  familyFromModels,
  learnFromRefusal,
  parseCapabilities,
  parseFamily,
  shapeBody,
  type Capabilities,
  type EndpointFamily,
} from "./capabilities.ts";
import { splitReasoning } from "./reasoning.ts";
import { countMessageTokens, countTokens } from "./tokens.ts";
import { withErrorEnvelope } from "./error-envelope.ts";
import { nodeFetch } from "./transport.ts";
import { FLEET_DEFAULTS, FleetMember, FleetRouter, parseBaseUrls, type BaseUrls, type FleetMemberView, type FleetOptions, type Lease, type MemberHealth } from "./fleet.ts";
import { BUILTIN_PRICES, SIMULATOR_MODEL, lookupPrice, type ModelPrice } from "./prices.ts";
import { requestCostBound, type SpendGate, type SpendSettle } from "./spend.ts";
import type { ChatChoice, ChatRequest, ChatResult, LlmStats, LlmStatsDelta } from "./types.ts";

const openai = lazyModule<typeof import("openai")>("openai");

export type { ModelPrice } from "./prices.ts";

export interface LlmOptions {
  /** Model name sent with every request unless the request names its own. */
  readonly model: string;
  /**
   * Any OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, llama.cpp server, the simulator). Default:
   * OPENAI_BASE_URL, else OpenAI. Several base URLs (a list, or one string with commas) are a fleet of
   * servers of the same model: each attempt goes to the least-loaded healthy one, each has its own adaptive
   * cap, a server that keeps failing is ejected and probed back in, and a failed attempt moves to another
   * server without counting against the call (see `fleet`).
   */
  readonly baseURL?: BaseUrls;
  /** How a fleet names itself in the cache key and treats a server that fails (see FleetOptions). */
  readonly fleet?: FleetOptions;
  /**
   * A spending cap asked before each priced request is sent (the run's `--max-cost`, see SpendGate): with
   * it, the client counts the prompt's tokens up front and bounds the answer by `max_tokens`, else by
   * twice the longest answer it has seen.
   */
  readonly spend?: SpendGate;
  /** Default: OPENAI_API_KEY, else a placeholder that local servers accept. Never logged or put in errors. */
  readonly apiKey?: string;
  /**
   * Most requests in flight, per server of a fleet (a server listed with its own `concurrency` has that);
   * the adaptive cap starts here and never exceeds it. Default 16.
   */
  readonly concurrency?: number;
  /** Requests per minute; unset: learned from the server's x-ratelimit-limit-requests header, if it sends one. */
  readonly rpm?: number;
  /** Tokens (prompt + max_tokens) per minute; unset: learned from x-ratelimit-limit-tokens. */
  readonly tpm?: number;
  /** Limit for one attempt, body included. Default 120 000 ms. */
  readonly timeoutMs?: number;
  /**
   * Retries after the first attempt for connection errors, timeouts, 408/409/429/5xx. Default 6. When they
   * are spent while the endpoint answers other requests, the call fails (an LlmError: the request's own
   * problem); when nothing gets an answer, the endpoint is out and the call waits (see `outageSeconds`).
   */
  readonly maxRetries?: number;
  /** Backoff before retry k is uniform in [0, min(backoffMaxMs, backoffBaseMs * 2^(k-1))]. Default 500 ms. */
  readonly backoffBaseMs?: number;
  /** Default 30 000 ms. A server's Retry-After overrides the backoff, whatever its length. */
  readonly backoffMaxMs?: number;
  /**
   * The persistent response cache: a folder (LMDB, safe to share between runs and processes), true for
   * the user's cache folder (RXSYNTH_CACHE_DIR, else $XDG_CACHE_HOME/rxsynth/llm or ~/.cache/rxsynth/llm),
   * or a store of your own (closed by you, not by the client). False or unset: no cache.
   */
  readonly cache?: string | boolean | ResponseStore;
  /**
   * Who answers, as the cache key names it: one cache folder serves every endpoint, and two servers
   * answer the same request differently. Default: the base URL; for a fleet, `fleet:<fleet.name>`, so
   * adding or removing a server keeps the answers already cached. The built-in simulator, whose port
   * changes every run, passes a stable name and its seed.
   */
  readonly endpointId?: string;
  /**
   * How long requests wait out an outage (connection errors, timeouts, 429 or 5xx on every request after
   * its retries) before they fail with an EndpointError, in seconds: meanwhile nothing is sent but one
   * probe at a time, and nothing fails. 0: fail as soon as the retries are spent. Default: the environment's
   * RXSYNTH_OUTAGE_SECONDS, else 300.
   */
  readonly outageSeconds?: number;
  /**
   * USD per million tokens by model name, for `costUsd`, laid over the built-in table (BUILTIN_PRICES,
   * see PRICES_AS_OF); dated snapshots resolve to their family. Tokens of a model priced nowhere are
   * counted in `unpricedTokens`, not as free.
   */
  readonly prices?: Readonly<Record<string, ModelPrice>>;
  /**
   * The endpoint is the built-in simulator: its answers cost nothing whatever model they name, and their
   * tokens are counted in `simulatedTokens`. Also assumed for the model SIMULATOR_MODEL. Default false.
   */
  readonly simulator?: boolean;
  /** Sent as the request seed unless a request sets its own; also seeds the backoff jitter. */
  readonly seed?: number;
  /** Whether the endpoint honours `response_format: json_schema`. Default true. */
  readonly supportsJsonSchema?: boolean;
  /**
   * What the endpoint accepts, over the built-in profile of its family (see `family`) and the environment's
   * RXSYNTH_CAPABILITIES ("jsonSchema=false,n=false", ...). Anything else is learned when the endpoint
   * refuses a parameter by name.
   */
  readonly capabilities?: Partial<Capabilities>;
  /**
   * The server family whose built-in profile to start from (capabilities.ts: OpenAI and Azure reasoning
   * models, Groq, Together, Ollama, ...). Default: the environment's RXSYNTH_ENDPOINT_FAMILY, else what the
   * base URL names, else what the server's GET /models says (`owned_by`), asked once before the first request.
   */
  readonly family?: EndpointFamily;
  /**
   * Where the RPM and TPM budgets live: by default this client's own buckets; a scaled-out run passes
   * buckets in Redis, so every worker's client draws on one budget per endpoint (see src/scale).
   */
  readonly buckets?: (kind: "requests" | "tokens", perMinute: number, burstMs: number) => RateBucket;
  /**
   * Requests in flight to the endpoint across processes: a scaled-out run passes slots in Redis, so N
   * workers together stay within the endpoint's concurrency instead of N times it (see src/scale).
   */
  readonly slots?: ConcurrencySlots;
  /**
   * The same per server of a fleet (each server's own concurrency across processes), in place of `slots`:
   * asked once per base URL when the client is made.
   */
  readonly serverSlots?: (baseURL: string) => ConcurrencySlots | undefined;
  /**
   * Limits other clients of the endpoint have learned from its headers: read before this client's first
   * request, so a worker joining a scaled-out run does not send its first wave unmetered (and collect 429s)
   * while it waits for headers of its own; written when this client learns one (see src/scale).
   */
  readonly learnedLimits?: LearnedLimits;
  /** Extra HTTP headers for every request. */
  readonly headers?: Readonly<Record<string, string>>;
  /**
   * HTTP stack under the openai client: "node" (node:http keep-alive agents, a third of the CPU per request)
   * or "fetch" (the global fetch). Default "node".
   */
  readonly transport?: "node" | "fetch";
  /** Adapt the concurrency cap to 429s (AIMD). Default true. */
  readonly adaptive?: boolean;
  /**
   * Calls that failed in a row, all with the same error, before the run is stopped (an EndpointError with
   * one line): a server that refuses every request the same way (a template error, a 500 on every call)
   * is a configuration problem, not a verdict on each sample. Default 5.
   */
  readonly breakerFailures?: number;
  /** Where retry notices go (already scrubbed of the key), for calls that give no `log` of their own. Default: nowhere. */
  readonly log?: (message: string) => void;
}

/** Answers a client sees before it estimates the length of the next ones for the spend gate. */
const ANSWERS_BEFORE_ESTIMATE = 8;

export const LLM_DEFAULTS = {
  concurrency: 16,
  timeoutMs: 120_000,
  maxRetries: 6,
  backoffBaseMs: 500,
  backoffMaxMs: 30_000,
  supportsJsonSchema: true,
  adaptive: true,
  transport: "node",
  /**
   * Burst the client's RPM/TPM buckets allow, in ms of the limit: half of the one-second window servers
   * typically enforce, so the difference absorbs network jitter instead of turning it into 429s.
   */
  burstMs: 500,
  /** Completion tokens assumed per choice before any answer was seen, when a request sets no max_tokens. */
  completionEstimate: 256,
  outageSeconds: 300,
  breakerFailures: 5,
  placeholderKey: "rxsynth-no-key",
  baseURL: "https://api.openai.com/v1",
} as const;

export interface ChatCallOptions {
  readonly signal?: AbortSignal;
  /** Separates otherwise identical calls in the cache (e.g. the k-th retry after a bad answer). Default 0. */
  readonly cacheIndex?: number | string;
  /** Told of every change to the totals while this call runs (requests, retries, tokens, ...). */
  readonly meter?: (delta: LlmStatsDelta) => void;
  /**
   * Where this call's retry notices go, instead of the client's `log`: each notice is said once, so a
   * graph whose client and operators both log to the run's log prints one line per retry, not two.
   */
  readonly log?: (message: string) => void;
  /** Streamed text as it arrives (only with `stream: true`); a retried attempt streams again from the start. */
  readonly onDelta?: (choiceIndex: number, text: string) => void;
}

/** One client per endpoint. */
export interface Llm {
  readonly model: string;
  /** The base URL, or a fleet's, joined with commas. */
  readonly baseURL: string;
  readonly supportsJsonSchema: boolean;
  /** The configured concurrency cap (a fleet's: the sum of its servers'). */
  readonly concurrency: number;
  chat(request: ChatRequest, options?: ChatCallOptions): Promise<ChatResult>;
  stats(): LlmStats;
  /** What the limiters allow now: the adaptive cap (a fleet's: summed over its servers) and the learned or configured rate limits. */
  limits(): { concurrency: number; inFlight: number; rpm: number | undefined; tpm: number | undefined };
  /** Each server of the endpoint (one, or a fleet's): its cap, load, health and answers. Optional for wrappers of a client. */
  fleet?(): FleetMemberView[];
  close(): Promise<void>;
}

/** What the client keeps per server: its HTTP client, keep-alive agents and cross-process slots. */
interface Server {
  readonly api: OpenAI;
  readonly transport: { close(): void } | undefined;
  readonly slots: ConcurrencySlots | undefined;
}

interface Flight {
  readonly promise: Promise<ChatResult>;
  readonly controller: AbortController;
  waiters: number;
}

/** What one attempt got back, before accounting. */
interface Answer {
  readonly choices: ChatChoice[];
  readonly model: string;
  readonly promptTokens: number | undefined;
  readonly completionTokens: number | undefined;
  /** Prompt tokens the provider served from its prompt cache (`usage.prompt_tokens_details.cached_tokens`). */
  readonly cachedPromptTokens: number | undefined;
  readonly requestId: string | undefined;
  readonly headers: Headers;
}

class AttemptTimeout extends Error {
  constructor(ms: number) {
    super(`no complete answer within ${ms} ms`);
    this.name = "AttemptTimeout";
  }
}

/**
 * Each choice's share of the server's completion tokens: tiktoken's counts tell the proportions, the server's
 * total (its own tokenizer, reasoning included) is the figure, so the shares add up to what was billed.
 */
function choiceTokens(counts: readonly number[], total: number | undefined): number[] {
  if (total === undefined) return [...counts];
  const sum = counts.reduce((a, b) => a + b, 0);
  const exact = counts.map((count) => (sum > 0 ? (count / sum) * total : total / counts.length));
  const shares = exact.map(Math.floor);
  // Largest remainders first, so the shares sum to the total exactly.
  const order = exact.map((value, index) => [value - shares[index]!, index] as const).sort((a, b) => b[0] - a[0]);
  for (let left = total - shares.reduce((a, b) => a + b, 0), k = 0; left > 0; left--, k++) shares[order[k % order.length]![1]]!++;
  return shares;
}

function nonNegative(value: number | undefined): number | undefined {
  return value !== undefined && value >= 0 ? value : undefined;
}

function headerNumber(headers: Headers | undefined, name: string): number | undefined {
  const value = headers?.get(name);
  if (value === null || value === undefined) return undefined;
  const number = Number.parseFloat(value);
  return Number.isFinite(number) ? number : undefined;
}

/** Statuses that say the endpoint cannot serve this client at all: a bad key, no access, a wrong URL or model. */
const ENDPOINT_STATUS: Readonly<Record<number, string>> = {
  401: "check the API key (OPENAI_API_KEY)",
  402: "the account is out of credit: add credit or use another key (OPENAI_API_KEY), then rerun the same command to resume",
  403: "check that the API key may use this model (OPENAI_API_KEY, RXSYNTH_MODEL)",
  404: "check the model name (RXSYNTH_MODEL) and the base URL (OPENAI_BASE_URL, usually ending in /v1)",
};

function outageSeconds(option: number | undefined): number {
  const fromEnv = process.env.RXSYNTH_OUTAGE_SECONDS?.trim();
  const value = option ?? (fromEnv ? Number(fromEnv) : LLM_DEFAULTS.outageSeconds);
  if (!(Number.isFinite(value) && value >= 0)) {
    const where = option !== undefined ? "createLlm: outageSeconds" : "RXSYNTH_OUTAGE_SECONDS";
    throw new ConfigError(`${where} must be a number of seconds >= 0, got ${option ?? fromEnv}`);
  }
  return value;
}

function openStore(cache: LlmOptions["cache"]): { store: ResponseStore; owned: boolean } | undefined {
  if (cache === undefined || cache === false) return undefined;
  if (typeof cache === "object") return { store: cache, owned: false };
  const path = cache === true ? defaultCacheDir() : cache;
  return path ? { store: ResponseCache.open(path), owned: true } : undefined;
}

function positive(name: string, value: number | undefined, integer = false): void {
  if (value === undefined) return;
  if (!(value > 0) || (integer && !Number.isInteger(value))) {
    throw new ConfigError(`createLlm: ${name} must be a positive ${integer ? "integer" : "number"}, got ${value}`);
  }
}

/**
 * A client for one OpenAI-compatible endpoint, built on the official `openai` package (its own retries
 * off). Calls pass an adaptive concurrency cap and RPM/TPM token buckets, retry with full-jitter backoff
 * that honours Retry-After, are answered from a persistent cache when possible (identical calls in
 * flight share one request), and are counted in tokens and dollars.
 */
export function createLlm(options: LlmOptions): Llm {
  if (!options.model) throw new ConfigError("createLlm: set `model` (the model name the endpoint serves)");
  positive("concurrency", options.concurrency, true);
  positive("rpm", options.rpm);
  positive("tpm", options.tpm);
  positive("timeoutMs", options.timeoutMs);
  if (options.maxRetries !== undefined && !(Number.isInteger(options.maxRetries) && options.maxRetries >= 0)) {
    throw new ConfigError(`createLlm: maxRetries must be an integer >= 0, got ${options.maxRetries}`);
  }
  const model = options.model;
  const servers = parseBaseUrls(options.baseURL ?? process.env.OPENAI_BASE_URL ?? LLM_DEFAULTS.baseURL, options.baseURL !== undefined ? "createLlm: baseURL" : "OPENAI_BASE_URL");
  for (const { url } of servers) {
    const azureDeployment = /^(https?:\/\/[^/]+)\/openai\/deployments\//.exec(url);
    if (azureDeployment) {
      throw new ConfigError(
        `${url} is Azure's classic deployment URL, which needs an api-version query the OpenAI client does not send: use Azure's v1 URL ${azureDeployment[1]}/openai/v1/ as OPENAI_BASE_URL, with the deployment name as the model`,
      );
    }
  }
  const baseURL = servers.map((server) => server.url).join(",");
  const apiKey = options.apiKey ?? process.env.OPENAI_API_KEY ?? LLM_DEFAULTS.placeholderKey;
  const concurrencyMax = options.concurrency ?? LLM_DEFAULTS.concurrency;
  const timeoutMs = options.timeoutMs ?? LLM_DEFAULTS.timeoutMs;
  const maxRetries = options.maxRetries ?? LLM_DEFAULTS.maxRetries;
  const backoffBase = options.backoffBaseMs ?? LLM_DEFAULTS.backoffBaseMs;
  const backoffMax = options.backoffMaxMs ?? LLM_DEFAULTS.backoffMaxMs;
  const adaptive = options.adaptive ?? LLM_DEFAULTS.adaptive;
  const scrub = (text: string) => scrubSecrets(text, [apiKey]);
  const hostOf = (url: string) => (URL.canParse(url) ? new URL(url).host : url);
  const host = servers.length === 1 ? hostOf(servers[0]!.url) : `fleet of ${servers.length} (${servers.map((server) => hostOf(server.url)).join(", ")})`;
  const random = seededRandom(options.seed ?? 0x5eed);
  const outageMs = outageSeconds(options.outageSeconds) * 1_000;
  // A fleet's servers answer alike: the cache names the fleet, not the server (nor the list of them).
  // A named fleet of one server is still the fleet: a run started on one server can grow into a fleet.
  const endpointId =
    options.endpointId ??
    (servers.length === 1 && options.fleet?.name === undefined ? servers[0]!.url.replace(/\/+$/, "") : `fleet:${options.fleet?.name ?? FLEET_DEFAULTS.name}`);

  const bufferedBodies = (options.transport ?? LLM_DEFAULTS.transport) === "node";
  const fleet = new FleetRouter<Server>(
    servers.map((server) => {
      const cap = server.concurrency ?? concurrencyMax;
      const transport = bufferedBodies ? nodeFetch(cap) : undefined;
      const api = new (openai().OpenAI)({
        apiKey,
        baseURL: server.url,
        maxRetries: 0,
        timeout: timeoutMs,
        defaultHeaders: options.headers ? { ...options.headers } : undefined,
        fetch: withErrorEnvelope(transport ? transport.fetch : (input, init) => fetch(input, init)),
      });
      const slots = options.serverSlots ? options.serverSlots(server.url) : options.slots;
      return new FleetMember<Server>(server.url, cap, adaptive, { api, transport, slots });
    }),
    options.fleet,
    (line) => options.log?.(scrubSecrets(line, [apiKey])),
  );
  const client = fleet.members[0]!.handle.api;
  const opened = openStore(options.cache);
  const cache = opened?.store;
  const gate = new OutageGate({
    endpoint: host,
    outageMs,
    probeBaseMs: backoffBase,
    probeMaxMs: Math.max(backoffBase, Math.min(backoffMax, outageMs / 10)),
  });
  const bucket = (kind: "requests" | "tokens", perMinute: number): RateBucket =>
    options.buckets?.(kind, perMinute, LLM_DEFAULTS.burstMs) ?? new TokenBucket(perMinute, LLM_DEFAULTS.burstMs);
  let rpmBucket = options.rpm ? bucket("requests", options.rpm) : undefined;
  let tpmBucket = options.tpm ? bucket("tokens", options.tpm) : undefined;
  // Asked once, before the first request: a limit another worker learned meters this one from the start.
  let adoptedLearned: Promise<void> | undefined;
  const adoptLearned = () =>
    (adoptedLearned ??= (async () => {
      const known = await options.learnedLimits?.read().catch(() => ({}) as LearnedLimitValues);
      if (!rpmBucket && known?.requests) rpmBucket = bucket("requests", known.requests);
      if (!tpmBucket && known?.tokens) tpmBucket = bucket("tokens", known.tokens);
    })());
  let completionEstimate: number = LLM_DEFAULTS.completionEstimate;
  const flights = new Map<string, Flight>();
  const breaker = new CircuitBreaker(options.breakerFailures ?? LLM_DEFAULTS.breakerFailures);
  /** A Retry-After longer than the longest backoff holds every request of the client until then. */
  let pausedUntil = 0;
  const familyFromEnvironment = process.env.RXSYNTH_ENDPOINT_FAMILY?.trim();
  let family: EndpointFamily = options.family ?? (familyFromEnvironment ? parseFamily(familyFromEnvironment, "RXSYNTH_ENDPOINT_FAMILY") : endpointFamily(servers[0]!.url));
  const told: Partial<Capabilities> = {
    ...(options.supportsJsonSchema === false ? { jsonSchema: false } : {}),
    ...(process.env.RXSYNTH_CAPABILITIES ? parseCapabilities(process.env.RXSYNTH_CAPABILITIES, "RXSYNTH_CAPABILITIES") : {}),
    ...options.capabilities,
  };
  /** Per model (a request may name another model than the client's): what the endpoint's refusals taught. */
  const learned = new Map<string, Partial<Capabilities>>();
  /** Recomputed only when the family or a lesson changes, so an unchanged value keeps its identity (see `sentWith`). */
  const capabilities = new Map<string, Capabilities>();
  const capabilitiesOf = (name: string): Capabilities => {
    let known = capabilities.get(name);
    if (!known) {
      known = { ...familyCapabilities(family, name), ...told, ...learned.get(name) };
      capabilities.set(name, known);
    }
    return known;
  };
  const learn = (name: string, change: Partial<Capabilities>) => {
    learned.set(name, { ...learned.get(name), ...change });
    capabilities.delete(name);
  };
  /**
   * A server whose URL names no family is asked once what it is (GET /models, owned_by), before the first
   * request that is sent: an Ollama behind a proxy cuts long prompts silently like any other. No answer,
   * or one that names no family, leaves it "unknown".
   */
  let detection: Promise<void> | undefined = family === "unknown" && !options.family && !familyFromEnvironment && !options.simulator ? undefined : Promise.resolve();
  const detectFamily = (): Promise<void> =>
    (detection ??= (async () => {
      try {
        // Its own timer over the whole answer: the SDK's timeout stops at the headers.
        const list = await client.models.list({ timeout: 2_000, maxRetries: 0, signal: AbortSignal.timeout(2_000) });
        const entry = list.data.find((item) => item.id === model) ?? list.data[0];
        const found = familyFromModels(entry?.owned_by);
        if (found !== "unknown") {
          family = found;
          capabilities.clear();
          options.log?.(scrub(`llm: ${host} serves models owned by "${entry?.owned_by}": starting from the ${found} profile (RXSYNTH_ENDPOINT_FAMILY overrides)`));
        }
      } catch {
        // A server without /models is served as an unknown family, adapting on refusals.
      }
    })());
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
  let closed = false;

  const prices = { ...BUILTIN_PRICES, ...options.prices };
  /** The cost of one answer, or where its tokens are counted when it has no price (or is the simulator's). */
  const costOf = (modelName: string, prompt: number, cached: number, completion: number): LlmStatsDelta => {
    const tokens = prompt + completion;
    if (options.simulator || modelName === SIMULATOR_MODEL) return { simulatedTokens: tokens };
    const price = lookupPrice(modelName, prices) ?? lookupPrice(model, prices);
    if (!price) return { unpricedTokens: tokens };
    const hit = Math.min(prompt, cached);
    const usd = ((prompt - hit) * price.input + hit * (price.cachedInput ?? price.input) + completion * price.output) / 1_000_000;
    return { costUsd: usd };
  };

  /**
   * The longest answer seen, in tokens per choice: with no max_tokens, a request's answer is estimated at
   * twice it, once a few answers have shown how long they run (until then the spend gate sends one at a time).
   */
  let longestAnswer = 0;
  let answersSeen = 0;
  const admitSpend = (modelName: string, promptTokens: number, n: number, maxTokens: number | undefined, signal: AbortSignal): Promise<SpendSettle> | undefined => {
    if (options.simulator || modelName === SIMULATOR_MODEL) return undefined;
    const price = lookupPrice(modelName, prices) ?? lookupPrice(model, prices);
    if (!price) return undefined;
    const answerBound = () =>
      maxTokens !== undefined
        ? { tokens: maxTokens, exact: true }
        : answersSeen === 0
          ? undefined
          : { tokens: 2 * longestAnswer, exact: false, alone: answersSeen < ANSWERS_BEFORE_ESTIMATE };
    return options.spend!.admit(() => requestCostBound(price, promptTokens, n, answerBound()), signal);
  };

  /** Keeps the buckets in step with the server: learns limits it did not know, lowers levels it overestimated. */
  const observeHeaders = (headers: Headers | undefined, marks: { rpm?: number; tpm?: number; sentAt: number }) => {
    if (!headers) return;
    const dialect = capabilitiesOf(model).rateHeaders;
    // Groq's request headers count per day: read as RPM they would let a run spend a day's quota in a minute.
    const requestHeadersPerMinute = dialect === "per-minute";
    // Together's count per second, under other names; their remaining counts are per second too, so only the limits are read.
    const perSecond = dialect === "per-second";
    const perMinute = (value: number | undefined) => (value === undefined ? undefined : value * 60);
    const limitRequests = requestHeadersPerMinute
      ? headerNumber(headers, "x-ratelimit-limit-requests")
      : perSecond
        ? perMinute(headerNumber(headers, "x-ratelimit-limit"))
        : undefined;
    const limitTokens = perSecond ? perMinute(headerNumber(headers, "x-tokenlimit-limit")) : headerNumber(headers, "x-ratelimit-limit-tokens");
    if (!options.rpm && limitRequests && limitRequests > 0 && rpmBucket?.limit !== limitRequests) {
      if (rpmBucket) rpmBucket.setLimit(limitRequests);
      else {
        rpmBucket = bucket("requests", limitRequests);
        marks.rpm = 0;
      }
      options.learnedLimits?.write("requests", limitRequests);
    }
    if (!options.tpm && limitTokens && limitTokens > 0 && tpmBucket?.limit !== limitTokens) {
      if (tpmBucket) tpmBucket.setLimit(limitTokens);
      else {
        tpmBucket = bucket("tokens", limitTokens);
        marks.tpm = 0;
      }
      options.learnedLimits?.write("tokens", limitTokens);
    }
    // Azure sometimes sends -1: no figure at all.
    const remainingRequests = requestHeadersPerMinute ? nonNegative(headerNumber(headers, "x-ratelimit-remaining-requests")) : undefined;
    const remainingTokens = perSecond ? undefined : nonNegative(headerNumber(headers, "x-ratelimit-remaining-tokens"));
    if (rpmBucket && remainingRequests !== undefined && marks.rpm !== undefined) {
      rpmBucket.correct(remainingRequests, marks.rpm, marks.sentAt);
    }
    if (tpmBucket && remainingTokens !== undefined && marks.tpm !== undefined) {
      tpmBucket.correct(remainingTokens, marks.tpm, marks.sentAt);
    }
  };

  const once = async (api: OpenAI, body: Record<string, unknown>, n: number, signal: AbortSignal): Promise<Answer> => {
    const { data, response, request_id } = await api.chat.completions
      .create({ ...body, ...(n > 1 ? { n } : {}) } as unknown as OpenAI.ChatCompletionCreateParamsNonStreaming, { signal, timeout: timeoutMs })
      .withResponse();
    const choices: ChatChoice[] = (data.choices ?? []).map((choice, position) => {
      const answer = splitReasoning(choice.message?.content ?? "", (choice.message ?? {}) as ReasoningFields, capabilitiesOf(String(body.model)));
      return {
        index: choice.index ?? position,
        text: answer.text,
        finishReason: choice.finish_reason ?? "none",
        ...(choice.message?.refusal ? { refusal: choice.message.refusal } : {}),
        ...(answer.reasoning ? { reasoning: answer.reasoning } : {}),
        completionTokens: 0,
      };
    });
    return {
      choices,
      model: data.model ?? String(body.model),
      promptTokens: data.usage?.prompt_tokens,
      completionTokens: data.usage?.completion_tokens,
      cachedPromptTokens: data.usage?.prompt_tokens_details?.cached_tokens,
      requestId: request_id ?? undefined,
      headers: response.headers,
    };
  };

  const streamed = async (
    api: OpenAI,
    body: Record<string, unknown>,
    n: number,
    signal: AbortSignal,
    onDelta: ChatCallOptions["onDelta"],
  ): Promise<Answer> => {
    const params = {
      ...body,
      ...(n > 1 ? { n } : {}),
      stream: true,
      ...(capabilitiesOf(String(body.model)).streamUsage ? { stream_options: { include_usage: true } } : {}),
    } as unknown as OpenAI.ChatCompletionCreateParamsStreaming;
    const { data: stream, response, request_id } = await api.chat.completions.create(params, { signal }).withResponse();
    const texts: string[] = [];
    const thoughts: string[] = [];
    const refusals: string[] = [];
    const finish: Array<string | undefined> = [];
    let usage: OpenAI.CompletionUsage | undefined;
    let answerModel = String(body.model);
    for await (const chunk of stream) {
      if (chunk.model) answerModel = chunk.model;
      if (chunk.usage) usage = chunk.usage;
      for (const choice of chunk.choices ?? []) {
        const index = choice.index ?? 0;
        const delta = choice.delta?.content ?? "";
        if (delta) {
          texts[index] = (texts[index] ?? "") + delta;
          onDelta?.(index, delta);
        }
        const thought = reasoningDelta(choice.delta as ReasoningFields | undefined);
        if (thought) thoughts[index] = (thoughts[index] ?? "") + thought;
        if (choice.delta?.refusal) refusals[index] = (refusals[index] ?? "") + choice.delta.refusal;
        if (choice.finish_reason) finish[index] = choice.finish_reason;
      }
    }
    const count = Math.max(texts.length, finish.length, refusals.length);
    const choices: ChatChoice[] = [];
    for (let index = 0; index < count; index++) {
      // A stream that ends before a choice finished was cut: treat it like a dropped connection.
      if (finish[index] === undefined) throw new TypeError(`stream ended before choice ${index} finished`);
      const answer = splitReasoning(texts[index] ?? "", { reasoning: thoughts[index] }, capabilitiesOf(String(body.model)));
      choices.push({
        index,
        text: answer.text,
        finishReason: finish[index]!,
        ...(refusals[index] ? { refusal: refusals[index] } : {}),
        ...(answer.reasoning ? { reasoning: answer.reasoning } : {}),
        completionTokens: 0,
      });
    }
    if (choices.length === 0) throw new TypeError("stream ended without any choice");
    return {
      choices,
      model: answerModel,
      promptTokens: usage?.prompt_tokens,
      completionTokens: usage?.completion_tokens,
      cachedPromptTokens: usage?.prompt_tokens_details?.cached_tokens,
      requestId: request_id ?? undefined,
      headers: response.headers,
    };
  };

  /** Stores every choice of an answer; a failure is the run's (a CacheError), never a reason to send again. */
  const store = async (body: Record<string, unknown>, cacheIndex: number | string, result: ChatResult): Promise<void> => {
    if (!cache) return;
    const at = Date.now();
    try {
      const keys: string[] = [];
      for (const choice of result.choices) keys[choice.index] = choiceKey(endpointId, body, cacheIndex, choice.index);
      await Promise.all(cacheEntries(result, keys, at).map(([key, choice]) => cache.put(key, choice)));
    } catch (error) {
      throw new CacheError(
        `the answer to a request was received (and counted) but could not be written to the response cache (${errorMessage(error)}): ` +
          "fix the cache folder (RXSYNTH_CACHE_DIR) or pass --no-cache, then rerun the same command to resume",
        { cause: error },
      );
    }
  };

  /**
   * Sends one call until it succeeds, fails for good, or is aborted. Its own retries come first; when they
   * are spent and nothing else got an answer either, the endpoint is out: the call waits at the gate with
   * every other (see OutageGate) instead of failing.
   */
  const send = async (
    callBody: Record<string, unknown>,
    n: number,
    request: ChatRequest,
    call: ChatCallOptions,
    signal: AbortSignal,
    meter: (delta: LlmStatsDelta) => void,
  ): Promise<ChatResult> => {
    /** What is sent: the call's body, or one with a cap that fits the context (vLLM's max_tokens variant). */
    let body = callBody;
    const requestModel = String(body.model);
    const maxTokens = request.max_tokens;
    // Counted only when a TPM budget needs it up front; otherwise the server's usage is the figure.
    let promptCount: number | undefined;
    const promptEstimate = () => (promptCount ??= countMessageTokens(request.messages, requestModel));
    const log = (message: string) => (call.log ?? options.log)?.(scrub(message));
    const where = `${requestModel} at ${host}`;
    let retriesLeft = maxRetries;
    let adaptations = 0;
    let timeouts = 0;
    let fitted = false;
    /** The capabilities the last attempt was shaped with: a refusal of an older shape is not news. */
    let sentWith: Capabilities | undefined;
    /** Set when the server answered a prompt it cut (see Capabilities.cutsLongPrompts). */
    let cutPrompt: LlmError | undefined;
    /** Wall-clock time of the first failure since the last success or outage. */
    let failingSince: number | undefined;
    /** Servers of a fleet that failed this call: the next attempt goes elsewhere, and costs no retry while one is up. */
    const failedOn = new Set<FleetMember<Server>>();

    for (let attempt = 1; ; attempt++) {
      if (pausedUntil > Date.now()) await sleep(pausedUntil - Date.now(), signal);
      let pass: Pass;
      try {
        pass = await gate.enter(signal);
      } catch (error) {
        if (signal.aborted) throw signal.reason ?? error;
        meter({ failures: 1 });
        if (error instanceof EndpointError) {
          throw new EndpointError(error.message, { status: error.status, attempt: attempt - 1, retryable: true }, { cause: error.cause });
        }
        throw error;
      }
      if (pass === "resumed") {
        retriesLeft = maxRetries;
        failingSince = undefined;
        failedOn.clear();
      }
      const probe = typeof pass === "object" ? pass : undefined;
      const lease: Lease<Server> = await fleet.acquire(signal, failedOn).catch((error: unknown) => {
        if (probe) gate.probeAbandoned(probe);
        throw error;
      });
      const server = lease.member;
      let outcome: "ok" | "overloaded" | "other" = "other";
      let health: MemberHealth = "none";
      let failure: unknown;
      let headers: Headers | undefined;
      let result: ChatResult | undefined;
      let releaseSlot: (() => void) | undefined;
      const attemptStartedAt = performance.now();
      let settleSpend: SpendSettle | undefined;
      try {
        if (options.spend) settleSpend = await admitSpend(requestModel, promptEstimate(), n, maxTokens, signal);
        releaseSlot = await server.handle.slots?.acquire(signal);
        if (options.learnedLimits && (!rpmBucket || !tpmBucket)) await adoptLearned();
        const tokenEstimate = tpmBucket ? promptEstimate() + n * (maxTokens ?? completionEstimate) : 0;
        if (rpmBucket) await rpmBucket.take(1, signal);
        if (tpmBucket) await tpmBucket.take(tokenEstimate, signal);
        const marks = { rpm: rpmBucket?.consumed, tpm: tpmBucket?.consumed, sentAt: performance.now() };
        const tpmAtSend = tpmBucket;
        meter(attempt > 1 ? { requests: 1, retries: 1 } : { requests: 1 });
        // The SDK's timeout stops at the headers; it covers a whole answer only when the node transport
        // buffers the body. Streams, and bodies read through fetch, get a timer of their own.
        const timer = request.stream || !bufferedBodies ? new AbortController() : undefined;
        const timeout = timer ? setTimeout(() => timer.abort(new AttemptTimeout(timeoutMs)), timeoutMs) : undefined;
        const forward = timer ? () => timer.abort(signal.reason) : undefined;
        if (forward) signal.addEventListener("abort", forward, { once: true });
        const startedAt = performance.now();
        try {
          const attemptSignal = timer?.signal ?? signal;
          sentWith = capabilitiesOf(requestModel);
          const shaped = shapeBody(body, sentWith);
          const answer = request.stream
            ? await streamed(server.handle.api, shaped, n, attemptSignal, call.onDelta)
            : await once(server.handle.api, shaped, n, attemptSignal);
          const latencyMs = performance.now() - startedAt;
          outcome = "ok";
          health = "answered";
          observeHeaders(answer.headers, marks);
          const promptTokens = answer.promptTokens ?? promptEstimate();
          // A count of 0 is no count: Ollama reports only newly evaluated tokens when its KV cache held the prefix.
          if (capabilitiesOf(requestModel).cutsLongPrompts && answer.promptTokens !== undefined && answer.promptTokens > 0 && answer.promptTokens < 0.8 * promptEstimate()) {
            // The answer is to a prompt the server cut: paid for, but not an answer to this request.
            cutPrompt = new LlmError(
              scrub(`${where}: the server read ${answer.promptTokens} of the prompt's ${promptEstimate()} tokens (it cut a prompt longer than its context, e.g. Ollama's num_ctx): raise the context or shorten the prompt`),
              { attempt, reason: "context_length" },
            );
          }
          // One choice takes the server's figure as it is; only n > 1 needs tiktoken for the proportions.
          const perChoice =
            answer.choices.length === 1 && answer.completionTokens !== undefined
              ? [answer.completionTokens]
              : choiceTokens(
                  answer.choices.map((choice) => countTokens(`${choice.reasoning ?? ""}${choice.text || choice.refusal || ""}`, requestModel)),
                  answer.completionTokens,
                );
          const completionTokens = answer.completionTokens ?? perChoice.reduce((a, b) => a + b, 0);
          if (tpmAtSend) {
            const billed = promptTokens + (maxTokens !== undefined ? n * maxTokens : completionTokens);
            tpmAtSend.charge(billed - tokenEstimate);
          }
          if (answer.choices.length > 0) {
            longestAnswer = Math.max(longestAnswer, ...perChoice);
            answersSeen += answer.choices.length;
          }
          if (maxTokens === undefined && answer.choices.length > 0) {
            completionEstimate = 0.9 * completionEstimate + 0.1 * (completionTokens / answer.choices.length);
          }
          const cost = costOf(answer.model, promptTokens, answer.cachedPromptTokens ?? 0, completionTokens);
          meter({ promptTokens, completionTokens, ...cost, latencySeconds: latencyMs / 1000 });
          result = {
            choices: answer.choices.map((choice, i) => ({ ...choice, completionTokens: perChoice[i]! })),
            model: answer.model,
            usage: { promptTokens, completionTokens },
            latencyMs,
            requestId: answer.requestId,
            cached: false,
            attempts: attempt,
            costUsd: cost.costUsd ?? 0,
          };
        } catch (error) {
          failure = error;
          if (error instanceof openai().APIError && error.status !== undefined) {
            headers = error.headers ?? undefined;
            observeHeaders(headers, marks);
            if (error.status === 429) {
              outcome = "overloaded";
              meter({ rateLimited: 1 });
            }
            // A local server that queues (Ollama past its queue, llama.cpp loading a model) says 503.
            if (error.status === 503) outcome = "overloaded";
          }
          if (timer?.signal.aborted && !signal.aborted) failure = timer.signal.reason;
          // A request that timed out was queued past the limit: fewer at once, not the same again.
          if (isTimeout(failure)) {
            outcome = "overloaded";
            timeouts++;
          }
          health = signal.aborted ? "none" : serverHealth(failure);
        } finally {
          if (timeout) clearTimeout(timeout);
          if (forward) signal.removeEventListener("abort", forward);
        }
      } finally {
        settleSpend?.(result?.costUsd ?? 0);
        releaseSlot?.();
        fleet.release(lease, outcome, health);
      }

      if (result) {
        gate.answered();
        breaker.succeeded();
        if (cutPrompt) {
          // Not cached: the same request to a server with a larger context is another answer.
          meter({ failures: 1 });
          throw cutPrompt;
        }
        // Outside the attempt: the answer is in hand and paid for, so a cache failure never sends it again.
        await store(callBody, call.cacheIndex ?? 0, result);
        return result;
      }
      // The caller gave up (run stopping): not a failure of the endpoint, pass the abort on as it is.
      if (signal.aborted) {
        if (probe) gate.probeAbandoned(probe);
        throw signal.reason ?? failure;
      }
      // An error event inside a stream (vLLM) reaches the SDK without an HTTP status; its body's code is one.
      const status = failure instanceof openai().APIError ? (failure.status ?? streamedStatus(failure)) : undefined;
      const requestId = failure instanceof openai().APIError ? (failure.requestID ?? undefined) : undefined;
      const retryable = status === undefined ? !(failure instanceof openai().APIUserAbortError) : isRetryableStatus(status);
      const what = describeFailure(failure, timeoutMs);
      const cause = () => scrubbedCause(failure, scrub);

      if (health === "failed" && fleet.size > 1 && !probe) {
        // One server of a fleet failed (gone, cut, 5xx): another that is up takes the call, at once and
        // without spending its retries. Only when every server failed it do the retries and the outage apply.
        failedOn.add(server);
        if (fleet.hasHealthy(failedOn)) continue;
      }

      if (!retryable) {
        // An answer, if not a good one: the endpoint is there.
        if (status !== undefined) gate.answered();
        const refused = failure instanceof openai().APIError ? failure : undefined;
        const known = capabilitiesOf(requestModel);
        const refusal = refused ? { status, message: errorBodyMessage(refused), param: refused.param, code: refused.code } : undefined;
        // A prompt or cap too large for the context is the request's own, whatever parameters it names.
        const overflow = refusal ? contextOverflow(refusal.message, refusal.code) : undefined;
        if (overflow?.fits !== undefined && !fitted) {
          // vLLM says how the request splits into prompt and cap: the prompt fits, the cap does not; once,
          // with the cap that fits.
          fitted = true;
          body = { ...body, max_tokens: overflow.fits };
          log(`llm: ${where}: max_tokens too large for the context; retrying once with max_tokens ${overflow.fits}`);
          continue;
        }
        if (!overflow && refusal && (status === 400 || status === 422) && adaptations < MAX_ADAPTATIONS) {
          // Sent before another request taught the client what this one was refused for: send it as it is now.
          if (sentWith !== undefined && sentWith !== known) {
            adaptations++;
            if (n > 1 && !known.n) throw new OneChoicePerRequest();
            continue;
          }
          const change = learnFromRefusal(refusal, known);
          if (change) {
            // The endpoint named a parameter it does not take: adapt once, for every later request too.
            adaptations++;
            learn(requestModel, change);
            log(`llm: ${where}: ${describeChange(change)}`);
            if (change.n === false && n > 1) throw new OneChoicePerRequest();
            continue;
          }
        }
        meter({ failures: 1 });
        const tries = `attempt ${attempt}${requestId ? `, request ${requestId}` : ""}`;
        const advice = status !== undefined ? ENDPOINT_STATUS[status] : undefined;
        if (advice) {
          // In a fleet, the server that refused, by its whole URL: a wrong path or key is one entry of the list.
          const refusedBy = fleet.size > 1 ? `${requestModel} at ${server.url} (one server of the ${host})` : where;
          throw new EndpointError(scrub(`${refusedBy} refused the request: ${what} (${tries}): ${advice}`), { status, attempt, requestId }, { cause: cause() });
        }
        if (overflow) {
          throw new LlmError(scrub(`${where}: the prompt does not fit the model's context (${what})`), { status, attempt, requestId, reason: "context_length" }, { cause: cause() });
        }
        const tripped = countsForBreaker(status, refusal) ? breaker.failed(status, what) : undefined;
        if (tripped) throw new EndpointError(scrub(`${where}: ${tripped}`), { status, attempt, requestId }, { cause: cause() });
        throw new LlmError(scrub(`${where} failed: ${what} (${tries})`), { status, attempt, requestId, retryable }, { cause: cause() });
      }

      // Waiting does not bring back a quota: the account is out of credit, not over a rate.
      if (status === 429 && failure instanceof openai().APIError && failure.code === "insufficient_quota") {
        meter({ failures: 1 });
        throw new EndpointError(
          scrub(`${where}: the account has no quota left (insufficient_quota): add credit or use another key (OPENAI_API_KEY), then rerun the same command to resume`),
          { status, attempt, requestId },
          { cause: cause() },
        );
      }
      failingSince ??= Date.now();
      const asked = retryAfterMs(headers);
      // With no outage wait at all (0), anything the backoff would not wait is already too long.
      if (asked !== undefined && asked > (outageMs > 0 ? outageMs : backoffMax)) {
        // Hours of Retry-After: waiting them out per sample would look like a hang. Stop, and say when to rerun.
        meter({ failures: 1 });
        const until = new Date(Date.now() + asked).toISOString().slice(11, 16);
        throw new EndpointError(
          scrub(`${where}: the server asked to wait ${Math.round(asked / 1000)} s (Retry-After), longer than the outage wait (RXSYNTH_OUTAGE_SECONDS ${outageMs / 1000}): rerun the same command after ${until} UTC to resume`),
          { status, attempt, requestId, retryable: true },
          { cause: cause() },
        );
      }
      if (asked !== undefined && asked > backoffMax && pausedUntil < Date.now() + asked) {
        // A long Retry-After holds every request, not just this one, with one line instead of one per sample.
        pausedUntil = Date.now() + asked;
        (call.log ?? options.log)?.(scrub(`llm: ${where}: the server asked to wait ${Math.round(asked / 1000)} s (Retry-After): pausing every request until then`));
      }
      if (status === 429 && headers) {
        const wait = asked ?? backoffMs(attempt, backoffBase, backoffMax, random);
        if (headerNumber(headers, "x-ratelimit-remaining-requests") === 0) rpmBucket?.pause(wait);
        if (headerNumber(headers, "x-ratelimit-remaining-tokens") === 0) tpmBucket?.pause(wait);
      }
      if (probe) {
        const expired = gate.probeFailed(probe, scrub(what), status, asked);
        if (expired) {
          meter({ failures: 1 });
          throw new EndpointError(expired.message, { status, attempt, requestId, retryable: true }, { cause: cause() });
        }
        continue;
      }
      // Another request already found the endpoint out: wait with the others.
      if (gate.active) continue;
      // Nothing listens there, or the name does not resolve: a fact about the endpoint, not about this
      // request, so the outage's probing (one request at a time) replaces this request's own retries.
      const othersAnswered = gate.lastAnswerAt >= attemptStartedAt;
      // While others get answers, a request that timed out twice is not sent a third time: each timeout
      // re-sends work the server may still be doing.
      const timedOutTwice = othersAnswered && timeouts >= 2 && isTimeout(failure);
      if (retriesLeft > 0 && !timedOutTwice && (othersAnswered || !unreachable(failure))) {
        retriesLeft--;
        const wait = asked ?? backoffMs(attempt, backoffBase, backoffMax, random);
        log(`llm: ${where}: ${what}; retry ${maxRetries - retriesLeft}/${maxRetries} in ${Math.round(wait)} ms` + (asked !== undefined ? " (server asked)" : ""));
        await sleep(wait, signal);
        continue;
      }
      if (othersAnswered) {
        // The endpoint answers others while this request keeps failing: the request's own problem.
        meter({ failures: 1 });
        const tripped = breaker.failed(status, what);
        if (tripped) throw new EndpointError(scrub(`${where}: ${tripped}`), { status, attempt, requestId, retryable }, { cause: cause() });
        const tries = `attempt ${attempt}, ${timedOutTwice ? "timed out twice" : "retries exhausted"}${requestId ? `, request ${requestId}` : ""}`;
        throw new LlmError(scrub(`${where} failed: ${what} (${tries})`), { status, attempt, requestId, retryable }, { cause: cause() });
      }
      if (outageMs === 0) {
        meter({ failures: 1 });
        const error = gate.gaveUp(scrub(what), status, failingSince, attempt);
        throw new EndpointError(error.message, { status, attempt, requestId, retryable: true }, { cause: cause() });
      }
      gate.begin(scrub(what), status, failingSince, options.log ? (line) => options.log!(scrub(line)) : log);
    }
  };

  /**
   * `send` for n choices, also where the endpoint serves one per request (Groq refuses n > 1, Ollama
   * ignores it): then n requests with distinct seeds, merged and cached as the one answer they stand for.
   */
  const sendChoices = async (
    body: Record<string, unknown>,
    n: number,
    request: ChatRequest,
    call: ChatCallOptions,
    signal: AbortSignal,
    meter: (delta: LlmStatsDelta) => void,
  ): Promise<ChatResult> => {
    await detectFamily();
    const requestModel = String(body.model);
    if (n === 1 || !capabilitiesOf(requestModel).n) return n === 1 ? send(body, 1, request, call, signal, meter) : oneByOne(body, n, 0, [], request, call, signal, meter);
    let result: ChatResult;
    try {
      result = await send(body, n, request, call, signal, meter);
    } catch (error) {
      if (error instanceof OneChoicePerRequest) return oneByOne(body, n, 0, [], request, call, signal, meter);
      throw error;
    }
    if (result.choices.length >= n) return result;
    // Fewer choices than asked, and no error: the endpoint ignores n. The rest come one by one.
    learn(requestModel, { n: false });
    (call.log ?? options.log)?.(scrub(`llm: ${requestModel} at ${host}: ${describeChange({ n: false })}`));
    return oneByOne(body, n, result.choices.length, [result], request, call, signal, meter);
  };

  const oneByOne = async (
    body: Record<string, unknown>,
    n: number,
    from: number,
    earlier: ChatResult[],
    request: ChatRequest,
    call: ChatCallOptions,
    signal: AbortSignal,
    meter: (delta: LlmStatsDelta) => void,
  ): Promise<ChatResult> => {
    const seed = typeof body.seed === "number" ? body.seed : 0;
    // One failing part fails the call; the others stop rather than bill tokens nobody will read.
    const parts = new AbortController();
    const stop = () => parts.abort(signal.reason);
    signal.addEventListener("abort", stop, { once: true });
    let singles: ChatResult[];
    try {
      singles = await Promise.all(
        Array.from({ length: n - from }, (_, k) => {
          const index = from + k;
          const part: ChatCallOptions = {
            ...call,
            cacheIndex: `${call.cacheIndex ?? 0}:${index}`,
            ...(call.onDelta ? { onDelta: (_choice: number, text: string) => call.onDelta!(index, text) } : {}),
          };
          return send({ ...body, seed: seed + index }, 1, { ...request, n: 1 }, part, parts.signal, meter).catch((error: unknown) => {
            parts.abort(error);
            throw error;
          });
        }),
      );
    } finally {
      signal.removeEventListener("abort", stop);
    }
    const answers = [...earlier, ...singles];
    const choices = answers.flatMap((answer) => answer.choices).slice(0, n).map((choice, index) => ({ ...choice, index }));
    const merged: ChatResult = {
      choices,
      model: answers[0]!.model,
      usage: {
        promptTokens: answers.reduce((sum, answer) => sum + answer.usage.promptTokens, 0),
        completionTokens: answers.reduce((sum, answer) => sum + answer.usage.completionTokens, 0),
      },
      latencyMs: Math.max(...answers.map((answer) => answer.latencyMs)),
      requestId: answers[0]!.requestId,
      cached: false,
      attempts: answers.reduce((sum, answer) => sum + answer.attempts, 0),
      costUsd: answers.reduce((sum, answer) => sum + answer.costUsd, 0),
    };
    await store(body, call.cacheIndex ?? 0, merged);
    return merged;
  };

  const join = (flight: Flight, signal: AbortSignal | undefined): Promise<ChatResult> => {
    flight.waiters++;
    if (!signal) return flight.promise;
    if (signal.aborted) {
      if (--flight.waiters === 0) flight.controller.abort(signal.reason);
      return Promise.reject(signal.reason);
    }
    return new Promise<ChatResult>((resolve, reject) => {
      const onAbort = () => {
        // The shared request stops only when every caller waiting on it has given up.
        if (--flight.waiters === 0) flight.controller.abort(signal.reason);
        reject(signal.reason);
      };
      signal.addEventListener("abort", onAbort, { once: true });
      flight.promise.then(
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

  const chat = async (request: ChatRequest, call: ChatCallOptions = {}): Promise<ChatResult> => {
    if (closed) throw new ConfigError("llm.chat called after llm.close()");
    const n = request.n ?? 1;
    if (!Number.isInteger(n) || n < 1) throw new ConfigError(`llm.chat: n must be an integer >= 1, got ${n}`);
    if (!Array.isArray(request.messages) || request.messages.length === 0) {
      throw new ConfigError("llm.chat: messages must be a non-empty array");
    }
    const meter = (delta: LlmStatsDelta) => {
      for (const [key, value] of Object.entries(delta) as Array<[keyof LlmStatsDelta, number]>) {
        if (key !== "latencySeconds") totals[key] += value;
      }
      call.meter?.(delta);
    };
    const body = requestBody(request, model, options.seed);
    const cacheIndex = call.cacheIndex ?? 0;

    if (cache) {
      const hits: CachedChoice[] = [];
      for (let i = 0; i < n; i++) {
        let hit: CachedChoice | undefined;
        try {
          hit = cache.get(choiceKey(endpointId, body, cacheIndex, i));
        } catch (error) {
          throw new CacheError(`the response cache could not be read (${errorMessage(error)}): fix the cache folder (RXSYNTH_CACHE_DIR) or pass --no-cache`, { cause: error });
        }
        if (!hit) break;
        hits.push(hit);
      }
      if (hits.length === n) {
        meter({ cacheHits: 1 });
        return fromCache(hits);
      }
    }

    // Plain JSON, not a canonical hash: coalescing needs equal requests, and ours are built in one key order.
    const flightKey = `${n}\u0000${cacheIndex}\u0000${JSON.stringify(body)}`;
    const existing = flights.get(flightKey);
    if (existing) {
      meter({ coalesced: 1 });
      const shared = await join(existing, call.signal);
      return { ...shared, attempts: 0, costUsd: 0 };
    }
    const controller = new AbortController();
    const flight: Flight = {
      controller,
      waiters: 0,
      promise: sendChoices(body, n, request, call, controller.signal, meter).finally(() => flights.delete(flightKey)),
    };
    // Callers that all abort leave the promise rejected with nobody listening; that is expected.
    flight.promise.catch(() => {});
    flights.set(flightKey, flight);
    return join(flight, call.signal);
  };

  return {
    model,
    baseURL,
    get supportsJsonSchema() {
      return capabilitiesOf(model).jsonSchema;
    },
    concurrency: fleet.members.reduce((sum, member) => sum + member.concurrency.max, 0),
    chat,
    stats: () => ({ ...totals }),
    limits: () => ({
      concurrency: fleet.limit,
      inFlight: fleet.inFlight,
      rpm: rpmBucket?.limit,
      tpm: tpmBucket?.limit,
    }),
    fleet: () => fleet.view(),
    async close() {
      if (closed) return;
      closed = true;
      for (const flight of flights.values()) flight.controller.abort(new Error("llm closed"));
      gate.close(new Error("llm closed"));
      for (const member of fleet.members) member.handle.transport?.close();
      if (opened?.owned) await opened.store.close();
    },
  };
}

/**
 * A 400 that says the prompt (or prompt + cap) exceeds the model's context: OpenAI's context_length_exceeded,
 * vLLM's and llama.cpp's wordings. `fits`: the cap that would fit, when the server said how the request splits.
 */
function contextOverflow(message: string, code: string | null | undefined): { fits?: number } | undefined {
  const limit = /maximum context length is (\d+) tokens/i.exec(message) ?? /context (?:size|length|window)[^.]*?(\d+) tokens/i.exec(message);
  if (!limit && code !== "context_length_exceeded" && !/exceeds? the (?:available )?context/i.test(message)) return undefined;
  // Older vLLM: "(P in the messages, C in the completion)"; newer: "your request has P input tokens (C > L - P)".
  const split = /\((\d+) in the messages, (\d+) in the completion\)/.exec(message) ?? /request has (\d+) input tokens \((\d+) > /.exec(message);
  if (limit && split) {
    const fits = Number(limit[1]) - Number(split[1]);
    if (fits > 0 && fits < Number(split[2])) return { fits };
  }
  return {};
}

/**
 * Whether a failed call speaks for the configuration rather than for its sample: server errors, and refusals
 * that name a parameter or the chat template. A content filter or a too-long input is the sample's own.
 */
function countsForBreaker(status: number | undefined, refusal: { message: string; param?: string | null; code?: string | null } | undefined): boolean {
  if (status === undefined || status >= 500) return true;
  if (!refusal || status < 400) return false;
  // Refusals of one sample's content, however alike their wording, are that sample's verdict.
  if (["content_filter", "invalid_prompt", "content_policy_violation", "string_above_max_length"].includes(refusal.code ?? "")) return false;
  return !/content (management )?policy|flagged|safety system/i.test(refusal.message);
}

/** The endpoint refused n > 1 by name: the call is served one choice per request instead. */
class OneChoicePerRequest extends Error {}

/** Parameters an endpoint may refuse one after another (max_tokens, then temperature, then stream_options...). */
const MAX_ADAPTATIONS = 5;

/** The error body's own message (the SDK's `message` prefixes the status). */
function errorBodyMessage(error: { readonly error?: unknown; readonly message: string }): string {
  const body = error.error as { message?: unknown } | undefined;
  return typeof body?.message === "string" ? body.message : error.message;
}

/** Finish reasons of answers worth caching: finished, cut at the cap, or stopped by the provider's filter. */

/** Reasoning fields some servers add to a message or a stream delta (not in the openai types). */
interface ReasoningFields {
  readonly reasoning?: unknown;
  readonly reasoning_content?: unknown;
}

function reasoningDelta(delta: ReasoningFields | undefined): string {
  const value = delta?.reasoning ?? delta?.reasoning_content;
  return typeof value === "string" ? value : "";
}

/** The status an error event in a stream carries in its `code` (vLLM: 400, 500...), when it does. */
function streamedStatus(failure: { readonly error?: unknown }): number | undefined {
  const code = (failure.error as { code?: unknown } | undefined)?.code;
  const status = typeof code === "number" ? code : typeof code === "string" && /^\d{3}$/.test(code) ? Number(code) : undefined;
  return status !== undefined && status >= 400 && status < 600 ? status : undefined;
}

/**
 * What a failed attempt says about the server that took it: connection errors, timeouts and 5xx are its
 * failures; any other status is an answer (a 429 is load, which its adaptive cap handles).
 */
function serverHealth(failure: unknown): MemberHealth {
  if (failure instanceof openai().APIUserAbortError) return "none";
  if (failure instanceof openai().APIError) {
    const status = failure.status ?? streamedStatus(failure);
    if (status !== undefined) return status >= 500 ? "failed" : "answered";
  }
  return "failed";
}

function isTimeout(failure: unknown): boolean {
  return failure instanceof AttemptTimeout || failure instanceof openai().APIConnectionTimeoutError;
}

function describeFailure(failure: unknown, timeoutMs: number): string {
  if (failure instanceof AttemptTimeout || failure instanceof openai().APIConnectionTimeoutError) {
    return `no complete answer within ${timeoutMs} ms`;
  }
  if (failure instanceof openai().APIError) {
    if (failure.status !== undefined || streamedStatus(failure) !== undefined) return failure.message;
    const cause = (failure as { cause?: unknown }).cause;
    return `connection error (${cause ? errorMessage(cause) : failure.message})`;
  }
  if (failure instanceof Error) {
    const cause = (failure as { cause?: unknown }).cause;
    const detail = cause ? `: ${errorMessage(cause)}` : "";
    return `connection lost while reading the answer (${failure.name}: ${failure.message}${detail})`;
  }
  return String(failure);
}

const UNREACHABLE_CODES = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH"]);

/** Whether a failure says the endpoint cannot be reached at all (found in the cause chain the SDK wraps it in). */
function unreachable(failure: unknown): boolean {
  let current: unknown = failure;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string" && UNREACHABLE_CODES.has(code)) return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}

/** A plain copy of the failure for `cause`: the SDK's error objects hold more than we want to keep. */
function scrubbedCause(failure: unknown, scrub: (text: string) => string): Error {
  const copy = new Error(scrub(errorMessage(failure)));
  copy.name = failure instanceof Error ? failure.name : "Error";
  return copy;
}
