// Orca's system messages (Mukherjee et al. 2023, Table 2) and the subset of them each FLAN-v2 collection
// was answered under (their Figure 6). The texts are ours, written to the intent of each of the paper's
// sixteen, under the paper's ids; the subsets are the ids the figure shows for each collection, as the
// Open-Orca replication read them. Pure data and pure functions: the graph resolves and validates them.

/** One system message; id 1 is the paper's empty one, sent as no system message at all. */
export interface OrcaSystemMessage {
  readonly id: number;
  readonly text: string;
}

export const ORCA_SYSTEM_MESSAGES: readonly OrcaSystemMessage[] = [
  { id: 1, text: "" },
  { id: 2, text: "You are an AI assistant. Answer in enough detail that the user has no need to look anywhere else to understand it." },
  { id: 3, text: "You are an AI assistant. You will receive a task. Write a long, detailed answer to it." },
  { id: 4, text: "You are a helpful assistant who always explains. Answer the way you would explain it to a five-year-old." },
  { id: 5, text: "You are an AI assistant that follows instructions very closely. Be as helpful as you can." },
  {
    id: 6,
    text: "You are an AI assistant that helps people find information. Answer in enough detail that the user has no need to search elsewhere to understand it.",
  },
  {
    id: 7,
    text: "You are an AI assistant. The user will give you a task; carry it out as faithfully as you can. Work through it step by step and justify each step.",
  },
  {
    id: 8,
    text: "Describe the task, then explain your answer. For a multiple-choice question, give the correct answer(s) first, then say why each other option is wrong. Explain it the way you would to a five-year-old.",
  },
  { id: 9, text: "Explain how the definition of the task led you to your answer." },
  {
    id: 10,
    text: "You are an AI assistant. Describe the task, then explain your answer. For a multiple-choice question, give the correct answer(s) first, then say why each other option is wrong. You may need knowledge beyond the question to answer it.",
  },
  {
    id: 11,
    text: "You are an AI assistant that helps people find information. The user will ask you a question; answer it as faithfully as you can, reasoning step by step and justifying your answer.",
  },
  {
    id: 12,
    text: "The user will give you a task with instructions. Follow the instructions as faithfully as you can, reasoning step by step and justifying your answer.",
  },
  {
    id: 13,
    text: "You are a teacher. Given a task, explain in simple steps what it asks for, what guidelines it gives, and how to use those guidelines to reach the answer.",
  },
  {
    id: 14,
    text: "You are an AI assistant who knows every language and how to translate between them. Given a task, explain in simple steps what it asks for and what guidelines it gives, then solve it and show how you applied the guidelines.",
  },
  {
    id: 15,
    text: "You will get a task definition and a sample input. Split the definition into small parts, each holding an instruction, and explain each part with an example that satisfies it. Write each as:\nPart #: a key part of the definition.\nUsage: a sample response that satisfies that part, and why you think it does.",
  },
  { id: 16, text: "You are an AI assistant that helps people find information." },
];

/** The FLAN-v2 collections, as a row's task type names them. */
export const TASK_TYPES = ["cot", "niv2", "t0", "flan2021", "dialogue"] as const;
export type TaskType = (typeof TASK_TYPES)[number];

/** Other spellings in use (Open-Orca's ids are `niv.N`, `flan.N`, `cot.N`, `t0.N`; FLAN's own names). */
const ALIASES: Readonly<Record<string, TaskType>> = { niv: "niv2", flan: "flan2021", flan_2021: "flan2021", "flan 2021": "flan2021", dialog: "dialogue" };

/**
 * System message ids per task type. `flan2021` splits in two: the paper samples #8 and #10 (which tell
 * how to answer a multiple-choice question) only for multiple-choice queries. The paper did not sample
 * the Dialogue collection, so `dialogue` has no subset of its own and uses `default`, as a row without a
 * type does: every id except those that presuppose a form the row may not have (#8 and #10 multiple
 * choice, #9 and #15 a NiV2 task definition, #14 a translation task).
 */
export const ORCA_TASK_SUBSETS = {
  cot: [6, 11, 16],
  niv2: [1, 2, 5, 7, 9, 12, 13, 14, 15],
  t0: [1, 2, 3, 5, 7],
  flan2021: [3, 4, 7],
  flan2021_multiple_choice: [8, 10],
  default: [1, 2, 3, 4, 5, 6, 7, 11, 12, 13, 16],
} as const satisfies Readonly<Record<string, readonly number[]>>;

export type TaskSubsets = Readonly<Record<keyof typeof ORCA_TASK_SUBSETS, readonly number[]>>;

/** The collection a task-type value names; undefined when the value names none (the caller rejects the row). */
export function taskTypeOf(value: string): TaskType | undefined {
  // An Open-Orca id ("niv.242684") names its collection before the dot.
  const key = value.trim().toLowerCase().replace(/\.\d+$/, "");
  return (TASK_TYPES as readonly string[]).includes(key) ? (key as TaskType) : ALIASES[key];
}

// FLAN's multiple-choice templates list the options under a header ("Options:", "OPTIONS:", "Choose
// from:", "Pick your answer from:", "Select from the following.", "Pick one:", "Answer options:") followed
// by option lines, or as marked lines, (A) and (B), (a) and (b), or (i) and (ii), each followed by text:
// both of a pair are needed. A header counts only when option lines follow it ("Options: call me back
// later" is a sentence), and a header ending in a period only in its "from the following" form.
const OPTIONS_HEADER = new RegExp(
  String.raw`^\s*(?:options|choices|answer (?:choices|options)|available (?:choices|options)|possible answers|(?:choose|pick|select)(?: your answer| the answer)? from(?: the following)?(?: options)?|(?:choose|pick|select) one)\s*:\s*$` +
    String.raw`|^\s*(?:choose|pick|select)(?: your answer| one| the answer)? from the following(?: options)?\s*\.\s*$`,
  "im",
);
/** An option line under a header: a bullet, a plus or a marker, then text. */
const OPTION_LINE = /^\s*(?:[-+*•]|\(?[A-Za-z0-9]{1,3}[).:])\s*\S/m;
// "A)", "(A)", "A.", "A)." then text; not "A:", which opens a dialogue's turns ("A: hello\nB: hey").
const MARKED = (marker: string) => new RegExp(`^\\s*\\(?${marker}[).]\\.?\\s+\\S`, "m");
const OPTION_PAIRS: readonly (readonly [RegExp, RegExp])[] = [
  [MARKED("A"), MARKED("B")],
  [MARKED("a"), MARKED("b")],
  [MARKED("i"), MARKED("ii")],
];

function optionsUnderHeader(query: string): boolean {
  const header = OPTIONS_HEADER.exec(query);
  return header !== null && OPTION_LINE.test(query.slice(header.index + header[0].length));
}

/** Whether a query reads as a multiple-choice question. */
export function isMultipleChoice(query: string): boolean {
  return optionsUnderHeader(query) || OPTION_PAIRS.some(([first, second]) => first.test(query) && second.test(query));
}

/** The subset key a row is answered under: its collection, flan2021 split by multiple choice, else default. */
export function subsetKey(type: TaskType | undefined, query: string): keyof typeof ORCA_TASK_SUBSETS {
  if (type === "flan2021") return isMultipleChoice(query) ? "flan2021_multiple_choice" : "flan2021";
  if (type === undefined || type === "dialogue") return "default";
  return type;
}
