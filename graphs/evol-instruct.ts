// Evol-Instruct (Xu et al. 2023, "WizardLM: Empowering Large Language Models to Follow Complex
// Instructions"): rewrites instructions, round after round, into harder ones (in-depth evolution: add
// constraints, deepen, concretize, increase reasoning steps, complicate the input) or into new, rarer
// ones of the same domain (in-breadth evolution), answers each, and eliminates failed evolutions.
//
// Round 0 answers each seed instruction: the paper trains on the initial data plus every evolution, so the
// seed and its answer are a row. In each round 1..`rounds` every instruction of the pool is evolved once,
// by a kind drawn uniformly (seeded per sample and round) from `kinds`, and answered. A failed evolution
// goes to rejects with its reason, as the paper's elimination step does: no_information_gain (an LLM
// judge, asked the paper's question, answers "Equal"; with `gainCheck: "rouge"`, ROUGE-L to the parent at
// or above `gainThreshold` while fewer than `gainMinAddedWords` words were added), copied_prompt_words
// (the rewrite kept "#Rewritten Prompt#", "given prompt" and the like), apology (the answer says sorry in
// fewer than `apologyMaxWords` words), stop_words_only (nothing but punctuation and stop words), too_short
// (fewer than `minOutputWords` words), and any failed call (refusal, unparseable, llm_error). As in the
// paper, the instruction that failed to evolve goes back to the pool: the parent, not the failure, is
// evolved again in the next round (a "back to the pool" step in its lineage says why). Every surviving
// evolution is a row and the next round's parent, so a seed yields one round-0 row and up to `rounds`
// evolved rows.
//
// As the authors ran it (nlpxucan/WizardLM, Evol_Instruct/): evolutions and answers sampled at temperature
// 1, top_p 0.95; one of five prompts picked uniformly (their main.py: the four in-depth methods add
// constraints, deepen, concretize, increase reasoning, and in-breadth); 4 rounds; information gain judged
// by the LLM (paper, appendix G); failed evolutions back to the pool; initial data in the output.
// Deliberately different:
// - the prompts are ours, after the paper's templates, and ask for {"new_prompt": ...} as JSON;
// - `complicate_input` (in the paper shown by in-context examples that are not in the released code) is
//   ours and is used only when listed in `kinds`;
// - the judge runs at temperature 0 (the paper does not give its settings, and a verdict should not be
//   sampled); an answer that says neither "Equal" nor "Not Equal" keeps the evolution (elimination needs
//   equality found);
// - `gainCheck: "rouge"` is a cheap stand-in of ours, not the paper's: ROUGE-L alone (gainMinAddedWords 0)
//   eliminates every evolution that adds 10-20 words to a parent of 40 or more, as the prompt asks, since
//   2n / (2n + 20) >= 0.8 for n >= 40, so by default adding 10 words or more counts as gain;
// - a copied prompt phrase the parent already has ("the given prompt" in a seed task) is not copied;
// - each round's requests carry their own seed, so a parent back in the pool is not sent, and answered
//   from the cache with, the request that failed;
// - round 0 answers the seed with the model (the authors' Alpaca seeds came with model answers); the row
//   keeps the seed's provenance (one origin per row: the source's).
//
// Reproducible: nothing here depends on the order samples finish in. Each evolution's kind is drawn from
// the seed, the sample id and the round, each prompt depends only on its own lineage, and no operator
// keeps a pool or a counter (the pool is the stream of samples between two rounds, each carrying its own
// instruction), so the same seed and endpoint answers give the same rows at any concurrency or timing, and a
// resumed run (the runner redoes unfinished source records whole and skips rows already committed) ends
// with the rows of an uninterrupted one. This costs nothing: the rounds stay pipelined.
//
// Output columns (data): instruction (the seed's prompt in round 0, else the evolved prompt), output (its
// answer), evolution (the kind; "seed" in round 0), round (0..rounds), parent_instruction (what it evolved
// from; null in round 0).
// Provenance: round-0 rows keep the seed's (origin of the source, human for the built-in seeds; depth 0;
// their output is a model's answer, recorded by the respond_0 step); evolved rows depth = round, origin
// synthetic. Steps: respond_0, fork_0, then per round evolve_<k> (note: "<kind> (in-depth|in-breadth),
// round k"), respond_<k>, eliminate_<k> (note: "row of its round", "evolves in round k+1", or "back to the
// pool: <reason>" on the parent's copy when the evolution failed).
//
//   rxsynth run graphs/evol-instruct.ts --set count=100 --set rounds=4 --out out/evol
import { filter, merge, share, tap, type Observable, type OperatorFunction } from "rxjs";
import { z } from "zod";
import {
  ConfigError,
  compose,
  currentRunContext,
  defineFanOut,
  defineGraph,
  drop,
  openSource,
  resolveDataPath,
  type Child,
  type DropVerdict,
  type Operator,
  type Sample,
  type StepExtras,
} from "../src/index.ts";
import type { Llm } from "../src/llm/index.ts";
import { rougeL } from "../operators/diversity/rouge.ts";
import { asker, llmMap, type Asker } from "../operators/generate/llm-map.ts";
import { openEndpoint } from "./lib/endpoint.ts";
import { firstRecords, seededRng, text, wordCount } from "./lib/llm-steps.ts";

