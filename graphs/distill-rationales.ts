// Explanation tuning (Mukherjee et al. 2023, "Orca: Progressive Learning from Complex Explanation Traces
// of GPT-4"): a teacher model answers prompts under system messages that ask for its reasoning (explain
// like I'm five, think step by step, justify the answer), so a student learns the rationale along with
// the answer, and is trained with the system message that asked for it.
//
// As the paper: its sixteen system messages (Table 2, graphs/lib/orca-system-messages.ts, under the
// paper's ids, #1 the empty one), each row answered under one drawn from the subset the paper used for
// its FLAN-v2 collection (Figure 6): a row's `taskTypeField` (cot, niv2, t0, flan2021, dialogue; also
// niv, flan) picks the subset, flan2021 split by whether the query is multiple choice (#8 and #10 only
// then). The draw is uniform within the subset and seeded by (seed, row id).
// Deliberately different, and why:
// - The texts are ours, written to each message's intent: the paper's wording (typos included) is theirs.
// - The empty message (#1) is sent as no system message at all. The paper lists it as "<empty system
//   message>" without saying how it went over the wire; leaving the message out is what the Open-Orca
//   replication does, and every OpenAI-compatible server accepts it, where some refuse an empty content.
// - A row without a type, and a dialogue row (the paper did not sample Dialogue), uses `default`: every
//   id but those presupposing a form the row may lack (#8, #10 multiple choice; #9, #15 a NiV2 task
//   definition; #14 translation). The built-in Self-Instruct seed tasks carry no type: they use it.
//   A type naming no collection is rejected (unknown_task_type) rather than guessed.
// - No minimum answer length by default: the paper's messages allow short answers (a label, a yes or no
//   with one line of why), and a word floor dropped them. Only an answer that failed is rejected: empty,
//   truncated (finish_reason "length"), refused, or over 4000 words / repetitive. `minWordsBySystem` sets
//   a floor per system message for those asking for length (e.g. {"3": 50}, "a long, detailed answer").
// - `systemsPerPrompt` > 1 answers a row under several distinct messages of its subset (at most all of
//   them); the paper used one per query, the default.
//
// Default input: the 175 Self-Instruct seed tasks (instruction + the input of their first instance).
// Any JSONL/JSON/Parquet/Arrow file with an instruction field (and optionally input and task type) works.
//
// Output columns (data): system_id (the paper's id), system (its text; "" for #1), task_type (the row's
// collection, "" when none), instruction, input ("" when none), output (the teacher's answer).
// Provenance: depth 1, origin synthetic, parents = the prompt's copy under its system message (a
// same-generation child of the prompt); steps: assign_system (note: "system: <id> (<subset>)"), teacher
// (model, tokens).
// Rejects: no_instruction (no instruction or input text), unknown_task_type; empty, truncated, refusal and bad LLM answers; too_few_words (only under
// minWordsBySystem), too_many_words and the repetition rules; exact_duplicate.
//
//   rxsynth run graphs/distill-rationales.ts --set input=flan.jsonl --set taskTypeField=collection --out out/orca
import { ConfigError, defineFanOut, defineFilter, defineGraph, drop, openSource, resolveDataPath, type Child, type Sample } from "../src/index.ts";
import { exactDedup } from "../operators/dedup/exact-dedup.ts";
import { heuristicFilter } from "../operators/filter/heuristics.ts";
import { refusalFilter } from "../operators/filter/refusal.ts";
import { generate } from "../operators/generate/generate.ts";
import { openEndpoint } from "./lib/endpoint.ts";
import { firstRecords, pickDistinct, seededRng, text, wordCount } from "./lib/llm-steps.ts";
import { ORCA_SYSTEM_MESSAGES, ORCA_TASK_SUBSETS, subsetKey, taskTypeOf, type OrcaSystemMessage, type TaskSubsets } from "./lib/orca-system-messages.ts";

