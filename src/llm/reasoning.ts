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
export function splitReasoning(content: string, fields: { readonly reasoning?: unknown; readonly reasoning_content?: unknown } = {}): SplitAnswer {
  const parts: string[] = [];
  for (const field of [fields.reasoning, fields.reasoning_content]) {
    if (typeof field === "string" && field.length > 0) {
      parts.push(field);
      break;
    }
  }
  let text = content;
  const close = text.indexOf(CLOSE);
  const opensWithTag = text.trimStart().startsWith(OPEN);
  if (close >= 0) {
    parts.push(stripOpen(text.slice(0, close)));
    text = text.slice(close + CLOSE.length).replace(/^\s+/, "");
  } else if (opensWithTag) {
    // Cut off while still thinking: everything so far is reasoning, and there is no answer.
    parts.push(stripOpen(text));
    text = "";
  }
  const reasoning = parts.map((part) => part.trim()).filter(Boolean).join("\n\n");
  return reasoning ? { text, reasoning } : { text };
}

function stripOpen(text: string): string {
  const trimmed = text.trimStart();
  return trimmed.startsWith(OPEN) ? trimmed.slice(OPEN.length) : trimmed;
}
