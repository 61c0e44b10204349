// Self-Instruct (Wang et al. 2022, "Self-Instruct: Aligning Language Models with Self-Generated
// Instructions"): bootstraps instruction data from 175 human-written seed tasks.
//
// Each round samples 8 in-context tasks (6 human seeds + 2 instructions the run already accepted, once
// there are any; seeded per round) and asks for new instructions. These pass the paper's filters: 3-150
// words, no image/audio/file tasks, not starting with punctuation or a non-ASCII character, and ROUGE-L
// below 0.7 against every seed and accepted instruction. The model then says whether each task is
// classification; instances are written input-first, or output-first (label, then input) for
// classification tasks. Instances that are empty, copy their input, or repeat or contradict another of the
// same task are dropped, then refusals, exact and MinHash near-duplicates; a diversity tracker writes
// distinct-n, openings and pool similarity to diversity-summary.json in the run folder.
//
// Stopping: the source yields prompt rounds in waves, sized from the yield so far, and the next wave starts
// when the previous one has left the graph (so its prompts can draw on the instructions it produced). It
// stops once `target` rows are accepted (or `maxRounds` were issued); the final `target` filter rejects
// the last wave's surplus as `over_target`, so the output holds exactly `target` rows. The accepted count
// and the in-context pool are saved with each checkpoint, so a resumed run continues toward the same target.
//
// Output columns (data): instruction, input ("" when the task needs none), output, is_classification.
// Provenance: rows are depth 1 (instances annotate their instruction, they are not a new generation),
// origin synthetic, parents = the instruction (whose parent is the round's generated list); steps name
// sample_demos (note: the seed ids used), propose_instructions (model, tokens), split_instructions,
// classify_task, generate_instances (note: input-first / output-first) and split_instances.
// Rejects: no_instructions, too_few_words, too_many_words, unsupported_modality, starts_with_punctuation,
// non_ascii_start, too_similar, empty_output, output_copies_input, duplicate_instance,
// conflicting_instance, refusal, exact_duplicate, near_duplicate, over_target (and LLM failures).
//
//   rxsynth run graphs/self-instruct.ts --set target=500 --out out/self-instruct
import { defineGraph } from "../src/index.ts";
import { selfInstructGraph } from "./lib/self-instruct-steps.ts";

export const defaults = {
  /** Seed tasks (JSONL with `instruction`, optional `instances` and `is_classification`); `builtin:NAME` is data/NAME. */
  seedTasks: "builtin:self_instruct_seed_tasks.jsonl",
  /** Rows to accept; the run stops there. */
  target: 500,
  /** New instructions asked for per round. */
  instructionsPerRound: 8,
  /** In-context examples per round: human seeds ... */
  humanDemos: 6,
  /** ... and accepted machine instructions (human seeds fill in until enough exist). */
  machineDemos: 2,
  /** Most rounds in one wave. */
  parallelRounds: 16,
  /** Upper bound on rounds; 0 = 10 * target / instructionsPerRound + parallelRounds. */
  maxRounds: 0,
  /** Ask whether each task is classification, and write those output-first (the paper's step 2). */
  classify: true,
  /** Instances asked for per instruction (each becomes a row). */
  instancesPerTask: 1,
  /** ROUGE-L at or above which a new instruction is too close to a seed or an accepted one. */
  rougeThreshold: 0.7,
  /** Estimated Jaccard (MinHash, word 5-grams) at or above which a row is a near-duplicate. */
  nearDupThreshold: 0.8,
  /** Accepted instructions kept for in-context sampling (a reservoir beyond this). */
  poolLimit: 10_000,
  /** Model on a real endpoint; "" = RXSYNTH_MODEL, else gpt-4o-mini. */
  model: "",
  /** Price per 1M tokens over the built-in table: "input=<usd>,output=<usd>[,cached=<usd>]" or JSON by model; "" = the table. RXSYNTH_PRICE wins. */
  price: "",
  temperature: 0.7,
  /** LLM requests in flight. */
  concurrency: 32,
  seed: 42,
};

export default defineGraph({
  name: "self-instruct",
  description: "Self-Instruct (Wang et al. 2022): seed tasks -> new instructions -> filters, ROUGE-L novelty -> instances -> dedup -> Parquet",
  defaults,
  build: (options, env) => selfInstructGraph(options, env),
});