export const defaults = {
  /** Prompts: JSONL/JSON/Parquet/Arrow file, folder or glob; `builtin:NAME` is the package's data/NAME. */
  input: "builtin:self_instruct_seed_tasks.jsonl",
  instructionField: "instruction",
  /** Field with the prompt's input; the first of `instances` is used when the record has that instead. */
  inputField: "input",
  /** Field naming the row's FLAN-v2 collection (cot, niv2, t0, flan2021, dialogue); missing or empty = default subset. */
  taskTypeField: "task_type",
  /** Prompts read from the input. */
  count: 50,
  /** The system messages, by id (Orca's sixteen, in our words); an empty text is sent as no system message. */
  systemMessages: ORCA_SYSTEM_MESSAGES as OrcaSystemMessage[],
  /** System message ids per subset (cot, niv2, t0, flan2021, flan2021_multiple_choice, default). */
  taskSubsets: ORCA_TASK_SUBSETS as unknown as Record<string, number[]>,
  /** System messages per prompt, distinct, drawn from its subset (all of it when the subset is smaller). */
  systemsPerPrompt: 1,
  /** Minimum words of an answer, by system message id ({"3": 50}); none by default, as short answers are legitimate. */
  minWordsBySystem: {} as Record<string, number>,
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

function checkMessages(messages: unknown): Map<number, OrcaSystemMessage> {
  const list = messages as OrcaSystemMessage[];
  if (!Array.isArray(list) || list.length === 0 || list.some((m) => !Number.isInteger(m?.id) || typeof m?.text !== "string")) {
    throw new ConfigError('distill-rationales: systemMessages must be a non-empty list of {"id": <integer>, "text": <string>}');
  }
  const byId = new Map(list.map((m) => [m.id, m]));
  if (byId.size !== list.length) throw new ConfigError("distill-rationales: systemMessages need distinct ids");
  return byId;
}

function checkSubsets(subsets: unknown, byId: ReadonlyMap<number, OrcaSystemMessage>): TaskSubsets {
  const given = (subsets ?? {}) as Record<string, unknown>;
  for (const key of Object.keys(ORCA_TASK_SUBSETS)) {
    const ids = given[key];
    if (!Array.isArray(ids) || ids.length === 0 || ids.some((id) => !byId.has(id as number))) {
      throw new ConfigError(`distill-rationales: taskSubsets.${key} must be a non-empty list of ids from systemMessages, got ${JSON.stringify(ids)}`);
    }
  }
  return given as TaskSubsets;
}

function checkMinWords(minWords: unknown, byId: ReadonlyMap<number, OrcaSystemMessage>): ReadonlyMap<number, number> {
  const out = new Map<number, number>();
  for (const [key, value] of Object.entries((minWords ?? {}) as Record<string, unknown>)) {
    if (!byId.has(Number(key)) || !Number.isInteger(value) || (value as number) < 0) {
      throw new ConfigError(`distill-rationales: minWordsBySystem maps system ids to word counts >= 0, got ${key}: ${JSON.stringify(value)}`);
    }
    out.set(Number(key), value as number);
  }
  return out;
}

export default defineGraph({
  name: "distill-rationales",
  description: "Orca-style explanation tuning (Mukherjee et al. 2023): teacher answers under the paper's system messages, picked by task type",
  defaults,
  async build(options, env) {
    const byId = checkMessages(options.systemMessages);
    const subsets = checkSubsets(options.taskSubsets, byId);
    const minWords = checkMinWords(options.minWordsBySystem, byId);
    if (!Number.isInteger(options.systemsPerPrompt) || options.systemsPerPrompt < 1) {
      throw new ConfigError(`distill-rationales: systemsPerPrompt must be an integer >= 1, got ${options.systemsPerPrompt}`);
    }
    const source = firstRecords(await openSource(resolveDataPath(options.input)), options.count);
    const endpoint = await openEndpoint(env, { model: options.model || undefined, seed: options.seed, concurrency: options.concurrency, price: options.price });
    const { llm } = endpoint;

    const assignSystem = defineFanOut({
      name: "assign_system",
      version: "2",
      params: { systems: options.systemMessages, subsets, taskTypeField: options.taskTypeField, systemsPerPrompt: options.systemsPerPrompt, seed: options.seed },
      reads: [options.instructionField],
      writes: ["system_id", "system", "task_type", "instruction", "input"],
      expand(sample) {
        const raw = text(sample, options.taskTypeField).trim();
        const type = raw === "" ? undefined : taskTypeOf(raw);
        if (raw !== "" && type === undefined) {
          return [drop("unknown_task_type", { message: `${options.taskTypeField} "${raw}" names no collection (cot, niv2, t0, flan2021, dialogue)` })];
        }
        const instruction = text(sample, options.instructionField).trim();
        const input = inputOf(sample, options.inputField);
        // Nothing to ask: an answer to an empty message would be kept as a rationale for nothing.
        if (instruction === "" && input === "") {
          return [drop("no_instruction", { message: `the record has no ${options.instructionField} (or ${options.inputField}) text` })];
        }
        const subset = subsetKey(type, `${instruction}\n${input}`);
        const chosen = pickDistinct(seededRng(options.seed, "system", sample.id), subsets[subset], options.systemsPerPrompt);
        return chosen.map(
          (id): Child => ({
            data: { system_id: id, system: byId.get(id)!.text, task_type: type ?? "", instruction, input },
            generation: "same",
            step: { note: `system: ${id} (${subset})` },
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
            const user = { role: "user" as const, content: input ? `${text(sample, "instruction")}\n\n${input}` : text(sample, "instruction") };
            const system = text(sample, "system");
            return system === "" ? [user] : [{ role: "system" as const, content: system }, user];
          },
          write: "output",
          temperature: options.temperature,
          seed: options.seed,
        }),
        refusalFilter({ name: "refusals", fields: "output" }),
        defineFilter({
          name: "answer_length",
          params: { minWordsBySystem: Object.fromEntries(minWords) },
          reads: ["system_id", "output"],
          test(sample) {
            const floor = minWords.get(Number(sample.data.system_id)) ?? 0;
            const words = wordCount(text(sample, "output"));
            return words < floor ? drop("too_few_words", { value: words, threshold: floor }) : true;
          },
        }),
        heuristicFilter({
          name: "rationale_heuristics",
          fields: "output",
          minWords: null,
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
        exactDedup({ name: "dedup_answers", fields: ["system_id", "instruction", "input", "output"], shared: env.shared }),
      ],
      dispose: () => endpoint.dispose(),
      // Each sample is judged alone; dedup is shared by the workers of a scaled-out run.
      chunkable: true,
    };
  },
});
