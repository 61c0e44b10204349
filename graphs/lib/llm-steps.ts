// Small steps the ready graphs share: the first N records of a source, seeded picks, and the text helpers
// their rules use. LLM calls are operators: `llmMap` and `asker` in operators/generate/llm-map.ts.
import { ConfigError, type Sample, type SampleData, type Source } from "../../src/index.ts";
import { Rng } from "../../src/sim/random.ts";

/** The first `count` records of a source (positions 0 .. count-1), so a graph's `count` option caps any input. */
export function firstRecords(source: Source, count: number): Source {
  if (!Number.isInteger(count) || count < 0) throw new ConfigError(`count must be a non-negative integer, got ${count}`);
  return {
    name: source.name,
    origin: source.origin,
    fields: source.fields,
    async size() {
      const size = await source.size?.();
      return size === undefined ? undefined : Math.min(size, count);
    },
    async *batches(options) {
      if (options.from >= count) return;
      for await (const batch of source.batches(options)) {
        const kept = batch.filter((item) => item.position < count);
        if (kept.length > 0) yield kept;
        if (kept.length < batch.length || (kept.at(-1)?.position ?? count) >= count - 1) return;
      }
    },
  };
}

/** A generator seeded by a key: the same key picks the same items, in any run and any order of work. */
export function seededRng(...key: readonly unknown[]): Rng {
  return new Rng(key.map(String).join("\u0000"));
}

/** `k` distinct items of `items`, in random order (a partial Fisher-Yates shuffle). */
export function pickDistinct<T>(rng: Rng, items: readonly T[], k: number): T[] {
  const pool = [...items];
  const count = Math.min(k, pool.length);
  for (let i = 0; i < count; i++) {
    const j = i + Math.floor(rng.next() * (pool.length - i));
    [pool[i], pool[j]] = [pool[j]!, pool[i]!];
  }
  return pool.slice(0, count);
}

/** Whitespace-separated words; the unit the graphs' length rules count. */
export function wordCount(text: string): number {
  const trimmed = text.trim();
  return trimmed.length === 0 ? 0 : trimmed.split(/\s+/).length;
}

/** A string data field, "" when missing. */
export function text(sample: Sample, field: string): string {
  const value = sample.data[field];
  return typeof value === "string" ? value : value === undefined || value === null ? "" : String(value);
}

/** The data without the named keys (working fields a graph does not want in its output). */
export function without(data: SampleData, ...keys: readonly string[]): SampleData {
  const out: SampleData = {};
  for (const [key, value] of Object.entries(data)) if (!keys.includes(key)) out[key] = value;
  return out;
}
