// Evol-Instruct (Xu et al. 2023, "WizardLM: Empowering Large Language Models to Follow Complex
// Instructions"): rewrites instructions, round after round, into harder ones (in-depth evolution: add
// constraints, deepen, concretize, increase reasoning steps, complicate the input) or into new, rarer
// ones of the same domain (in-breadth evolution), answers each, and eliminates failed evolutions.
//
// In each round every surviving instruction is evolved once, by a kind drawn (seeded per sample and
// round) from `kinds`. A failed evolution goes to rejects with its reason, as the paper's elimination
// step does: no_information_gain (ROUGE-L to the parent at or above `gainThreshold`, or with
// `gainCheck: "judge"` an LLM that finds both instructions equal), copied_prompt_words (the rewrite
// kept "#Rewritten Prompt#", "given prompt" and the like), apology (the answer says sorry in fewer than
// `apologyMaxWords` words), stop_words_only (nothing but punctuation and stop words), too_short (fewer
// than `minOutputWords` words). Every surviving round is a row and the seed of the next round, so a
// seed instruction yields up to `rounds` rows of rising depth.
//
// Reproducible: nothing here depends on the order samples finish in. Each evolution's kind is drawn from
// the seed, the sample id and the round, each prompt depends only on its own lineage, and no operator
// keeps a pool or a counter, so the same seed and endpoint answers give the same rows at any concurrency
// or timing, and a resumed run (the runner redoes unfinished source records whole and skips rows already
// committed) ends with the rows of an uninterrupted one. This costs nothing: the rounds stay pipelined.
//
// Output columns (data): instruction (the evolved prompt), output (its answer), evolution (the kind),
// round (1..rounds), parent_instruction (what it evolved from).
// Provenance: depth = round (each evolution is a fan-out child, depth + 1), origin synthetic; steps:
// evolve_<k> (note: "<kind> (in-depth|in-breadth), round k"), respond_<k>, fork_<k> (note: whether the
// copy is the round's row or evolves further).
//
//   rxsynth run graphs/evol-instruct.ts --set count=100 --set rounds=4 --out out/evol
import { filter, merge, share, tap, type Observable, type OperatorFunction } from "rxjs";
import { z } from "zod";
import {
  ConfigError,
  compose,
  currentRunContext,
  defineAsyncFilter,
  defineFanOut,
  defineFilter,
  defineGraph,
  drop,
  openSource,
  resolveDataPath,
  type DropVerdict,
  type Operator,
  type Sample,
} from "../src/index.ts";
import { rougeL } from "../operators/diversity/rouge.ts";
import { asker, llmMap } from "../operators/generate/llm-map.ts";
import { openEndpoint } from "./lib/endpoint.ts";
import { firstRecords, seededRng, text, wordCount } from "./lib/llm-steps.ts";

const KINDS = ["add_constraints", "deepen", "concretize", "increase_reasoning", "complicate_input", "breadth"] as const;
type EvolutionKind = (typeof KINDS)[number];

