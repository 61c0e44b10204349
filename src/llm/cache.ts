import { readdirSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import type { RootDatabase } from "lmdb";
import { lazyModule } from "./lazy.ts";
import { CacheError, errorMessage } from "../errors.ts";
import { stableHash } from "../hash.ts";
import type { ChatRequest, ChatResult, FinishReason } from "./types.ts";

const lmdb = lazyModule<typeof import("lmdb")>("lmdb");

/** One stored completion: what a later identical call gets back without sending anything. */
export interface CachedChoice {
  readonly text: string;
  readonly finishReason: FinishReason;
  readonly refusal?: string;
  readonly reasoning?: string;
  readonly completionTokens: number;
  readonly promptTokens: number;
  readonly model: string;
  readonly requestId?: string;
  readonly at: number;
}

/** What the client needs of a response cache; `ResponseCache` is the LMDB one (tests inject others). */
export interface ResponseStore {
  get(key: string): CachedChoice | undefined;
  /** Resolves once the entry is safe on disk. */
  put(key: string, value: CachedChoice): Promise<void>;
  close(): Promise<void>;
}

/** Value of RXSYNTH_CACHE_DIR that turns the default cache off. */
export const CACHE_OFF = "off";

/**
 * Where responses are cached when nothing else is said: RXSYNTH_CACHE_DIR, else
 * `$XDG_CACHE_HOME/rxsynth/llm`, else `~/.cache/rxsynth/llm`. Outside any run folder, so a new folder
 * (a changed filter downstream) reuses every answer already paid for. False when RXSYNTH_CACHE_DIR is "off".
 */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string | false {
  const configured = env.RXSYNTH_CACHE_DIR?.trim();
  if (configured) return configured.toLowerCase() === CACHE_OFF ? false : resolve(configured);
  const xdg = env.XDG_CACHE_HOME?.trim();
  return join(xdg ? resolve(xdg) : join(homedir(), ".cache"), "rxsynth", "llm");
}

/**
 * Key of choice `choice` of a request. `request` is the canonical request without `n` and transport
 * settings, so asking for 3 completions and later for 2 of the same prompt reuses the first two;
 * `cacheIndex` separates calls that must not share answers (a retry after a bad answer); `endpoint`
 * says who answers (a base URL, or the built-in simulator and its seed), since one cache folder serves
 * every endpoint and two servers answer the same model name differently.
 */
export function choiceKey(endpoint: string, request: unknown, cacheIndex: string | number, choice: number): string {
  return stableHash({ endpoint, request, cacheIndex, choice }, 32);
}

/**
 * Persistent response cache on LMDB: reads are synchronous and cheap; writes batch into one commit per
 * tick. LMDB locks across processes, so several runs may share one folder at once.
 */
export class ResponseCache implements ResponseStore {
  private constructor(
    private readonly db: RootDatabase<CachedChoice, string>,
    readonly path: string,
  ) {}

  static open(path: string): ResponseCache {
    try {
      // Always a folder (data.mdb, lock.mdb): lmdb would take a path with a dot in its last part for a file.
      return new ResponseCache(lmdb().open<CachedChoice, string>({ path, compression: true, noSubdir: false }), path);
    } catch (error) {
      throw new CacheError(`cannot open the response cache at ${path} (${errorMessage(error)}): set RXSYNTH_CACHE_DIR to a writable folder, or pass --no-cache`, { cause: error });
    }
  }

  get(key: string): CachedChoice | undefined {
    return this.db.get(key);
  }

  async put(key: string, value: CachedChoice): Promise<void> {
    await this.db.put(key, value);
  }

  /** Entries stored, and bytes the folder takes on disk. */
  info(): { entries: number; bytes: number } {
    return { entries: this.db.getCount(), bytes: folderBytes(this.path) };
  }

  /** Removes the entries stored before `before` (ms since the epoch; Infinity: all); returns how many. */
  async prune(before: number): Promise<number> {
    if (before === Infinity) {
      const entries = this.db.getCount();
      await this.db.clearAsync();
      return entries;
    }
    const stale: string[] = [];
    for (const { key, value } of this.db.getRange()) if (!(value.at >= before)) stale.push(key);
    await this.db.transaction(() => {
      for (const key of stale) void this.db.remove(key);
    });
    return stale.length;
  }

  close(): Promise<void> {
    return this.db.close();
  }
}

function folderBytes(path: string): number {
  let bytes = 0;
  for (const name of readdirSync(path)) {
    const info = statSync(join(path, name));
    if (info.isFile()) bytes += info.size;
  }
  return bytes;
}

/** A result read back from the cache (what the online client's cache hits give). */
export function fromCache(hits: readonly CachedChoice[]): ChatResult {
  const first = hits[0]!;
  return {
    choices: hits.map((hit, index) => ({
      index,
      text: hit.text,
      finishReason: hit.finishReason,
      ...(hit.refusal ? { refusal: hit.refusal } : {}),
      ...(hit.reasoning ? { reasoning: hit.reasoning } : {}),
      completionTokens: hit.completionTokens,
    })),
    model: first.model,
    usage: { promptTokens: first.promptTokens, completionTokens: hits.reduce((sum, hit) => sum + hit.completionTokens, 0) },
    latencyMs: 0,
    requestId: first.requestId,
    cached: true,
    attempts: 0,
    costUsd: 0,
  };
}

/** Finish reasons of answers worth caching (finished, cut at the cap, filtered); unfinished work is asked again. */
const FINAL_REASONS: ReadonlySet<string> = new Set(["stop", "length", "content_filter", "tool_calls", "function_call"]);

/** The cache entries of a result, choice by choice (`keys[i]` is choice i's key); unfinished choices are not kept. */
export function cacheEntries(result: Pick<ChatResult, "choices" | "model" | "usage" | "requestId">, keys: readonly string[], at: number): Array<[string, CachedChoice]> {
  const entries: Array<[string, CachedChoice]> = [];
  for (const choice of result.choices) {
    const key = keys[choice.index];
    if (key === undefined || !FINAL_REASONS.has(choice.finishReason)) continue;
    entries.push([
      key,
      {
        text: choice.text,
        finishReason: choice.finishReason,
        ...(choice.refusal ? { refusal: choice.refusal } : {}),
        ...(choice.reasoning ? { reasoning: choice.reasoning } : {}),
        completionTokens: choice.completionTokens,
        promptTokens: result.usage.promptTokens,
        model: result.model,
        ...(result.requestId ? { requestId: result.requestId } : {}),
        at,
      },
    ]);
  }
  return entries;
}

/**
 * The body a request is sent and cached under, field by field in one order: the online and the batch
 * client key the cache with it, so each finds the other's answers.
 */
export function requestBody(request: ChatRequest, model: string, seed: number | undefined): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  const fields = {
    model: request.model ?? model,
    messages: request.messages,
    temperature: request.temperature,
    top_p: request.top_p,
    max_tokens: request.max_tokens,
    seed: request.seed ?? seed,
    stop: request.stop,
    presence_penalty: request.presence_penalty,
    frequency_penalty: request.frequency_penalty,
    response_format: request.response_format,
  };
  for (const [key, value] of Object.entries(fields)) if (value !== undefined) body[key] = value;
  return body;
}
