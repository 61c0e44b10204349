import {
  get_encoding,
  get_encoding_name_for_model,
  type Tiktoken,
  type TiktokenEncoding,
  type TiktokenModel,
} from "@dqbd/tiktoken";
import type { ChatMessage } from "./types.ts";

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
      encoding = get_encoding_name_for_model(model as TiktokenModel);
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
    encoder = get_encoding(name);
    encoders.set(name, encoder);
  }
  return encoder;
}

// Prompts repeat (system prompts, few-shot examples); counts of short strings are memoised, bounded.
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
  const count = encoderFor(model).encode_ordinary(text).length;
  if (cacheable) {
    if (countCache.size >= COUNT_CACHE_MAX) countCache.clear();
    countCache.set(key, count);
  }
  return count;
}

/** The first `maxTokens` tokens of `text`, decoded back to a string (what a length-capped model returns). */
export function truncateToTokens(text: string, maxTokens: number, model?: string): { text: string; tokens: number } {
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