export const defaults = {
  /** Instructions to evolve: JSONL/JSON/Parquet/Arrow/text file, folder or glob; `builtin:NAME` is data/NAME. */
  input: "builtin:self_instruct_seed_tasks.jsonl",
  /** Field holding the instruction; an `input` field, or the first of `instances`, is appended when present. */
  instructionField: "instruction",
  /** Instructions read from the input. */
  count: 50,
  /** Evolution rounds (the paper ran 4). */
  rounds: 3,
  /** Kinds drawn from each round: add_constraints, deepen, concretize, increase_reasoning, complicate_input (in-depth), breadth (in-breadth). */
  kinds: [...KINDS] as string[],
  /** "rouge": ROUGE-L to the parent at or above gainThreshold is no gain; "judge": an LLM compares the two. */
  gainCheck: "rouge" as "rouge" | "judge",
  gainThreshold: 0.8,
  /** An answer mentioning "sorry" with fewer words than this is an apology. */
  apologyMaxWords: 80,
  /** Answers with fewer words are too short. */
  minOutputWords: 3,
  /** Model on a real endpoint; "" = RXSYNTH_MODEL, else gpt-4o-mini. */
  model: "",
  /** Price per 1M tokens over the built-in table: "input=<usd>,output=<usd>[,cached=<usd>]" or JSON by model; "" = the table. RXSYNTH_PRICE wins. */
  price: "",
  temperature: 0.7,
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

const EvolvedPrompt = z.strictObject({ new_prompt: z.string() });
const Equality = z.strictObject({ reason: z.string(), equal: z.boolean() });

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
export type EliminationRules = Pick<typeof defaults, "gainCheck" | "gainThreshold" | "apologyMaxWords" | "minOutputWords">;

/**
 * The paper's elimination of failed evolutions, for one evolved instruction, its parent and its answer.
 * With `gainCheck: "judge"` the information-gain test is the judge's and is not made here.
 */
export function eliminationVerdict(instruction: string, parent: string, output: string, rules: EliminationRules): true | DropVerdict {
  const lower = instruction.toLowerCase();
  const copied = COPIED_PROMPT_WORDS.find((words) => lower.includes(words));
  if (copied) return drop("copied_prompt_words", { message: `the rewrite contains "${copied}"` });
  if (rules.gainCheck === "rouge") {
    const similarity = rougeL(instruction, parent);
    if (similarity >= rules.gainThreshold) return drop("no_information_gain", { value: similarity, threshold: rules.gainThreshold });
  }
  const words = wordCount(output);
  if (/\bsorry\b/i.test(output) && words < rules.apologyMaxWords) return drop("apology", { value: words, threshold: rules.apologyMaxWords });
  const content = output.toLowerCase().split(/[^\p{L}\p{N}]+/u).filter((word) => word.length > 0 && !STOP_WORDS.has(word));
  if (content.length === 0) return drop("stop_words_only");
  if (words < rules.minOutputWords) return drop("too_short", { value: words, threshold: rules.minOutputWords });
  return true;
}

const ROW = "row of its round";

/**
 * Runs the rounds so that every round's survivors are both rows and the next round's input: after each
 * round but the last, `fork_<k>` makes two copies, and the copy marked as the round's row bypasses the
 * later rounds. One operator to the graph; the inner operators keep their own names and counters.
 */
function evolutionRounds(name: string, stages: readonly (readonly Operator[])[]): Operator {
  const forks = stages.slice(0, -1).map((_, index) =>
    defineFanOut({
      name: `fork_${index + 1}`,
      expand: (sample) => [
        { data: sample.data, generation: "same" as const, step: { note: ROW } },
        { data: sample.data, generation: "same" as const, step: { note: `evolves in round ${index + 2}` } },
      ],
    }),
  );
  const isRow = (sample: Sample) => sample.provenance.steps.at(-1)?.note === ROW;
  const inFlowOrder = stages.flatMap((stage, index) => (forks[index] ? [...stage, forks[index]] : stage));
  const run: OperatorFunction<Sample, Sample> = (source) => {
    // Registered before the inner operators subscribe (last first), so reports list them as samples flow.
    const metrics = currentRunContext(name).metrics;
    const counters = metrics.counters(name);
    for (const op of inFlowOrder) metrics.counters(op.meta.name);
    const rows: Observable<Sample>[] = [];
    let frontier: Observable<Sample> = source.pipe(tap(() => counters.in++));
    stages.forEach((stage, index) => {
      const out = stage.reduce<Observable<Sample>>((stream, op) => stream.pipe(op), frontier);
      const fork = forks[index];
      if (!fork) {
        rows.push(out);
        return;
      }
      const forked = out.pipe(fork, share());
      rows.push(forked.pipe(filter(isRow)));
      frontier = forked.pipe(filter((sample) => !isRow(sample)));
    });
    return merge(...rows).pipe(tap(() => counters.out++));
  };
  return Object.assign(run, { meta: compose(name, inFlowOrder).meta });
}

export default defineGraph({
  name: "evol-instruct",
  description: "Evol-Instruct (WizardLM, Xu et al. 2023): instructions evolved in depth and breadth over rounds, answered, failed evolutions eliminated",
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
    const evolveAsk = asker({ llm, parse: EvolvedPrompt, temperature: options.temperature, seed: options.seed, schemaName: "evolution" });
    const judgeAsk = asker({ llm, parse: Equality, temperature: 0, seed: options.seed, schemaName: "equality" });

    const stage = (round: number): Operator[] => {
      const evolve = defineFanOut({
        name: `evolve_${round}`,
        params: { ...evolveAsk.params, kinds, round, field: options.instructionField },
        reads: round === 1 ? [options.instructionField] : ["instruction"],
        writes: ["instruction", "parent_instruction", "evolution", "round"],
        concurrency: llm.concurrency,
        async expand(sample, _state, context, signal) {
          const kind = seededRng(options.seed, sample.id, round).pick(kinds);
          const parent = round === 1 ? promptOf(sample, options.instructionField) : text(sample, "instruction");
          const answer = await evolveAsk.ask(evolutionMessages(kind, parent), context, signal);
          if (!answer.ok) return [answer.verdict];
          const scope = kind === "breadth" ? "in-breadth" : "in-depth";
          return [
            {
              data: { instruction: answer.value.new_prompt.trim(), parent_instruction: parent, evolution: kind, round },
              step: { ...answer.step, note: `${kind} (${scope}), round ${round}` },
            },
          ];
        },
      });

      const respond = llmMap({
        llm,
        name: `respond_${round}`,
        prompt: (sample) => [{ role: "user", content: text(sample, "instruction") }],
        write: (output, sample) => ({ ...sample.data, output: output.trim() }),
        reads: ["instruction"],
        writes: ["output"],
        temperature: options.temperature,
        seed: options.seed,
      });

      const eliminate = defineFilter({
        name: `eliminate_${round}`,
        params: { gainCheck: options.gainCheck, gainThreshold: options.gainThreshold, apologyMaxWords: options.apologyMaxWords, minOutputWords: options.minOutputWords },
        reads: ["instruction", "parent_instruction", "output"],
        test: (sample) => eliminationVerdict(text(sample, "instruction"), text(sample, "parent_instruction"), text(sample, "output"), options),
      });

      if (options.gainCheck === "rouge") return [evolve, respond, eliminate];
      const gainJudge = defineAsyncFilter({
        name: `gain_judge_${round}`,
        params: judgeAsk.params,
        reads: ["instruction", "parent_instruction"],
        concurrency: llm.concurrency,
        async test(sample, _state, context, signal) {
          const answer = await judgeAsk.ask(
            [
              {
                role: "user",
                content:
                  "Are these two instructions equal: the same constraints and requirements, and the same depth and breadth of inquiry?\n\n" +
                  `First instruction:\n${text(sample, "parent_instruction")}\n\nSecond instruction:\n${text(sample, "instruction")}\n\n` +
                  'Reply as JSON: {"reason": "...", "equal": true or false}.',
              },
            ],
            context,
            signal,
          );
          if (!answer.ok) return answer.verdict;
          return answer.value.equal ? drop("no_information_gain", { message: answer.value.reason }) : true;
        },
      });
      return [evolve, gainJudge, respond, eliminate];
    };

    const stages = Array.from({ length: options.rounds }, (_, index) => stage(index + 1));
    return { sources: [source], operators: [evolutionRounds("evolution", stages)], dispose: () => endpoint.dispose(), chunkable: true };
  },
});