const KINDS = ["add_constraints", "deepen", "concretize", "increase_reasoning", "complicate_input", "breadth"] as const;
type EvolutionKind = (typeof KINDS)[number];
/** The five prompts the authors' main.py picks from, uniformly. */
const PAPER_KINDS: EvolutionKind[] = ["add_constraints", "deepen", "concretize", "increase_reasoning", "breadth"];

export const defaults = {
  /** Instructions to evolve: JSONL/JSON/Parquet/Arrow/text file, folder or glob; `builtin:NAME` is data/NAME. */
  input: "builtin:self_instruct_seed_tasks.jsonl",
  /** Field holding the instruction; an `input` field, or the first of `instances`, is appended when present. */
  instructionField: "instruction",
  /** Instructions read from the input. */
  count: 50,
  /** Evolution rounds after round 0 (the paper ran 4). */
  rounds: 4,
  /** Kinds drawn uniformly each round: add_constraints, deepen, concretize, increase_reasoning, complicate_input (in-depth), breadth (in-breadth). Default the authors' five. */
  kinds: [...PAPER_KINDS] as string[],
  /** "judge" (the paper's): an LLM says whether the two instructions are equal; "rouge": a cheap stand-in, see gainThreshold. */
  gainCheck: "judge" as "rouge" | "judge",
  /** With gainCheck "rouge": ROUGE-L to the parent at or above this is no gain, unless the rewrite adds gainMinAddedWords words or more. */
  gainThreshold: 0.8,
  /** With gainCheck "rouge": the prompt asks for 10 to 20 added words, and ROUGE-L of a 40-word parent plus 20 words is 0.8, so adding this many is gain. 0: ROUGE-L alone, which eliminates them. */
  gainMinAddedWords: 10,
  /** An answer mentioning "sorry" with fewer words than this is an apology. */
  apologyMaxWords: 80,
  /** Answers with fewer words are too short. */
  minOutputWords: 3,
  /** Model on a real endpoint; "" = RXSYNTH_MODEL, else gpt-4o-mini. */
  model: "",
  /** Price per 1M tokens over the built-in table: "input=<usd>,output=<usd>[,cached=<usd>]" or JSON by model; "" = the table. RXSYNTH_PRICE wins. */
  price: "",
  /** Evolutions and answers (the authors': 1). */
  temperature: 1,
  /** Evolutions and answers (the authors': 0.95). */
  topP: 0.95,
  concurrency: 32,
  seed: 42,
};

const DEPTH_METHODS: Record<Exclude<EvolutionKind, "breadth">, string> = {
  add_constraints: "Add one more constraint or requirement to it.",
  deepen: "If it asks about a specific matter, increase the depth and breadth of what it asks.",
  concretize: "Replace general concepts with more specific ones.",
  increase_reasoning: "If it can be solved with a few simple steps, rewrite it to explicitly require multi-step reasoning.",
  complicate_input: "Add a concrete input for it to work on, such as a small table, a code snippet, a list of data or a formula, and refer to it.",
};

/** The evolution prompt (ours, after the paper's templates); the answer comes back as {"new_prompt": ...}. */
export function evolutionMessages(kind: EvolutionKind, prompt: string) {
  const body =
    kind === "breadth"
      ? "Draw inspiration from the prompt below to create a brand-new prompt. It belongs to the same domain but is about a rarer, more specific topic. " +
        "Keep its length and difficulty similar, and make sure people could understand and answer it."
      : "Rewrite the prompt below into a more complex version that well-known AI assistants would find harder to handle, " +
        "while it stays reasonable, understandable and answerable by people. Keep any non-text parts such as tables or code. " +
        `Method: ${DEPTH_METHODS[kind]} Add no more than 10 to 20 words.`;
  return [
    {
      role: "user" as const,
      content: `${body}\nDo not mention these directions or refer to "the prompt" in the result.\n\nPrompt:\n${prompt}\n\nReply as JSON: {"new_prompt": "..."}.`,
    },
  ];
}

