import type { Tiktoken, TiktokenEncoding, TiktokenModel } from "@dqbd/tiktoken";
import { lazyModule } from "./lazy.ts";
import type { ChatMessage } from "./types.ts";

const tiktoken = lazyModule<typeof import("@dqbd/tiktoken")>("@dqbd/tiktoken");

/** Encoding used for models tiktoken does not know (local models, the simulator): the current OpenAI one. */
export const DEFAULT_ENCODING: TiktokenEncoding = "o200k_base";

// One encoder per encoding per process: loading one costs 80-200 ms and tens of MB of WASM memory.
const encoders = new Map<TiktokenEncoding, Tiktoken>();
const modelEncodings = new Map<string, TiktokenEncoding>();

export function encodingForModel(model: string | undefined): TiktokenEncoding {
  if (!model) return DEFAULT_ENCODING;
  let encoding = modelEncodings.get(model);
  if (!encoding) {
    try {
      encoding = tiktoken().get_encoding_name_for_model(model as TiktokenModel);
    } catch {
      encoding = DEFAULT_ENCODING;
    }
    modelEncodings.set(model, encoding);
  }
  return encoding;
}

export function encoderFor(model: string | undefined): Tiktoken {
  const name = encodingForModel(model);
  let encoder = encoders.get(name);
  if (!encoder) {
    encoder = tiktoken().get_encoding(name);
    encoders.set(name, encoder);
  }
  return encoder;
}

// tiktoken's pre-tokenisers as JavaScript regexes: BPE runs on each piece alone, so a text's count is the
// sum of its pieces' counts, and pieces (words, punctuation runs) repeat across texts. Counting through a
// cache of piece counts is exact and about 8x faster than encoding. `(?i:...)` is spelled out because
// Node 20's regexes lack inline modifiers; `\s` is spelled White_Space because JS's `\s` adds U+FEFF.
const WS = "\\p{White_Space}";
const CONTRACTION = "'(?:[sS]|[tT]|[rR][eE]|[vV][eE]|[mM]|[lL][lL]|[dD])";
const PIECES: Partial<Record<TiktokenEncoding, RegExp>> = {
  o200k_base: new RegExp(
    [
      `[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?:${CONTRACTION})?`,
      `[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?:${CONTRACTION})?`,
      `\\p{N}{1,3}`,
      ` ?[^${WS}\\p{L}\\p{N}]+[\\r\\n/]*`,
      `${WS}*[\\r\\n]+`,
      `${WS}+(?![^${WS}])`,
      `${WS}+`,
    ].join("|"),
    "gu",
  ),
  cl100k_base: new RegExp(
    [
      CONTRACTION,
      `[^\\r\\n\\p{L}\\p{N}]?\\p{L}+`,
      `\\p{N}{1,3}`,
      ` ?[^${WS}\\p{L}\\p{N}]+[\\r\\n]*`,
      `${WS}*[\\r\\n]+`,
      `${WS}+(?![^${WS}])`,
      `${WS}+`,
    ].join("|"),
    "gu",
  ),
};
const PIECE_CACHE_MAX = 200_000;
const PIECE_MAX_CHARS = 64;
const pieceCounts = new Map<TiktokenEncoding, Map<string, number>>();

function countByPieces(text: string, encoding: TiktokenEncoding, pattern: RegExp, encoder: Tiktoken): number {
  let cache = pieceCounts.get(encoding);
  if (!cache) {
    cache = new Map();
    pieceCounts.set(encoding, cache);
  }
  pattern.lastIndex = 0;
  let total = 0;
  let covered = 0;
  for (let match = pattern.exec(text); match !== null; match = pattern.exec(text)) {
    const piece = match[0];
    covered += piece.length;
    let count = cache.get(piece);
    if (count === undefined) {
      count = encoder.encode_ordinary(piece).length;
      if (piece.length <= PIECE_MAX_CHARS) {
        if (cache.size >= PIECE_CACHE_MAX) cache.clear();
        cache.set(piece, count);
      }
    }
    total += count;
  }
  // Every character belongs to some piece; if not (a pattern gap), trust the encoder over the sum.
  return covered === text.length ? total : encoder.encode_ordinary(text).length;
}

// Whole prompts repeat too (system prompts, few-shot examples); their counts are memoised, bounded.
const COUNT_CACHE_MAX = 20_000;
const COUNT_CACHE_MAX_CHARS = 8_192;
const countCache = new Map<string, number>();

/**
 * Tokens in `text`. Special-token strings such as `<|endoftext|>` are counted as ordinary text, never
 * thrown on: a prompt is user data, and the server tokenises it the same way.
 */
export function countTokens(text: string, model?: string): number {
  if (text.length === 0) return 0;
  const encoding = encodingForModel(model);
  const cacheable = text.length <= COUNT_CACHE_MAX_CHARS;
  const key = cacheable ? `${encoding}\u0000${text}` : "";
  if (cacheable) {
    const hit = countCache.get(key);
    if (hit !== undefined) return hit;
  }
  const pattern = PIECES[encoding];
  const encoder = encoderFor(model);
  const count = pattern ? countByPieces(text, encoding, pattern, encoder) : encoder.encode_ordinary(text).length;
  if (cacheable) {
    if (countCache.size >= COUNT_CACHE_MAX) countCache.clear();
    countCache.set(key, count);
  }
  return count;
}

/** The first `maxTokens` tokens of `text`, decoded back to a string (what a length-capped model returns). */
export function truncateToTokens(text: string, maxTokens: number, model?: string): { text: string; tokens: number } {
  const count = countTokens(text, model);
  if (count <= maxTokens) return { text, tokens: count };
  const tokens = encoderFor(model).encode_ordinary(text);
  if (tokens.length <= maxTokens) return { text, tokens: tokens.length };
  const bytes = encoderFor(model).decode(tokens.slice(0, Math.max(0, maxTokens)));
  return { text: new TextDecoder().decode(bytes), tokens: Math.max(0, maxTokens) };
}

function contentText(content: ChatMessage["content"]): string {
  if (typeof content === "string") return content;
  if (!content) return "";
  return content.map((part) => (part.type === "text" ? part.text : "")).join("");
}

/**
 * Prompt tokens of a chat request, by OpenAI's published formula: 3 per message, 1 per name, 3 to prime
 * the reply. The simulator bills with the same function, so the client's estimate matches its `usage`.
 */
export function countMessageTokens(messages: readonly ChatMessage[], model?: string): number {
  let total = 3;
  for (const message of messages) {
    total += 3 + countTokens(message.role, model) + countTokens(contentText(message.content), model);
    if (message.name) total += 1 + countTokens(message.name, model);
  }
  return total;
}
