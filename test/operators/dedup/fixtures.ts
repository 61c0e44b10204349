import { createSample, type Origin, type Sample } from "../../../src/index.ts";
import { seededRandom as random } from "../../../operators/diversity/sketches.ts";

/** Seeded uniform generator in [0, 1): the one the library uses. */
export { seededRandom as random } from "../../../operators/diversity/sketches.ts";

const SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "ta", "shi", "po", "ve", "zu", "an", "er", "in", "or", "ul", "de", "ga", "fi"];

/** A seeded generator of unrelated prose-like documents and of copies with words edited at a known rate. */
export function corpus(seed: number) {
  const next = random(seed);
  const vocabulary: string[] = [];
  const seen = new Set<string>();
  while (vocabulary.length < 5000) {
    let word = "";
    const syllables = 1 + Math.floor(next() * 3);
    for (let i = 0; i < syllables; i++) word += SYLLABLES[Math.floor(next() * SYLLABLES.length)];
    if (!seen.has(word)) {
      seen.add(word);
      vocabulary.push(word);
    }
  }
  // Skewed towards frequent words, like real text.
  const word = () => vocabulary[Math.floor(next() * next() * vocabulary.length)]!;
  return {
    word,
    document(words = 200): string {
      const out: string[] = [];
      while (out.length < words) {
        const sentence = 6 + Math.floor(next() * 12);
        for (let i = 0; i < sentence; i++) out.push(i === 0 ? capitalise(word()) : word());
        out[out.length - 1] += next() < 0.2 ? "?" : ".";
      }
      return out.join(" ");
    },
    /** Each word is substituted, deleted or followed by an inserted word with probability `rate`. */
    edit(text: string, rate: number): string {
      const out: string[] = [];
      for (const w of text.split(" ")) {
        if (next() >= rate) out.push(w);
        else {
          const kind = next();
          if (kind < 1 / 3) out.push(word());
          else if (kind < 2 / 3) out.push(w, word());
        }
      }
      return out.join(" ");
    },
  };
}

function capitalise(word: string): string {
  return word[0]!.toUpperCase() + word.slice(1);
}

export function sample(id: string, data: Record<string, unknown>, origin: Origin = "human"): Sample {
  return createSample({ id, data, origin, source: "test" });
}

/** Exact word n-gram set of a normalised text (the ground truth MinHash estimates). */
export function shingleSet(normalised: string, n = 5): Set<string> {
  const words = normalised.split(" ").filter((w) => w.length > 0);
  const set = new Set<string>();
  if (words.length === 0) return set;
  if (words.length < n) set.add(words.join(" "));
  for (let i = 0; i + n <= words.length; i++) set.add(words.slice(i, i + n).join(" "));
  return set;
}
