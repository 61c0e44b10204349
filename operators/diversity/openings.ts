/**
 * How instructions open: the leading word, and a verb-object pair in the spirit of Self-Instruct's
 * analysis (which parsed instructions and took the root verb and its first direct-object noun). Here a
 * light heuristic stands in for the parser: the first word, after polite prefixes, if it is a common
 * imperative verb; then the first following word that is not a determiner, pronoun, number, preposition
 * or stock adjective. "Write a short poem about cats" -> write / poem; "Give me three tips" -> give / tips.
 */

const POLITE_PREFIXES = new Set(["please", "kindly", "now", "so", "ok", "okay", "hey", "hi"]);
/** "can you", "could you", "would you", "will you", "i want you to", "i need you to" are skipped. */
const MODALS = new Set(["can", "could", "would", "will"]);

export const IMPERATIVE_VERBS: ReadonlySet<string> = new Set([
  "act", "add", "analyse", "analyze", "answer", "arrange", "assess", "brainstorm", "build", "calculate",
  "categorise", "categorize", "change", "check", "choose", "classify", "combine", "come", "compare", "compile",
  "complete", "compose", "compute", "construct", "convert", "correct", "count", "craft", "create", "critique",
  "debug", "define", "derive", "describe", "design", "detect", "determine", "develop", "devise", "discuss",
  "draft", "draw", "edit", "estimate", "evaluate", "expand", "explain", "extract", "fill", "find", "fix",
  "format", "formulate", "generate", "give", "guess", "help", "identify", "imagine", "implement", "improve",
  "infer", "interpret", "label", "list", "make", "match", "merge", "name", "offer", "optimize", "order",
  "organise", "organize", "outline", "paraphrase", "pick", "plan", "predict", "prepare", "present",
  "pretend", "produce", "propose", "prove", "provide", "rank", "rate", "read", "recommend", "refactor",
  "remove", "reorder", "rephrase", "replace", "reply", "respond", "restate", "return", "reverse", "review",
  "revise", "rewrite", "score", "select", "show", "shorten", "simplify", "solve", "sort", "split", "state",
  "suggest", "summarise", "summarize", "tag", "teach", "tell", "think", "transform", "translate", "use",
  "verify", "write",
]);

const NON_OBJECT_WORDS = new Set([
  // determiners, pronouns, quantifiers
  "a", "an", "the", "this", "that", "these", "those", "my", "your", "our", "their", "his", "her", "its",
  "me", "us", "them", "him", "it", "you", "i", "we", "they", "some", "any", "each", "every", "all", "both",
  "few", "several", "many", "more", "most", "another", "other", "such", "no", "one", "two", "three",
  "four", "five", "six", "seven", "eight", "nine", "ten", "first", "second", "third", "top", "next", "last",
  // prepositions and particles
  "of", "for", "to", "about", "with", "up", "down", "out", "on", "in", "into", "at", "by", "from", "over",
  "as", "and", "or", "what", "how", "why", "which", "who", "whether", "if",
  // stock adjectives of generated instructions
  "short", "long", "brief", "new", "simple", "detailed", "good", "best", "better", "following", "given",
  "different", "creative", "funny", "interesting", "possible", "unique", "original", "catchy", "random",
  "single", "small", "large", "big", "little", "great", "concise", "clear", "specific", "common", "popular",
  "famous", "appropriate", "suitable", "relevant", "useful", "complete", "comprehensive", "step",
]);

export interface Opening {
  /** First word of the text (lowercased, punctuation stripped), or undefined for an empty text. */
  readonly leading: string | undefined;
  /** Imperative verb and its object, when the heuristic finds both. */
  readonly verb?: string;
  readonly object?: string;
}

/** `words`: the lowercased, punctuation-free words of the instruction. */
export function opening(words: readonly string[]): Opening {
  const leading = words[0];
  if (leading === undefined) return { leading };
  let at = 0;
  while (at < words.length && POLITE_PREFIXES.has(words[at]!)) at++;
  if (MODALS.has(words[at] ?? "") && words[at + 1] === "you") at += 2;
  else if (words[at] === "i" && (words[at + 1] === "want" || words[at + 1] === "need") && words[at + 2] === "you" && words[at + 3] === "to") at += 4;
  while (at < words.length && POLITE_PREFIXES.has(words[at]!)) at++;
  const verb = words[at];
  if (verb === undefined || !IMPERATIVE_VERBS.has(verb)) return { leading };
  for (let i = at + 1; i < words.length && i <= at + 6; i++) {
    const word = words[i]!;
    if (NON_OBJECT_WORDS.has(word) || /^\d+$/.test(word)) continue;
    return { leading, verb, object: word };
  }
  return { leading, verb };
}
