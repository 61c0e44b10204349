// The operators the contract suite checks, with inputs each one understands. Every operator exported from
// operators/index.ts has a case here (the suite fails if one is missing), plus the engine's own helpers.
import { createSample, defineAsyncFilter, defineAsyncMap, defineFanOut, defineFilter, defineMap, defineTap, drop, type Operator, type Sample } from "../../src/index.ts";
import * as library from "../../operators/index.ts";
import type { Llm } from "../../src/llm/index.ts";

/** The simulator-backed client LLM operators use; the suite sets it up before any case runs. */
export const endpoint: { llm?: Llm } = {};
const llm = (): Llm => {
  if (!endpoint.llm) throw new Error("the contract suite starts the simulator in beforeAll");
  return endpoint.llm;
};

export interface OperatorCase {
  readonly name: string;
  readonly make: () => Operator;
  readonly samples: () => Sample[];
  /** One input may become several outputs. */
  readonly fanOut?: boolean;
}

const TEXTS = [
  "The quick brown fox jumps over the lazy dog and then runs back into the forest to find the rest of the pack before night falls.",
  "Write a short poem about the sea that mentions the moon, the tide and a lighthouse keeper who has not slept for three days.",
  "I'm sorry, but as an AI language model I cannot help with that request.",
  "Explain how a hash map handles collisions, and compare open addressing with separate chaining in terms of memory and speed.",
  "The quick brown fox jumps over the lazy dog and then runs back into the forest to find the rest of the pack before night falls.",
];

function textSamples(): Sample[] {
  return TEXTS.map((text, i) =>
    createSample({ id: `c${i}`, source: "contract", data: { text, instruction: text, output: text, question: text, answer: text } }),
  );
}

/** Cases for the engine's helpers, as a user's custom operators would use them. */
const engineCases: OperatorCase[] = [
  { name: "defineMap", make: () => defineMap({ name: "upper", map: (s) => ({ data: { ...s.data, text: String(s.data.text).toUpperCase() } }) }), samples: textSamples },
  { name: "defineFilter", make: () => defineFilter({ name: "short", test: (s) => (String(s.data.text).length < 100 ? true : drop("too_long")) }), samples: textSamples },
  { name: "defineAsyncMap", make: () => defineAsyncMap({ name: "len", map: async (s) => ({ scores: { len: String(s.data.text).length } }) }), samples: textSamples },
  { name: "defineAsyncFilter", make: () => defineAsyncFilter({ name: "async_short", test: async (s) => (String(s.data.text).length < 100 ? true : drop("too_long")) }), samples: textSamples },
  { name: "defineFanOut", make: () => defineFanOut({ name: "halves", expand: (s) => [{ data: { text: String(s.data.text).slice(0, 10) } }, { data: { text: String(s.data.text).slice(10) } }] }), samples: textSamples, fanOut: true },
  { name: "defineTap", make: () => defineTap({ name: "watch", observe: () => {} }), samples: textSamples },
];

/** One case per exported operator factory of the library, keyed by export name. */
export const libraryCases: Record<string, Omit<OperatorCase, "name">> = {
  heuristicFilter: { make: () => library.heuristicFilter({ minWords: 5 }), samples: textSamples },
  refusalFilter: { make: () => library.refusalFilter(), samples: textSamples },
  formatFilter: { make: () => library.formatFilter({ schema: library.z.object({ text: library.z.string().min(10) }) }), samples: textSamples },
  exactDedup: { make: () => library.exactDedup(), samples: textSamples },
  nearDedup: { make: () => library.nearDedup({ shingle: { kind: "word", n: 3 } }), samples: textSamples },
  rougeFilter: { make: () => library.rougeFilter({ field: "text" }), samples: textSamples },
  diversityTracker: { make: () => library.diversityTracker({ fields: "text" }), samples: textSamples },
  generate: {
    make: () => library.generate({ llm: llm(), prompt: (s) => [{ role: "user", content: `Answer briefly: ${String(s.data.text)}` }], write: "answer" }),
    samples: textSamples,
    fanOut: true,
  },
  llmMap: {
    make: () => library.llmMap({ llm: llm(), name: "topic_label", prompt: (s) => [{ role: "user", content: `Name the topic of: ${String(s.data.text)}` }], write: "topic" }),
    samples: textSamples,
  },
  rubricJudge: { make: () => library.rubricJudge({ llm: llm(), rubric: "Is the text clear and useful?", fields: "text", threshold: 5 }), samples: textSamples },
  pairwiseJudge: {
    make: () => library.pairwiseJudge({ llm: llm(), criteria: "Which answer is more helpful?", instruction: "text", first: "question", second: "answer" }),
    samples: textSamples,
  },
  executeFilter: { make: () => library.executeFilter({ language: "javascript", timeoutMs: 5000 }), samples: codeSamples },
};

function codeSamples(): Sample[] {
  const programs = [
    ["function add(a, b) { return a + b; }", "if (add(2, 3) !== 5) throw new Error('add is wrong');"],
    ["function add(a, b) { return a - b; }", "if (add(2, 3) !== 5) throw new Error('add is wrong');"],
    ["function add(a, b) { return a + ; }", "add(1, 2);"],
  ];
  return programs.map(([code, tests], i) => createSample({ id: `code${i}`, source: "contract", data: { code, tests } }));
}

export function operatorCases(): OperatorCase[] {
  return [...engineCases, ...Object.entries(libraryCases).map(([name, c]) => ({ name, ...c }))];
}
