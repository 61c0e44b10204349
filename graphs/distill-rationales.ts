// Explanation tuning (Mukherjee et al. 2023, "Orca: Progressive Learning from Complex Explanation Traces
// of GPT-4"): a teacher model answers prompts under system instructions that ask for its reasoning
// (explain like I'm five, think step by step, justify the answer), so a student learns the rationale
// along with the answer. Each prompt is paired with `systemsPerPrompt` system instructions drawn (seeded
// per prompt) from `systemInstructions`; the system instruction is kept in the data and named in the
// provenance, since the student is trained with it.
//
// Default input: the 175 Self-Instruct seed tasks (instruction + the input of their first instance).
// Any JSONL/JSON/Parquet/Arrow file with an instruction field (and optionally an input field) works.
//
// Output columns (data): system_name, system (the system instruction's text), instruction, input
// ("" when none), output (the teacher's answer with its rationale).
// Provenance: depth 1, origin synthetic, parents = the prompt's copy under its system instruction (a
// same-generation child of the prompt); steps: assign_system (note:
// "system: <name>"), teacher (model, tokens).
// Rejects: refusal, too_few_words / too_many_words and the repetition rules on the answer,
// exact_duplicate, and bad LLM answers.
//
//   rxsynth run graphs/distill-rationales.ts --set systemsPerPrompt=3 --set count=500 --out out/orca
import { ConfigError, defineFanOut, defineGraph, openSource, resolveDataPath, type Child, type Sample } from "../src/index.ts";
import { exactDedup } from "../operators/dedup/exact-dedup.ts";
import { heuristicFilter } from "../operators/filter/heuristics.ts";
import { refusalFilter } from "../operators/filter/refusal.ts";
import { generate } from "../operators/generate/generate.ts";
import { openEndpoint } from "./lib/endpoint.ts";
import { firstRecords, pickDistinct, seededRng, text } from "./lib/llm-steps.ts";

export interface SystemInstruction {
  readonly name: string;
  readonly text: string;
}

export const defaults = {
  /** Prompts: JSONL/JSON/Parquet/Arrow file, folder or glob; `builtin:NAME` is the package's data/NAME. */
  input: "builtin:self_instruct_seed_tasks.jsonl",
  instructionField: "instruction",
  /** Field with the prompt's input; the first of `instances` is used when the record has that instead. */
  inputField: "input",
  /** Prompts read from the input. */
  count: 50,
  /** System instructions the teacher answers under (ours, in the spirit of Orca's sixteen). */
  systemInstructions: [
    {
      name: "eli5",
      text: "You are a helpful assistant who always explains. Answer as if you were talking to a five-year-old: use simple words and a familiar example, then give the answer plainly.",
    },
    {
      name: "step_by_step",
      text: "You are an AI assistant. Complete the user's task as faithfully as you can. Think step by step, write each step and why you take it, then state the final answer.",
    },
    {
      name: "justify",
      text: "You are an AI assistant that helps people find information. Answer the question, then justify your answer: explain the reasoning and the facts it rests on.",
    },
  ] as SystemInstruction[],
  /** System instructions per prompt (each gives its own answer). */
  systemsPerPrompt: 1,
  /** Answers with fewer words lack a rationale. */
  minOutputWords: 20,
  /** Model on a real endpoint (the teacher); "" = RXSYNTH_MODEL, else gpt-4o-mini. */
  model: "",
  /** Price per 1M tokens over the built-in table: "input=<usd>,output=<usd>[,cached=<usd>]" or JSON by model; "" = the table. RXSYNTH_PRICE wins. */
  price: "",
  temperature: 0.7,
  concurrency: 32,
  seed: 42,
};

function inputOf(sample: Sample, field: string): string {
  const direct = sample.data[field];
  if (typeof direct === "string") return direct.trim();
  const instances = sample.data.instances;
  return Array.isArray(instances) && typeof instances[0]?.input === "string" ? (instances[0].input as string).trim() : "";
}

export default defineGraph({
  name: "distill-rationales",
  description: "Orca-style explanation tuning (Mukherjee et al. 2023): teacher answers with rationales under system instructions",
  defaults,
  async build(options, env) {
    const systems = options.systemInstructions;
    if (!Array.isArray(systems) || systems.length === 0 || systems.some((s) => typeof s?.name !== "string" || typeof s?.text !== "string")) {
      throw new ConfigError('distill-rationales: systemInstructions must be a non-empty list of {"name": ..., "text": ...}');
    }
    if (new Set(systems.map((s) => s.name)).size !== systems.length) throw new ConfigError("distill-rationales: systemInstructions need distinct names");
    if (!Number.isInteger(options.systemsPerPrompt) || options.systemsPerPrompt < 1 || options.systemsPerPrompt > systems.length) {
      throw new ConfigError(`distill-rationales: systemsPerPrompt must be an integer from 1 to ${systems.length}, got ${options.systemsPerPrompt}`);
    }
    const source = firstRecords(await openSource(resolveDataPath(options.input)), options.count);
    const endpoint = await openEndpoint(env, { model: options.model || undefined, seed: options.seed, concurrency: options.concurrency, price: options.price });
    const { llm } = endpoint;

    const assignSystem = defineFanOut({
      name: "assign_system",
      params: { systems, systemsPerPrompt: options.systemsPerPrompt, seed: options.seed },
      reads: [options.instructionField],
      writes: ["system_name", "system", "instruction", "input"],
      expand(sample) {
        const chosen = pickDistinct(seededRng(options.seed, "system", sample.id), systems, options.systemsPerPrompt);
        const instruction = text(sample, options.instructionField).trim();
        const input = inputOf(sample, options.inputField);
        return chosen.map(
          (system): Child => ({
            data: { system_name: system.name, system: system.text, instruction, input },
            generation: "same",
            step: { note: `system: ${system.name}` },
          }),
        );
      },
    });

    return {
      sources: [source],
      operators: [
        assignSystem,
        generate({
          llm,
          name: "teacher",
          prompt: (sample) => {
            const input = text(sample, "input");
            return [
              { role: "system", content: text(sample, "system") },
              { role: "user", content: input ? `${text(sample, "instruction")}\n\n${input}` : text(sample, "instruction") },
            ];
          },
          write: "output",
          temperature: options.temperature,
          seed: options.seed,
        }),
        refusalFilter({ name: "refusals", fields: "output" }),
        heuristicFilter({
          name: "rationale_heuristics",
          fields: "output",
          minWords: options.minOutputWords,
          maxWords: 4000,
          // Rationales hold numbers, code and lists: only length and the repetition rules apply.
          minMeanWordLength: null,
          maxMeanWordLength: null,
          maxSymbolRatio: null,
          maxBulletLines: null,
          maxEllipsisLines: null,
          minAlphaWords: null,
          minStopWords: null,
        }),
        exactDedup({ name: "dedup_answers", fields: ["system_name", "instruction", "input", "output"], shared: env.shared }),
      ],
      dispose: () => endpoint.dispose(),
      // Each sample is judged alone; dedup is shared by the workers of a scaled-out run.
      chunkable: true,
    };
  },
});