/** The paper's equality question (appendix G), in our words: the answer is "Equal" or "Not Equal". */
export function equalityMessages(parent: string, evolved: string) {
  return [
    {
      role: "user" as const,
      content:
        "Here are two instructions to an AI assistant. Are they equal to each other, meeting both of these requirements?\n" +
        "1. They have the same constraints and requirements.\n2. They have the same depth and breadth of inquiry.\n\n" +
        `The first instruction:\n${parent}\n\nThe second instruction:\n${evolved}\n\n` +
        "Your judgement (just answer Equal or Not Equal, without a reason):",
    },
  ];
}

/** Whether a judge's answer finds the two instructions equal; an answer that says neither is not a finding. */
export function judgedEqual(answer: string): boolean {
  if (/\bnot\s+equal\b|\bunequal\b/i.test(answer)) return false;
  return /\bequal\b/i.test(answer);
}

const EvolvedPrompt = z.strictObject({ new_prompt: z.string() });

const COPIED_PROMPT_WORDS = ["#given prompt#", "#rewritten prompt#", "#created prompt#", "given prompt", "rewritten prompt", "created prompt", "new_prompt"];
const STOP_WORDS = new Set(
  "a an the and or but if of to in on at by for with from as is are was were be been it this that these those i you he she we they me my your our their not no so do does did".split(" "),
);

/** The text to evolve: the instruction, with its input when the record has one. */
function promptOf(sample: Sample, field: string): string {
  const instruction = text(sample, field);
  const instances = sample.data.instances;
  const input =
    typeof sample.data.input === "string"
      ? sample.data.input
      : Array.isArray(instances) && typeof instances[0]?.input === "string"
        ? (instances[0].input as string)
        : "";
  return input.trim().length > 0 ? `${instruction}\n\n${input.trim()}` : instruction;
}

/** The thresholds of the elimination step. */
export type EliminationRules = Pick<typeof defaults, "gainCheck" | "gainThreshold" | "gainMinAddedWords" | "apologyMaxWords" | "minOutputWords">;

/**
 * The paper's elimination of failed evolutions, for one evolved instruction, its parent and its answer.
 * With `gainCheck: "judge"` the information-gain test is the judge's and is not made here.
 */
export function eliminationVerdict(instruction: string, parent: string, output: string, rules: EliminationRules): true | DropVerdict {
  const [lower, parentLower] = [instruction.toLowerCase(), parent.toLowerCase()];
  // Copied from the evolution prompt, that is: a parent that says "the given prompt" itself may keep it.
  const copied = COPIED_PROMPT_WORDS.find((words) => lower.includes(words) && !parentLower.includes(words));
  if (copied) return drop("copied_prompt_words", { message: `the rewrite contains "${copied}"` });
  if (rules.gainCheck === "rouge") {
    const similarity = rougeL(instruction, parent);
    const added = wordCount(instruction) - wordCount(parent);
    const lengthens = rules.gainMinAddedWords > 0 && added >= rules.gainMinAddedWords;
    if (similarity >= rules.gainThreshold && !lengthens) {
      return drop("no_information_gain", { value: similarity, threshold: rules.gainThreshold, message: `${added} words added` });
    }
  }
  const words = wordCount(output);
  if (/\bsorry\b/i.test(output) && words < rules.apologyMaxWords) return drop("apology", { value: words, threshold: rules.apologyMaxWords });
  const content = output.toLowerCase().split(/[^\p{L}\p{N}]+/u).filter((word) => word.length > 0 && !STOP_WORDS.has(word));
  if (content.length === 0) return drop("stop_words_only");
  if (words < rules.minOutputWords) return drop("too_short", { value: words, threshold: rules.minOutputWords });
  return true;
}

/** The paper's information-gain judge: temperature 0, the answer read as text by `judgedEqual`. */
export function equalityJudge(llm: Llm, seed: number): Asker<boolean> {
  return asker({ llm, parse: (answer: string) => judgedEqual(answer), temperature: 0, seed });
}

const ROW = "row of its round";
const POOL = "back to the pool";
const lastNote = (sample: Sample) => sample.provenance.steps.at(-1)?.note ?? "";
const isRow = (sample: Sample) => lastNote(sample) === ROW;
const isPooled = (sample: Sample) => lastNote(sample).startsWith(POOL);

