import { ConfigError, defineFilter, defineMap, drop, type Operator, type SampleData } from "../../src/index.ts";
import { fieldNames, fieldsParam, fieldText, textReader, type TextFields } from "./text-fields.ts";

/** Refusal and assistant-boilerplate phrases; matched case-insensitively, any apostrophe (' ’ ‘ ʼ) alike. */
export const REFUSAL_PHRASES: readonly string[] = [
  "as an AI language model",
  "as a language model",
  "as an AI assistant",
  "As an AI, I",
  "I cannot assist",
  "I can't assist",
  "I'm sorry, but",
  "I am sorry, but",
  "I apologize, but",
  "I'm unable to",
  "I am unable to",
  "I cannot fulfill",
  "I can't fulfill",
  "my knowledge cutoff",
  "I don't have personal opinions",
  "I do not have personal opinions",
];

export interface RefusalFilterOptions {
  /** Operator name in metrics and rejects. Default "refusal_filter". */
  readonly name?: string;
  /** Text to search. Default "output". "strip" mode writes back, so it needs field names, not a function. */
  readonly fields?: TextFields;
  /** Default REFUSAL_PHRASES; a list given here replaces it (spread REFUSAL_PHRASES to extend). */
  readonly phrases?: readonly string[];
  /**
   * "drop" (default): drop a sample whose text contains a phrase anywhere.
   * "strip": remove leading sentences that contain a phrase and keep the rest; drop only if a phrase is
   * still present later in the text, or fewer than `minRemainingWords` words are left.
   */
  readonly mode?: "drop" | "strip";
  /** In "strip" mode, the words (with a letter) a stripped field must keep to count as an answer. Default 3. */
  readonly minRemainingWords?: number;
}

const DEFAULTS = {
  name: "refusal_filter",
  fields: "output",
  phrases: REFUSAL_PHRASES,
  mode: "drop",
  minRemainingWords: 3,
} as const satisfies RefusalFilterOptions;

/** Finds any phrase; `phraseAt` names which one matched. */
interface PhraseMatcher {
  find(text: string): { phrase: string; index: number } | undefined;
}

export function phraseMatcher(phrases: readonly string[]): PhraseMatcher {
  if (phrases.length === 0) throw new ConfigError("refusalFilter: phrases is empty; give at least one phrase");
  const groups = phrases.map((phrase) => {
    const body = phrase
      .trim()
      .split(/\s+/)
      .map((word) => word.replace(/[.*+?^${}()|[\]\\]/g, "\\$&").replace(/['’‘ʼ]/g, "['’‘ʼ]"))
      .join("\\s+");
    // Whole words only at the ends, so "as an AI, I" does not match "as an AI, Isaac".
    const before = /^[\p{L}\p{N}]/u.test(phrase.trim()) ? "(?<![\\p{L}\\p{N}])" : "";
    const after = /[\p{L}\p{N}]$/u.test(phrase.trim()) ? "(?![\\p{L}\\p{N}])" : "";
    return `(${before}${body}${after})`;
  });
  const pattern = new RegExp(groups.join("|"), "iu");
  return {
    find(text) {
      const match = pattern.exec(text);
      if (!match) return undefined;
      const group = match.findIndex((value, i) => i > 0 && value !== undefined);
      return { phrase: phrases[group - 1]!, index: match.index };
    },
  };
}

/** Index just past the first sentence: at ". ", "! ", "? " (closing quotes included), a newline, or the end. */
function sentenceEnd(text: string): number {
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (ch === "\n") return i + 1;
    if (ch === "." || ch === "!" || ch === "?" || ch === "…") {
      let end = i + 1;
      while (end < text.length && /[.!?…"'”’)\]]/.test(text[end]!)) end++;
      if (end === text.length || /\s/.test(text[end]!)) return end;
      i = end - 1;
    }
  }
  return text.length;
}

/** `text` without its leading sentences that contain a phrase, and the phrases they contained. */
export function stripLeadingRefusal(text: string, matcher: PhraseMatcher): { text: string; phrases: string[] } {
  const phrases: string[] = [];
  let rest = text.trimStart();
  for (;;) {
    const end = sentenceEnd(rest);
    const found = matcher.find(rest.slice(0, end));
    if (!found) break;
    phrases.push(found.phrase);
    rest = rest.slice(end).trimStart();
  }
  return { text: rest, phrases };
}

function countWords(text: string): number {
  let words = 0;
  for (const token of text.split(/\s+/)) if (/\p{L}/u.test(token)) words++;
  return words;
}

/**
 * Drops refusals and assistant boilerplate ("As an AI language model, ...", "I'm sorry, but I can't ..."),
 * or in "strip" mode cuts a leading disclaimer and keeps the answer after it.
 *
 * Reads: `fields` (default `output`). Writes: in "strip" mode, the fields it shortened (a step is recorded
 * with the phrase in its note). Drop reasons: `refusal`, with the matched phrase in `message`.
 *
 * @example
 * refusalFilter({ fields: ["output"], mode: "strip" })
 * // "As an AI language model, I have no opinions. Paris is the capital." -> "Paris is the capital."
 */
export function refusalFilter(options: RefusalFilterOptions = {}): Operator {
  const o = { ...DEFAULTS, ...options };
  if (o.mode !== "drop" && o.mode !== "strip") throw new ConfigError(`refusalFilter: mode must be "drop" or "strip", got ${String(o.mode)}`);
  if (!Number.isInteger(o.minRemainingWords) || o.minRemainingWords < 0) {
    throw new ConfigError(`refusalFilter: minRemainingWords must be a non-negative integer, got ${String(o.minRemainingWords)}`);
  }
  const matcher = phraseMatcher(o.phrases);
  const meta = {
    name: o.name,
    version: "1",
    params: { ...o, fields: fieldsParam(o.fields) },
    reads: fieldNames(o.fields),
  };

  if (o.mode === "drop") {
    const read = textReader(o.fields);
    return defineFilter({
      ...meta,
      test(sample) {
        const found = matcher.find(read(sample));
        return found ? drop("refusal", { message: found.phrase }) : true;
      },
    });
  }

  if (typeof o.fields === "function") {
    throw new ConfigError('refusalFilter: mode "strip" writes the text back, so fields must be field names, not a function');
  }
  const fields = fieldNames(o.fields);
  return defineMap({
    ...meta,
    writes: fields,
    map(sample) {
      let data: SampleData | undefined;
      const notes: string[] = [];
      for (const field of fields) {
        const text = fieldText(sample, field);
        const stripped = stripLeadingRefusal(text, matcher);
        const left = matcher.find(stripped.text);
        if (left) return drop("refusal", { message: left.phrase });
        if (stripped.phrases.length === 0) continue;
        if (countWords(stripped.text) < o.minRemainingWords) return drop("refusal", { message: stripped.phrases[0]! });
        data = { ...(data ?? sample.data), [field]: stripped.text };
        notes.push(`${field}: stripped "${stripped.phrases.join('", "')}"`);
      }
      return data ? { data, step: { note: notes.join("; ") } } : {};
    },
  });
}
