import type { ChatMessage } from "../llm/index.ts";

/** One kind of request of the benchmark's fixed mix. */
export interface MixEntry {
  readonly kind: string;
  readonly system?: string;
  readonly user: string;
  readonly maxTokens: number;
}

const PASSAGE =
  "The printing press spread through Europe within fifty years of Gutenberg's first Bible. Cheap books changed who could read, " +
  "what was read, and how fast ideas travelled: pamphlets carried arguments across borders in weeks, scientists could compare " +
  "tables and diagrams that no longer drifted with each copyist, and vernacular languages gained standard spellings. Printers " +
  "were also merchants; they chose titles that sold, which is why almanacs, grammars and devotional works outnumbered learned " +
  "treatises. Censors soon followed, licensing presses and indexing forbidden books, yet the volume of print outran them.";

/**
 * The fixed mix every level sends, in turn: a short answer, a list, a summary of a passage (a longer
 * prompt) and a piece of code, so output lengths vary as a generation run's do. Fixed, so two sweeps
 * of one endpoint compare.
 */
export const PROMPT_MIX: readonly MixEntry[] = Object.freeze([
  { kind: "short_answer", user: "In one sentence, why is the sky blue?", maxTokens: 48 },
  { kind: "list", system: "You are a helpful assistant.", user: "List seven practical ways to reduce food waste at home, one line each.", maxTokens: 160 },
  { kind: "summary", user: `Summarise the passage below in three sentences.\n\n${PASSAGE}`, maxTokens: 128 },
  { kind: "code", user: "Write a Python function that returns the n-th Fibonacci number iteratively, with a docstring.", maxTokens: 256 },
]);

/**
 * The i-th request of a sweep. Its number is part of the prompt, so no two requests in flight are
 * identical: neither the client (which shares identical calls) nor a server's response cache can answer
 * one from another, while a server's prefix cache still sees the shared beginning a real run has.
 */
export function mixRequest(index: number): { messages: ChatMessage[]; maxTokens: number; kind: string } {
  const entry = PROMPT_MIX[index % PROMPT_MIX.length]!;
  const messages: ChatMessage[] = [];
  if (entry.system) messages.push({ role: "system", content: entry.system });
  messages.push({ role: "user", content: `${entry.user}\n(request ${index})` });
  return { messages, maxTokens: entry.maxTokens, kind: entry.kind };
}