/**
 * A failed evolution: its reject, and, unless it was the last round, its parent's instruction back in the
 * pool for the next round. `next` when the failing sample is the parent itself (the evolution call failed),
 * so the copy is one generation on like every sample of the next round's pool.
 */
function backToPool(parent: string, verdict: DropVerdict, last: boolean, generation: "next" | "same"): (Child | DropVerdict)[] {
  if (last) return [verdict];
  return [verdict, { data: { instruction: parent }, generation, step: { note: `${POOL}: ${verdict.reason}` } }];
}

/**
 * Round k's elimination: the rules, then (with `judge`) the paper's LLM judge. A survivor leaves as the
 * round's row and, before the last round, as a copy that evolves further; a failure as its reject and its
 * parent back in the pool.
 */
export function eliminateStep(round: number, last: boolean, rules: EliminationRules, judge: Asker<boolean> | undefined, concurrency = 32): Operator {
  const { gainCheck, gainThreshold, gainMinAddedWords, apologyMaxWords, minOutputWords } = rules;
  return defineFanOut({
    name: `eliminate_${round}`,
    params: { gainCheck, gainThreshold, gainMinAddedWords, apologyMaxWords, minOutputWords, judge: judge?.params ?? null, round, last },
    reads: ["instruction", "parent_instruction", "output"],
    concurrency,
    async expand(sample, _state, context, signal) {
      const [instruction, parent] = [text(sample, "instruction"), text(sample, "parent_instruction")];
      const ruled = eliminationVerdict(instruction, parent, text(sample, "output"), rules);
      if (ruled !== true) return backToPool(parent, ruled, last, "same");
      let step: StepExtras = {};
      if (judge) {
        const answer = await judge.ask(equalityMessages(parent, instruction), context, signal);
        if (!answer.ok) return backToPool(parent, answer.verdict, last, "same");
        if (answer.value) return backToPool(parent, drop("no_information_gain", { message: `judge: ${answer.text.trim().slice(0, 200)}` }), last, "same");
        step = answer.step;
      }
      const row: Child = { data: sample.data, generation: "same", step: { ...step, note: ROW } };
      return last ? [row] : [row, { data: sample.data, generation: "same", step: { note: `evolves in round ${round + 1}` } }];
    },
  });
}

/**
 * Runs round 0 and the evolution rounds so that every round's survivors are both rows and the next round's
 * pool: a sample whose last note is ROW leaves as a row, one whose note says it is back in the pool skips
 * the rest of its round, every other one goes on (to the next step, or from the round's last step to the
 * next round). One operator to the graph; the inner operators keep their own names and counters.
 */
function evolutionRounds(name: string, seedRound: readonly Operator[], rounds: readonly (readonly Operator[])[]): Operator {
  const inFlowOrder = [...seedRound, ...rounds.flat()];
  const run: OperatorFunction<Sample, Sample> = (source) => {
    // Registered before the inner operators subscribe (last first), so reports list them as samples flow.
    const metrics = currentRunContext(name).metrics;
    const counters = metrics.counters(name);
    for (const op of inFlowOrder) metrics.counters(op.meta.name);
    const rows: Observable<Sample>[] = [];
    const seeded = seedRound.reduce<Observable<Sample>>((stream, op) => stream.pipe(op), source.pipe(tap(() => counters.in++))).pipe(share());
    rows.push(seeded.pipe(filter(isRow)));
    let pool: Observable<Sample> = seeded.pipe(filter((sample) => !isRow(sample)));
    for (const stage of rounds) {
      const nextPool: Observable<Sample>[] = [];
      let stream = pool;
      for (const op of stage) {
        const out = stream.pipe(op, share());
        nextPool.push(out.pipe(filter(isPooled)));
        stream = out.pipe(filter((sample) => !isPooled(sample)));
      }
      const done = stream.pipe(share());
      rows.push(done.pipe(filter(isRow)));
      nextPool.push(done.pipe(filter((sample) => !isRow(sample))));
      pool = merge(...nextPool);
    }
    return merge(...rows).pipe(tap(() => counters.out++));
  };
  return Object.assign(run, { meta: compose(name, inFlowOrder).meta });
}

