// Quickstart: Self-Instruct (Wang et al. 2022) in a few seconds. 200 instruction/input/output rows
// bootstrapped from the 175 human-written seed tasks: new instructions from sampled in-context seeds,
// instruction heuristics and ROUGE-L novelty, instances, refusal filter, exact and MinHash dedup, a
// diversity summary, Parquet shards. With OPENAI_BASE_URL (and OPENAI_API_KEY) set it talks to that
// endpoint; otherwise it starts the built-in simulator in-process, says so in one line, and the rows are
// placeholders with the shape real ones have. graphs/self-instruct.ts is the same pipeline with every
// option of the paper's procedure exposed.
//
// Reproducible: the same seed and the same endpoint answers give the same 200 rows (ids and data) at any
// budget or timing, and a run killed part-way and resumed ends with what an uninterrupted run writes (the
// loop runs in waves decided in a fixed order; see graphs/self-instruct.ts for how, and for the cost).
//
// Output columns (data): instruction, input, output, is_classification.
// Also in the run folder: rejects-*.parquet (each with operator and reason), diversity-summary.json.
//
//   npm start                                  (= rxsynth run graphs/quickstart.ts --out ./out)
//   rxsynth run graphs/quickstart.ts --set target=1000 --out out/quick
//   OPENAI_BASE_URL=http://localhost:8000/v1 RXSYNTH_MODEL=my-model rxsynth run graphs/quickstart.ts --out out/real
import { defineGraph } from "../src/index.ts";
import { selfInstructGraph } from "./lib/self-instruct-steps.ts";
import { defaults as selfInstructDefaults } from "./self-instruct.ts";

export const defaults = {
  /** Rows to accept. */
  target: 200,
  /** Seed tasks (JSONL with `instruction`, optional `instances` and `is_classification`); `builtin:NAME` is data/NAME. */
  seedTasks: "builtin:self_instruct_seed_tasks.jsonl",
  /** Model on a real endpoint; "" = RXSYNTH_MODEL, else gpt-4o-mini. */
  model: "",
  /** Price per 1M tokens over the built-in table: "input=<usd>,output=<usd>[,cached=<usd>]" or JSON by model; "" = the table. RXSYNTH_PRICE wins. */
  price: "",
  seed: 42,
};

export default defineGraph({
  name: "quickstart",
  description: "Self-Instruct in seconds: seed tasks -> instructions -> heuristics, ROUGE-L, MinHash dedup, diversity -> 200 rows of Parquet",
  defaults,
  // The self-instruct graph's settings, with a smaller target: one pipeline, two entry points.
  // One instance per task (the full graph asks for 5): a wave stays within a budget of 128 rows and the
  // 200 rows span 200 tasks, which is what a first look at the output should show.
  build: (options, env) => selfInstructGraph({ ...selfInstructDefaults, instancesPerTask: 1, ...options }, env),
});
