// Seeded synthetic corpora for the curation tests and benchmarks: documents of made-up words (a fifth of
// them stop words, so the Gopher rules keep them) with planted near-duplicates and exact copies. Nothing
// here is downloaded, and the same seed writes the same bytes on every machine.
import { createWriteStream } from "node:fs";
import { once } from "node:events";

/** mulberry32: a small seeded generator, uniform in [0, 1). */
export function mulberry32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const STOP_WORDS = ["the", "be", "to", "of", "and", "that", "have", "with"] as const;

/** `count` distinct made-up words of 2-4 syllables (3-12 letters). */
export function madeUpWords(count: number, seed = 7): string[] {
  const next = mulberry32(seed);
  const onsets = ["b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "st", "tr", "pl"];
  const vowels = ["a", "e", "i", "o", "u"];
  const words = new Set<string>();
  while (words.size < count) {
    const syllables = 2 + Math.floor(next() * 3);
    let word = "";
    for (let s = 0; s < syllables; s++) word += onsets[Math.floor(next() * onsets.length)]! + vowels[Math.floor(next() * vowels.length)]!;
    words.add(word);
  }
  return [...words];
}

export interface CorpusOptions {
  readonly seed?: number;
  /** Share of documents that copy a recent one with one word changed. Default 0.05. */
  readonly nearDuplicates?: number;
  /** Share of documents that copy a recent one exactly. Default 0.02. */
  readonly exactCopies?: number;
}

/**
 * Writes `count` JSONL documents `{id, text}` (60-150 words) to `path`, streaming, so a corpus of
 * millions never sits in memory; copies are drawn from the last 2,000 documents. Resolves to the counts planted.
 */
export async function writeDocuments(path: string, count: number, options: CorpusOptions = {}): Promise<{ documents: number; nearDuplicates: number; exactCopies: number }> {
  const next = mulberry32(options.seed ?? 20261203);
  const words = madeUpWords(5_000);
  const pick = <T>(list: readonly T[]) => list[Math.floor(next() * list.length)]!;
  const recent: string[] = [];
  const out = createWriteStream(path);
  let near = 0;
  let exact = 0;
  for (let i = 0; i < count; i++) {
    const roll = next();
    let text: string;
    if (recent.length > 0 && roll < (options.exactCopies ?? 0.02)) {
      text = pick(recent);
      exact++;
    } else if (recent.length > 0 && roll < (options.exactCopies ?? 0.02) + (options.nearDuplicates ?? 0.05)) {
      const copy = pick(recent).split(" ");
      copy[1 + Math.floor(next() * (copy.length - 2))] = pick(words);
      text = copy.join(" ");
      near++;
    } else {
      const length = 60 + Math.floor(next() * 90);
      text = `${Array.from({ length }, () => (next() < 0.2 ? pick(STOP_WORDS) : pick(words))).join(" ")}.`;
    }
    if (recent.length < 2_000) recent.push(text);
    else recent[Math.floor(next() * recent.length)] = text;
    if (!out.write(`${JSON.stringify({ id: `doc-${i}`, text })}\n`)) await once(out, "drain");
  }
  out.end();
  await once(out, "finish");
  return { documents: count, nearDuplicates: near, exactCopies: exact };
}
