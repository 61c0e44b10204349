// The operators the contract suite checks, with inputs each one understands and what it must do with each.
// Every operator exported from operators/index.ts has a case here (the suite fails if one is missing), plus
// the engine's own helpers. A case says, per valid input, "out" (kept, or for a fan-out: only outputs) or
// the exact reject reason, so an operator that errors or rejects everything fails its case.
import { createSample, defineAsyncFilter, defineAsyncMap, defineFanOut, defineFilter, defineMap, defineTap, drop, type Operator, type Sample, type StepRecord } from "../../src/index.ts";
import * as library from "../../operators/index.ts";
import type { Llm } from "../../src/llm/index.ts";

/** The simulator-backed client LLM operators use; the suite sets it up before any case runs. */
export const endpoint: { llm?: Llm } = {};
const llm = (): Llm => {
  if (!endpoint.llm) throw new Error("the contract suite starts the simulator in beforeAll");
  return endpoint.llm;
};

/** What a valid input must become: "out", or the exact reason it is rejected with. */
export type Outcome = "out" | (string & {});

export interface OperatorCase {
  readonly name: string;
  readonly make: () => Operator;
  readonly samples: () => Sample[];
  /** Outcome of each valid input, by id; every input has one, at least one is "out", none is "error". */
  readonly expect: Readonly<Record<string, Outcome>>;
  /** One input may become several outputs. */
  readonly fanOut?: boolean;
  /** A fan-out's children: a new generation (depth + 1, the default) or a split of the same one. */
  readonly generation?: "next" | "same";
}

const TEXTS = [
  "The quick brown fox jumps over the lazy dog and then runs back into the forest to find the rest of the pack before night falls.",
  "Write a short poem about the sea that mentions the moon, the tide and a lighthouse keeper who has not slept for three days.",
  "I'm sorry, but as an AI language model I cannot help with that request.",
  "Explain how a hash map handles collisions, and compare open addressing with separate chaining in terms of memory and speed.",
  "The quick brown fox jumps over the lazy dog and then runs back into the forest to find the rest of the pack before night falls.",
];

/** A step from an earlier stage, so "one step added" and "input's steps untouched" mean something. */
const INGEST: StepRecord = { op: "ingest", version: "1", at: 1_700_000_000_000, params: "0" };

/**
 * Inputs with a history: a prior step, scores, and (for c3) a synthetic parent one generation down. Their
 * arrays and records are not frozen, so an operator that mutates them is caught by comparison, not by a
 * TypeError that would hide as an `error` reject.
 */
export function withHistory(sample: Sample, index: number): Sample {
  const synthetic = index === 3;
  return {
    ...sample,
    provenance: {
      ...sample.provenance,
      origin: synthetic ? "synthetic" : sample.provenance.origin,
      parents: synthetic ? [`seed-${index}`] : [],
      depth: synthetic ? 1 : 0,
      steps: [{ ...INGEST }],
    },
    scores: { ingest_quality: index / 10 },
  };
}

export function textSamples(extra: readonly string[] = []): Sample[] {
  return [...TEXTS, ...extra].map((text, i) =>
    withHistory(createSample({ id: `c${i}`, source: "contract", data: { text, instruction: text, output: text, question: text, answer: text } }), i),
  );
}

const texts = () => textSamples();
export const ALL_OUT = { c0: "out", c1: "out", c2: "out", c3: "out", c4: "out" } as const;
// c2 is the only text under 100 characters, and the refusal; c4 repeats c0 word for word.
export const SHORT_ONLY = { c0: "too_long", c1: "too_long", c2: "out", c3: "too_long", c4: "too_long" } as const;

/** Cases for the engine's helpers, as a user's custom operators would use them. */
const engineCases: OperatorCase[] = [
  { name: "defineMap", make: () => defineMap({ name: "upper", map: (s) => ({ data: { ...s.data, text: String(s.data.text).toUpperCase() } }) }), samples: texts, expect: ALL_OUT },
  { name: "defineFilter", make: () => defineFilter({ name: "short", test: (s) => (String(s.data.text).length < 100 ? true : drop("too_long")) }), samples: texts, expect: SHORT_ONLY },
  { name: "defineAsyncMap", make: () => defineAsyncMap({ name: "len", map: async (s) => ({ scores: { len: String(s.data.text).length } }) }), samples: texts, expect: ALL_OUT },
  { name: "defineAsyncFilter", make: () => defineAsyncFilter({ name: "async_short", test: async (s) => (String(s.data.text).length < 100 ? true : drop("too_long")) }), samples: texts, expect: SHORT_ONLY },
  {
    name: "defineFanOut",
    make: () => defineFanOut({ name: "halves", expand: (s) => [{ data: { text: String(s.data.text).slice(0, 10) } }, { data: { text: String(s.data.text).slice(10) } }] }),
    samples: texts,
    expect: ALL_OUT,
    fanOut: true,
  },
  { name: "defineTap", make: () => defineTap({ name: "watch", observe: () => {} }), samples: texts, expect: ALL_OUT },
];

