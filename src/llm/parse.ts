/** Phrases by which chat models decline; matched near the start of an answer, where refusals put them. */
const REFUSAL_PATTERNS: readonly RegExp[] = [
  /\bas an ai (language )?model\b/i,
  /\bI(?:['’]m| am) sorry,? but\b/i,
  /\bI apologi[sz]e,? but\b/i,
  /\bI (?:cannot|can['’]t|can not) (?:assist|help|comply|provide|fulfil|fulfill|do that|create|generate|write)\b/i,
  /\bI(?:['’]m| am) (?:not able|unable) to (?:assist|help|comply|provide|fulfil|fulfill|create|generate|write)\b/i,
  /\bI must (?:decline|refuse)\b/i,
  /\bI won['’]t be able to (?:assist|help)\b/i,
];

/** How much of the start of an answer to search: a refusal quoted deep inside a real answer is not one. */
const REFUSAL_WINDOW = 240;

/** True when `text` reads as a model declining the task ("I'm sorry, but as an AI language model I cannot ..."). */
export function looksLikeRefusal(text: string): boolean {
  const head = text.trimStart().slice(0, REFUSAL_WINDOW);
  return REFUSAL_PATTERNS.some((pattern) => pattern.test(head));
}

/** Balanced `{...}` / `[...]` spans of `text`, outermost first, skipping braces inside JSON strings. */
function balancedSpans(text: string, open: "{" | "["): string[] {
  const close = open === "{" ? "}" : "]";
  const spans: string[] = [];
  let start = text.indexOf(open);
  while (start >= 0 && spans.length < 16) {
    let depth = 0;
    let inString = false;
    let end = -1;
    for (let i = start; i < text.length; i++) {
      const ch = text[i];
      if (inString) {
        if (ch === "\\") i++;
        else if (ch === '"') inString = false;
      } else if (ch === '"') {
        inString = true;
      } else if (ch === "{" || ch === "[") {
        depth++;
      } else if (ch === "}" || ch === "]") {
        depth--;
        if (depth === 0) {
          end = i;
          break;
        }
      }
    }
    if (end < 0) break;
    if (text[end] === close) spans.push(text.slice(start, end + 1));
    start = text.indexOf(open, end + 1);
  }
  return spans;
}

/**
 * The JSON value in a model's answer: the whole text, else a fenced ```json block, else the first
 * balanced {...} (or [...]) that parses. Undefined when there is none; never throws.
 */
export function extractJson(text: string): { value: unknown } | undefined {
  const attempt = (candidate: string): { value: unknown } | undefined => {
    try {
      return { value: JSON.parse(candidate) };
    } catch {
      return undefined;
    }
  };
  const trimmed = text.trim();
  const whole = attempt(trimmed);
  if (whole) return whole;
  for (const fence of trimmed.matchAll(/```(?:json|JSON)?\s*\n?([\s\S]*?)```/g)) {
    const fenced = attempt(fence[1]!.trim());
    if (fenced) return fenced;
  }
  for (const open of ["{", "["] as const) {
    for (const span of balancedSpans(trimmed, open)) {
      const found = attempt(span);
      if (found) return found;
    }
  }
  return undefined;
}