export default defineGraph({
  name: "evol-instruct",
  description: "Evol-Instruct (WizardLM, Xu et al. 2023): instructions evolved in depth and breadth over rounds, answered, failed evolutions eliminated and their parents evolved again",
  defaults,
  async build(options, env) {
    if (!Number.isInteger(options.rounds) || options.rounds < 1) throw new ConfigError(`evol-instruct: rounds must be a positive integer, got ${options.rounds}`);
    const unknown = options.kinds.filter((kind) => !(KINDS as readonly string[]).includes(kind));
    if (options.kinds.length === 0 || unknown.length > 0) {
      throw new ConfigError(`evol-instruct: kinds must be a non-empty list of ${KINDS.join(", ")}; unknown: ${unknown.join(", ") || "(empty list)"}`);
    }
    if (options.gainCheck !== "rouge" && options.gainCheck !== "judge") throw new ConfigError(`evol-instruct: gainCheck is "rouge" or "judge", got ${JSON.stringify(options.gainCheck)}`);
    const kinds = options.kinds as EvolutionKind[];
    const source = firstRecords(await openSource(resolveDataPath(options.input)), options.count);
    const endpoint = await openEndpoint(env, { model: options.model || undefined, seed: options.seed, concurrency: options.concurrency, price: options.price });
    const { llm } = endpoint;
    const sampling = { llm, temperature: options.temperature, topP: options.topP };
    // Each round its own request seed: a parent back in the pool is not sent the request that failed.
    const roundSeed = (round: number) => seededRng(options.seed, "round", round).int(0, 2 ** 31 - 1);
    const judge = options.gainCheck === "judge" ? equalityJudge(llm, options.seed) : undefined;

    const respond0 = llmMap({
      ...sampling,
      name: "respond_0",
      prompt: (sample) => [{ role: "user", content: promptOf(sample, options.instructionField) }],
      write: (output, sample) => ({ instruction: promptOf(sample, options.instructionField), output: output.trim(), evolution: "seed", round: 0, parent_instruction: null }),
      note: () => "round 0: the seed instruction, answered",
      reads: [options.instructionField],
      writes: ["instruction", "output", "evolution", "round", "parent_instruction"],
      seed: roundSeed(0),
    });
    const fork0 = defineFanOut({
      name: "fork_0",
      expand: (sample) => [
        { data: sample.data, generation: "same" as const, step: { note: ROW } },
        { data: sample.data, generation: "same" as const, step: { note: "evolves in round 1" } },
      ],
    });

    const stage = (round: number): Operator[] => {
      const last = round === options.rounds;
      const evolveAsk = asker({ ...sampling, parse: EvolvedPrompt, seed: roundSeed(round), schemaName: "evolution" });
      const respondAsk = asker({ ...sampling, seed: roundSeed(round) });
      const evolve = defineFanOut({
        name: `evolve_${round}`,
        params: { ...evolveAsk.params, kinds, round },
        reads: ["instruction"],
        writes: ["instruction", "parent_instruction", "evolution", "round"],
        concurrency: llm.concurrency,
        async expand(sample, _state, context, signal) {
          const kind = seededRng(options.seed, sample.id, round).pick(kinds);
          const parent = text(sample, "instruction");
          const answer = await evolveAsk.ask(evolutionMessages(kind, parent), context, signal);
          if (!answer.ok) return backToPool(parent, answer.verdict, last, "next");
          const scope = kind === "breadth" ? "in-breadth" : "in-depth";
          return [
            {
              data: { instruction: answer.value.new_prompt.trim(), parent_instruction: parent, evolution: kind, round },
              step: { ...answer.step, note: `${kind} (${scope}), round ${round}` },
            },
          ];
        },
      });
      // A fan-out rather than llmMap: a failed answer is a failed evolution, whose parent goes back to the pool.
      const respond = defineFanOut({
        name: `respond_${round}`,
        params: respondAsk.params,
        reads: ["instruction"],
        writes: ["output"],
        concurrency: llm.concurrency,
        async expand(sample, _state, context, signal) {
          const answer = await respondAsk.ask([{ role: "user", content: text(sample, "instruction") }], context, signal);
          if (!answer.ok) return backToPool(text(sample, "parent_instruction"), answer.verdict, last, "same");
          return [{ data: { ...sample.data, output: answer.value.trim() }, generation: "same", step: answer.step }];
        },
      });
      return [evolve, respond, eliminateStep(round, last, options, judge, llm.concurrency)];
    };

    const rounds = Array.from({ length: options.rounds }, (_, index) => stage(index + 1));
    return { sources: [source], operators: [evolutionRounds("evolution", [respond0, fork0], rounds)], dispose: () => endpoint.dispose(), chunkable: true };
  },
});

