// Self-Instruct (Wang et al. 2022, "Self-Instruct: Aligning Language Models with Self-Generated
// Instructions"): bootstraps instruction data from 175 human-written seed tasks.
//
// Each round samples 8 in-context tasks (6 human seeds + 2 instructions the run already accepted, once
// there are any; seeded per round) and asks for new instructions, sampled as the authors' code does
// (temperature 0.7, top_p 0.5, presence_penalty 2). These pass the authors' filters: more than 3 and at
// most 150 words, no image/audio/file tasks, no "Write a program" tasks, not starting with punctuation or
// a non-ASCII character, and ROUGE-L at most 0.7 (the authors drop `> 0.7`) against every seed and
// accepted instruction. The model then says whether each task is classification; instances are written
// input-first, or output-first (label, then input) for classification tasks, at temperature 0 and
// presence_penalty 1.5. Instances that are empty, copy their input, repeat another, or end in ":" (cut
// off) are dropped; a task two of whose instances answer one input differently is dropped whole, as the
// authors do. Then refusals, exact and MinHash near-duplicates; a diversity tracker writes distinct-n,
// openings and pool similarity to diversity-summary.json in the run folder.
// Up to 5 instances per task (`instancesPerTask`), as in the paper; output-first asks for an input for each
// class label, and the provenance note of generate_instances lists the labels the model gave.
// Deliberate differences from the authors' code: the prompts are chat prompts with JSON answers, not their
// GPT-3 completion templates; their fixed few-shot lists (a dozen hand-written tasks) are replaced by
// shots drawn once from the seed tasks (8 for the classification question; 2 with an input and 1 without
// for instances; 2 labelled ones for output-first), which keeps each prompt short; a classification
// answer must give at least 2 labels when more than one instance is asked for.
// MinHash dedup compares a row with the rows of other tasks only: the instances of a long instruction
// with inputs of a few words would otherwise be near-duplicates of each other and lose labels.
//
// Waves and determinism: the source yields the loop in waves of rounds (one source record per wave), each
// sized from the yield so far; a wave's prompts see only the pool as of its start. Its rows wait at
// wave_barrier until the whole wave is in, then pass in a fixed order (round, instruction, instance) to
// the order-dependent steps (ROUGE-L novelty within the wave, exact and MinHash dedup, the `target` cut,
// the pool), and the wave is folded into the pool; the next wave starts after that. So the same seed and
// the same endpoint answers give the same dataset (ids and data) at any concurrency, budget or timing,
// and a run killed at any point (kill -9 included) and resumed ends with what the uninterrupted run
// writes: the runner redoes a wave as a whole, and the loop state is saved as the list of folded waves,
// of which a resume keeps those the manifest lists as finished. Stopping: once `target` rows are accepted
// (or `maxRounds` were issued); the `target` filter rejects the last wave's surplus, the rows last in the
// wave's order, as `over_target`, so the output holds exactly `target` rows.
// Cost: a wave's rows are held until its slowest answer is in (the pipeline drains between waves, as it
// did before), the run's budget must hold a wave (parallelRounds x instructionsPerRound x instancesPerTask
// rows; less is refused), and near-duplicate instructions of one wave are caught after their instances are
// generated rather than before. benchmarks/determinism.ts measures the throughput against `deterministic:
// false` (completion order, not reproducible).
//
// Output columns (data): instruction, input ("" when the task needs none), output, is_classification.
// Provenance: rows are depth 1 (instances annotate their instruction, they are not a new generation),
// origin synthetic, parents = the instruction (whose parent is the round's generated list); steps name
// split_rounds (note: the round and its wave), sample_demos (note: the seed ids used), propose_instructions (model, tokens), split_instructions,
// classify_task, generate_instances (note: input-first / output-first) and split_instances.
// Rejects: no_instructions, too_few_words, too_many_words, unsupported_modality, starts_with_punctuation,
// non_ascii_start, program_task, too_similar, empty_output, output_copies_input, incomplete_instance,
// duplicate_instance, conflicting_instance (every instance of the task), refusal, too_similar (wave_novelty), exact_duplicate, near_duplicate, over_target
// (and LLM failures).
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
  /**
   * Instances asked for per instruction, up to (each becomes a row): the paper's 5, and for classification
   * tasks one per class label (of up to this many labels). A wave then holds up to parallelRounds x
   * instructionsPerRound x this = 640 rows, within the default budget of 1024.
   */
  instancesPerTask: 5,
  /** ROUGE-L above which a new instruction is too close to a seed or an accepted one. */
  rougeThreshold: 0.7,
  /** A ROUGE-L of exactly the threshold: "keep" (the authors' `> 0.7`) or "drop". */
  rougeAtThreshold: "keep" as "keep" | "drop",
  /** Estimated Jaccard (MinHash, word 5-grams) at or above which a row is a near-duplicate. */
  nearDupThreshold: 0.8,
  /** Accepted instructions kept for in-context sampling (a reservoir beyond this). */
  poolLimit: 10_000,
  /** Model on a real endpoint; "" = RXSYNTH_MODEL, else gpt-4o-mini. */
  model: "",
  /** Price per 1M tokens over the built-in table: "input=<usd>,output=<usd>[,cached=<usd>]" or JSON by model; "" = the table. RXSYNTH_PRICE wins. */
  price: "",
  /** Sampling of the instruction proposals: the authors' temperature 0.7, top_p 0.5, presence_penalty 2. */
  temperature: 0.7,
  topP: 0.5,
  presencePenalty: 2,
  /** Sampling of the instances: the authors' temperature 0 and presence_penalty 1.5. */
  instanceTemperature: 0,
  instancePresencePenalty: 1.5,
  /** The authors' filters: more than 3 words, no "Write a program" tasks. */
  minInstructionWords: 4,
  rejectProgramTasks: true,
  /** The authors' instance rules: a conflict (one input, two outputs) drops the whole task; inputs or outputs ending in ":" are cut off. */
  conflictDropsTask: true,
  dropColonEndings: true,
  /** LLM requests in flight. */
  concurrency: 32,
  seed: 42,
  /** Decide each wave in a fixed order (reproducible, resumable exactly); false: in completion order, for comparison. */
  deterministic: true,
};

export default defineGraph({
  name: "self-instruct",
  description: "Self-Instruct (Wang et al. 2022): seed tasks -> new instructions -> filters, ROUGE-L novelty -> instances -> dedup -> Parquet",
  defaults,
  build: (options, env) => selfInstructGraph(options, env),
});