/** One case per exported operator factory of the library, keyed by export name. */
export const libraryCases: Record<string, Omit<OperatorCase, "name">> = {
  heuristicFilter: {
    make: () => library.heuristicFilter({ minWords: 5 }),
    samples: () => textSamples(["Too short to keep."]),
    expect: { ...ALL_OUT, c5: "too_few_words" },
  },
  refusalFilter: { make: () => library.refusalFilter(), samples: texts, expect: { ...ALL_OUT, c2: "refusal" } },
  formatFilter: {
    make: () => library.formatFilter({ schema: library.z.object({ text: library.z.string().min(10) }) }),
    samples: () => textSamples(["Too short"]),
    expect: { ...ALL_OUT, c5: "schema_mismatch" },
  },
  exactDedup: { make: () => library.exactDedup(), samples: texts, expect: { ...ALL_OUT, c4: "exact_duplicate" } },
  nearDedup: { make: () => library.nearDedup({ shingle: { kind: "word", n: 3 } }), samples: texts, expect: { ...ALL_OUT, c4: "near_duplicate" } },
  rougeFilter: { make: () => library.rougeFilter({ field: "text" }), samples: texts, expect: { ...ALL_OUT, c4: "too_similar" } },
  diversityTracker: { make: () => library.diversityTracker({ fields: "text" }), samples: texts, expect: ALL_OUT },
  generate: {
    make: () => library.generate({ llm: llm(), prompt: (s) => [{ role: "user", content: `Answer briefly: ${String(s.data.text)}` }], write: "answer" }),
    samples: texts,
    expect: ALL_OUT,
    fanOut: true,
  },
  llmMap: {
    make: () => library.llmMap({ llm: llm(), name: "topic_label", prompt: (s) => [{ role: "user", content: `Name the topic of: ${String(s.data.text)}` }], write: "topic" }),
    samples: texts,
    expect: ALL_OUT,
  },
  rubricJudge: {
    make: () => library.rubricJudge({ llm: llm(), rubric: "Is the text clear and useful?", fields: "text", threshold: 5 }),
    samples: texts,
    // What the simulator (seed 7) scores, with the schema described in the judge's system message.
    expect: { ...ALL_OUT, c0: "low_score", c1: "low_score", c4: "low_score" },
  },
  pairwiseJudge: {
    make: () => library.pairwiseJudge({ llm: llm(), criteria: "Which answer is more helpful?", instruction: "instruction", first: "output", second: "answer" }),
    samples: pairSamples,
    // What the simulator (seed 7) answers: both orders agree on c0 and c2, and disagree on the rest.
    expect: { c0: "out", c1: "position_bias", c2: "out", c3: "position_bias", c4: "position_bias" },
  },
  executeFilter: {
    make: () => library.executeFilter({ language: "javascript", timeoutMs: 5000 }),
    samples: codeSamples,
    expect: { code0: "out", code1: "test_failed", code2: "syntax_error" },
  },
};

/** Two different responses to compare: the text itself and a short second answer. */
function pairSamples(): Sample[] {
  const second = ["Dogs run.", "The sea is wet.", "No.", "Hash maps use buckets; collisions chain or probe.", "Foxes."];
  return textSamples().map((sample, i) => ({ ...sample, data: { ...sample.data, answer: second[i] } }));
}

function codeSamples(): Sample[] {
  const programs = [
    ["function add(a, b) { return a + b; }", "if (add(2, 3) !== 5) throw new Error('add is wrong');"],
    ["function add(a, b) { return a - b; }", "if (add(2, 3) !== 5) throw new Error('add is wrong');"],
    ["function add(a, b) { return a + ; }", "add(1, 2);"],
  ];
  return programs.map(([code, tests], i) => withHistory(createSample({ id: `code${i}`, source: "contract", data: { code, tests } }), i));
}

export function operatorCases(): OperatorCase[] {
  return [...engineCases, ...Object.entries(libraryCases).map(([name, c]) => ({ name, ...c }))];
}
