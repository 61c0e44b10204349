// Where servers put a reasoning model's chain of thought: vLLM (>= 0.10) and Ollama in `reasoning`, SGLang,
// llama.cpp, DeepSeek and older vLLM in `reasoning_content`, and a server without a reasoning parser in the
// content itself, before `</think>` (the opening tag is often part of the chat template, so it may be
// missing). The thinking is kept apart from the answer: it never becomes training data, JSON is never read
// from it, and the refusal check never reads it.

const OPEN = "<think>";
const CLOSE = "</think>";

export interface SplitAnswer {
  readonly text: string;
  readonly reasoning?: string;
}

/** The answer and the reasoning of one message, from its content and whatever reasoning fields it has. */
export function splitReasoning(
  content: string,
  fields: { readonly reasoning?: unknown; readonly reasoning_content?: unknown } = {},
  options: { readonly thinkTags?: boolean } = {},
): SplitAnswer {
  for (const field of [fields.reasoning, fields.reasoning_content]) {
    // The server separated them itself: the content is the answer, tags and all.
    if (typeof field === "string" && field.trim().length > 0) return { text: content, reasoning: field.trim() };
  }
  // Models that never think in their content (OpenAI's, Azure's): a <think> there is the answer's own text.
  if (options.thinkTags === false) return { text: content };
  const opensWithTag = content.trimStart().startsWith(OPEN);
  // The closing tag ends the reasoning when the content opens with <think>, or when it stands at a line's
  // edge (the opening tag was in the chat template); a sentence that mentions it in passing is an answer.
  const close = opensWithTag ? content.indexOf(CLOSE) : content.search(/(?:^|\n)[ \t]*<\/think>|<\/think>[ \t]*(?:\n|$)/);
  if (close >= 0) {
    const at = content.indexOf(CLOSE, close);
    const reasoning = stripOpen(content.slice(0, at)).trim();
    const text = content.slice(at + CLOSE.length).replace(/^\s+/, "");
    return reasoning ? { text, reasoning } : { text };
  }
  // Cut off while still thinking: everything so far is reasoning, and there is no answer.
  if (opensWithTag) {
    const reasoning = stripOpen(content).trim();
    return reasoning ? { text: "", reasoning } : { text: "" };
  }
  return { text: content };
}

function stripOpen(text: string): string {
  const trimmed = text.trimStart();
  return trimmed.startsWith(OPEN) ? trimmed.slice(OPEN.length) : trimmed;
}
