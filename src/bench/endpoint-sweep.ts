import { setMaxListeners } from "node:events";
import { ConfigError, EndpointError, LlmError, errorMessage } from "../errors.ts";
import { createLlm, type Llm } from "../llm/index.ts";
import { findKnee, type Knee, type KneeOptions } from "./knee.ts";
import { spread, type Spread } from "./percentile.ts";
import { PROMPT_MIX, mixRequest } from "./prompt-mix.ts";

export interface SweepOptions extends KneeOptions {
  /** The endpoint, usually ending in /v1. */
  readonly baseURL: string;
  /** Default: RXSYNTH_MODEL, else the first model the server's GET /models lists. */
  readonly model?: string;
  /** Default: OPENAI_API_KEY, else none. */
  readonly apiKey?: string;
  /** Concurrency levels, run in ascending order. Default 1, 4, 16, 64, 256. */
  readonly levels?: readonly number[];
  /** Each level measures at least this many requests, and at least one per concurrent worker. Default 32. */
  readonly requests?: number;
  /** ...and for at least this many seconds. Default 10. */
  readonly seconds?: number;
  /** Limit of one request, body included. Default 120 000 ms. */
  readonly timeoutMs?: number;
  /** Told of each level once it is measured (progress for a long sweep). */
  readonly onLevel?: (level: LevelResult) => void;
  readonly signal?: AbortSignal;
}

export const SWEEP_DEFAULTS = { levels: [1, 4, 16, 64, 256], requests: 32, seconds: 10, timeoutMs: 120_000 } as const;

/** What one concurrency level measured, over its window (warm-up and drain left out). */
export interface LevelResult {
  readonly concurrency: number;
  /** Requests answered within the window. */
  readonly requests: number;
  /** Requests that failed within the window, and why (HTTP status, or the error's first words). */
  readonly errors: number;
  readonly errorKinds: Readonly<Record<string, number>>;
  /** Length of the window. */
  readonly seconds: number;
  readonly requestsPerS: number;
  readonly outputTokensPerS: number;
  /** End-to-end latency of the answered requests, in ms. */
  readonly latencyMs: Spread;
  /** Time to the first streamed token of the answer, in ms (answers with no text are left out). */
  readonly ttftMs: Spread;
  /**
   * CPU this process used over the window, in cores (1 = one core busy throughout). Near 1 the figures are
   * the client's limit, not the server's: the stream's parsing runs on one thread.
   */
  readonly clientCpu: number;
}

export interface SweepResult {
  readonly baseURL: string;
  readonly model: string;
  readonly client: string;
  readonly promptMix: readonly { kind: string; maxTokens: number }[];
  readonly settings: { readonly requests: number; readonly seconds: number; readonly levels: readonly number[] };
  readonly levels: readonly LevelResult[];
  readonly knee: Knee;
  readonly startedAt: string;
  readonly elapsedS: number;
}

/** The system error code somewhere in an error's causes or messages (ECONNREFUSED, ENOTFOUND, ...), else the deepest cause's message. */
function rootCause(error: unknown): string {
  let deepest = error;
  for (let at: unknown = error, depth = 0; at && depth < 8; at = (at as { cause?: unknown }).cause, depth++) {
    const code = (at as { code?: unknown }).code ?? (at as { errors?: Array<{ code?: unknown }> }).errors?.[0]?.code;
    if (typeof code === "string" && /^E[A-Z_]+$/.test(code)) return code;
    const named = /\b(E(?:CONN[A-Z]+|NOTFOUND|AI_AGAIN|TIMEDOUT|HOSTUNREACH|NETUNREACH))\b/.exec(errorMessage(at));
    if (named) return named[1]!;
    deepest = at;
  }
  return errorMessage(deepest);
}

/** The first model the server lists, so a single-model server (vLLM, llama.cpp) needs no --model. */
async function listedModel(baseURL: string, apiKey: string | undefined): Promise<string> {
  const url = `${baseURL.replace(/\/+$/, "")}/models`;
  let response: Response;
  try {
    response = await fetch(url, { headers: apiKey ? { authorization: `Bearer ${apiKey}` } : {}, signal: AbortSignal.timeout(10_000) });
  } catch (error) {
    throw new EndpointError(`cannot reach ${baseURL} (${rootCause(error)}): check --base-url`, { attempt: 1 }, { cause: error });
  }
  if (response.status === 401 || response.status === 403) {
    throw new EndpointError(`${baseURL} refused the API key (HTTP ${response.status}): check OPENAI_API_KEY`, { attempt: 1, status: response.status });
  }
  const body = (await response.json().catch(() => undefined)) as { data?: Array<{ id?: unknown }> } | undefined;
  const id = response.ok ? body?.data?.find((entry) => typeof entry.id === "string")?.id : undefined;
  if (typeof id !== "string") {
    throw new ConfigError(`${url} answered HTTP ${response.status} without a model list: pass --model (or set RXSYNTH_MODEL)`);
  }
  return id;
}

