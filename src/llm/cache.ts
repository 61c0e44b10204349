import type { RootDatabase } from "lmdb";
import { lazyModule } from "./lazy.ts";
import { stableHash } from "../hash.ts";
import type { FinishReason } from "./types.ts";

const lmdb = lazyModule<typeof import("lmdb")>("lmdb");

/** One stored completion: what a later identical call gets back without sending anything. */
export interface CachedChoice {
  readonly text: string;
  readonly finishReason: FinishReason;
  readonly refusal?: string;
  readonly completionTokens: number;
  readonly promptTokens: number;
  readonly model: string;
  readonly requestId?: string;
  readonly at: number;
}

/**
 * Key of choice `choice` of a request. `request` is the canonical request without `n` and transport
 * settings, so asking for 3 completions and later for 2 of the same prompt reuses the first two;
 * `cacheIndex` separates calls that must not share answers (a retry after a bad answer).
 */
export function choiceKey(request: unknown, cacheIndex: string | number, choice: number): string {
  return stableHash({ request, cacheIndex, choice }, 32);
}

/** Persistent response cache on LMDB: reads are synchronous and cheap; writes batch into one commit per tick. */
export class ResponseCache {
  private constructor(private readonly db: RootDatabase<CachedChoice, string>) {}

  static open(path: string): ResponseCache {
    return new ResponseCache(lmdb().open<CachedChoice, string>({ path, compression: true }));
  }

  get(key: string): CachedChoice | undefined {
    return this.db.get(key);
  }

  /** Resolves once the entry is committed, so an answer is never returned before it is safe on disk. */
  async put(key: string, value: CachedChoice): Promise<void> {
    await this.db.put(key, value);
  }

  close(): Promise<void> {
    return this.db.close();
  }
}