function errorKind(error: unknown): string {
  if (error instanceof LlmError && error.status !== undefined) return `http_${error.status}`;
  return errorMessage(error).split(/[:(]/)[0]!.trim().slice(0, 60) || "error";
}

/** One finished request: when, how long, and what it produced. */
interface Observation {
  readonly endedAt: number;
  readonly latencyMs: number;
  readonly ttftMs: number | undefined;
  readonly outputTokens: number;
  readonly error: string | undefined;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * One level, closed loop: `concurrency` workers each send a request as soon as their previous one ends.
 * The window opens once every worker has had one answer (connections open, the server's queue at its
 * steady length) and closes when it holds enough requests and seconds; the requests still in flight
 * then finish outside it, before the next level starts.
 */
async function measureLevel(llm: Llm, concurrency: number, minRequests: number, minSeconds: number, next: () => number, signal?: AbortSignal): Promise<LevelResult> {
  const observations: Observation[] = [];
  let warmedUp = 0;
  let windowStart: number | undefined;
  let windowEnd: number | undefined;
  let inWindow = 0;
  let cpuAtStart: NodeJS.CpuUsage | undefined;
  let cpuInWindow: NodeJS.CpuUsage | undefined;
  const wanted = Math.max(minRequests, concurrency);
  // Requests still out when the window closes are cancelled, not awaited: they are not counted, and the
  // next level should not start behind the queue this one left on the server.
  const closed = new AbortController();
  const requestSignal = signal ? AbortSignal.any([signal, closed.signal]) : closed.signal;
  // Every worker's request listens on it; the level's concurrency already bounds them.
  setMaxListeners(0, closed.signal, requestSignal);

  const worker = async () => {
    let first = true;
    while (windowEnd === undefined && !signal?.aborted) {
      const index = next();
      const { messages, maxTokens } = mixRequest(index);
      const startedAt = performance.now();
      let firstTokenAt: number | undefined;
      let outputTokens = 0;
      let error: string | undefined;
      try {
        const result = await llm.chat(
          { messages, max_tokens: maxTokens, seed: index, temperature: 0.7, stream: true },
          { signal: requestSignal, onDelta: () => (firstTokenAt ??= performance.now()) },
        );
        outputTokens = result.usage.completionTokens;
      } catch (caught) {
        if (requestSignal.aborted) return;
        error = errorKind(caught);
      }
      const endedAt = performance.now();
      if (first) {
        first = false;
        if (++warmedUp === concurrency) {
          windowStart = endedAt;
          cpuAtStart = process.cpuUsage();
        }
      } else if (windowStart !== undefined && windowEnd === undefined) {
        observations.push({ endedAt, latencyMs: endedAt - startedAt, ttftMs: firstTokenAt === undefined ? undefined : firstTokenAt - startedAt, outputTokens, error });
        if (++inWindow >= wanted && endedAt - windowStart >= minSeconds * 1_000) {
          windowEnd = endedAt;
          cpuInWindow = process.cpuUsage(cpuAtStart);
          closed.abort();
        }
      }
      // A server that refuses at once would otherwise be asked again in a tight loop.
      if (error) await sleep(50);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : new Error("sweep stopped");

  const seconds = ((windowEnd ?? performance.now()) - (windowStart ?? performance.now())) / 1_000;
  const answered = observations.filter((o) => o.error === undefined);
  const errorKinds: Record<string, number> = {};
  for (const o of observations) if (o.error !== undefined) errorKinds[o.error] = (errorKinds[o.error] ?? 0) + 1;
  const perSecond = (value: number) => (seconds > 0 ? value / seconds : 0);
  return {
    concurrency,
    requests: answered.length,
    errors: observations.length - answered.length,
    errorKinds,
    seconds,
    requestsPerS: perSecond(answered.length),
    outputTokensPerS: perSecond(answered.reduce((sum, o) => sum + o.outputTokens, 0)),
    latencyMs: spread(answered.map((o) => o.latencyMs)),
    ttftMs: spread(answered.flatMap((o) => (o.ttftMs === undefined ? [] : [o.ttftMs]))),
    clientCpu: cpuInWindow && seconds > 0 ? (cpuInWindow.user + cpuInWindow.system) / 1e6 / seconds : 0,
  };
}

function checkedLevels(levels: readonly number[]): number[] {
  const sorted = [...new Set(levels)].sort((a, b) => a - b);
  if (sorted.length === 0 || sorted.some((level) => !Number.isInteger(level) || level < 1)) {
    throw new ConfigError(`--levels expects positive integers like 1,4,16,64, got ${levels.join(",")}`);
  }
  return sorted;
}

/**
 * A concurrency sweep of one endpoint with rxsynth's own client (src/llm), streaming: the figures are those
 * a run would see through the same client, and the stream gives the time to first token. The client's
 * retries, adaptive cap and cache are off, so each error is counted where it happened instead of being
 * hidden in a longer latency, and its cap is the highest level, so only the level's workers bound what is
 * in flight. One request is sent before the sweep, so a wrong URL, key or model stops it at once.
 */
export async function sweepEndpoint(options: SweepOptions): Promise<SweepResult> {
  const levels = checkedLevels(options.levels ?? SWEEP_DEFAULTS.levels);
  const requests = options.requests ?? SWEEP_DEFAULTS.requests;
  const seconds = options.seconds ?? SWEEP_DEFAULTS.seconds;
  const apiKey = options.apiKey ?? process.env.OPENAI_API_KEY;
  const model = options.model ?? (process.env.RXSYNTH_MODEL?.trim() || (await listedModel(options.baseURL, apiKey)));
  const started = performance.now();
  const startedAt = new Date().toISOString();
  const llm = createLlm({
    baseURL: options.baseURL,
    model,
    apiKey,
    concurrency: levels[levels.length - 1]!,
    maxRetries: 0,
    adaptive: false,
    outageSeconds: 0,
    breakerFailures: Number.MAX_SAFE_INTEGER,
    timeoutMs: options.timeoutMs ?? SWEEP_DEFAULTS.timeoutMs,
    cache: false,
  });
  try {
    let counter = 0;
    const next = () => counter++;
    try {
      const probe = mixRequest(next());
      await llm.chat({ messages: probe.messages, max_tokens: probe.maxTokens, stream: true }, { signal: options.signal });
    } catch (error) {
      const status = error instanceof LlmError ? error.status : undefined;
      // The client's own line for an unreachable endpoint talks of resuming a run; a sweep has nothing to resume.
      if (status === undefined && !options.signal?.aborted) {
        throw new EndpointError(`cannot reach ${options.baseURL} (${rootCause(error)}): check --base-url`, { attempt: 1 }, { cause: error });
      }
      if (error instanceof EndpointError) throw error;
      throw new EndpointError(`the first request to ${options.baseURL} (model ${model}) failed: ${errorMessage(error)}`, { attempt: 1, status }, { cause: error });
    }
    const results: LevelResult[] = [];
    for (const concurrency of levels) {
      const level = await measureLevel(llm, concurrency, requests, seconds, next, options.signal);
      results.push(level);
      options.onLevel?.(level);
    }
    const answered = results.filter((level) => level.requests > 0);
    if (answered.length === 0) {
      throw new EndpointError(`${options.baseURL} answered no request of the sweep (${Object.keys(results[0]!.errorKinds).join(", ")})`, { attempt: 1 });
    }
    const knee = findKnee(
      results.map((level) => ({
        concurrency: level.concurrency,
        throughput: level.requestsPerS,
        latencyP50: level.latencyMs.p50 / 1_000,
        latencyP95: level.latencyMs.p95 / 1_000,
      })),
      options,
    );
    return {
      baseURL: options.baseURL,
      model,
      client: "rxsynth createLlm (openai package), streaming; retries, adaptive cap and cache off",
      promptMix: PROMPT_MIX.map(({ kind, maxTokens }) => ({ kind, maxTokens })),
      settings: { requests, seconds, levels },
      levels: results,
      knee,
      startedAt,
      elapsedS: (performance.now() - started) / 1_000,
    };
  } finally {
    await llm.close();
  }
}
