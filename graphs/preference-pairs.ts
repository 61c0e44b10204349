// Preference pairs: prompts -> k responses (several models and/or temperatures) -> pairs judged by an LLM
// in both orders -> DPO records {prompt, chosen, rejected}. The judge is MT-Bench's pairwise comparison
// (Zheng et al. 2023; also Starling / Nectar, Zhu et al. 2023): each pair asked in both orders to cancel the
// judge's position bias; pairs whose two verdicts disagree (position_bias) or tie are rejected. With more
// than maxPairsPerPrompt pairs, the pairs judged are taken in a seeded per-prompt order, not index order,
// so no response (e.g. response 0) is favoured for inclusion.
// Not yet UltraFeedback (Cui et al. 2023): that samples 4 of 17 models per prompt, adds a sampled principle
// to each completion's system prompt, rates every completion 1-5 on four aspects and binarises to best
// mean vs a random lower one. Here one pool of (model, temperature) answers is compared pairwise instead.
//
// Input: prompts from `promptsPath` (JSONL/Parquet with `prompt`, or `instruction` [+ `input`], or
// Self-Instruct seed tasks whose first instance gives the input); default: the 175 Self-Instruct seeds.
// Responses: one per (model, temperature) in `models` x `temperatures`; `models: []` uses the endpoint's
// model (on the simulator, the temperatures alone vary the answers).
//
// Output columns (data): prompt, chosen, rejected, chosen_model, rejected_model, chosen_temperature,
// rejected_temperature. Scores: judge_agreement (1: both orders agreed), judge_margin (the judge's mean
// 1-10 score of the chosen response minus the rejected one's, over both orders).
// Provenance: prompt (depth 0) -> candidates (depth 1: the k responses, one step naming every model)
// -> pairs (same generation, a step per pair) -> judge (a step with both verdicts in its note) -> dpo.
// Drop reasons: no_prompt, too_few_responses (fewer than 2 usable answers), position_bias, tie,
// low_margin (with minMargin), and the judge's judge_* / llm_error.
//
//   rxsynth run graphs/preference-pairs.ts --set count=200 --out out/prefs
//   OPENAI_BASE_URL=... rxsynth run graphs/preference-pairs.ts --set 'models=["gpt-4o-mini","gpt-4o"]' --set 'temperatures=[0.7]'
//   rxsynth export out/prefs --format dpo
import {
  ConfigError,
  defineFanOut,
  defineFilter,
  defineGraph,
  defineMap,
  drop,
  openSource,
  resolveDataPath,
  stableHash,
  type Operator,
  type SampleData,
} from "../src/index.ts";
import type { Llm } from "../src/llm/index.ts";
import { pairwiseJudge } from "../operators/filter/judge.ts";
import { asker } from "../operators/generate/llm-map.ts";
import { openEndpoint } from "./lib/endpoint.ts";
import { firstRecords } from "./lib/llm-steps.ts";

export const defaults = {
  /** Prompts to use (the first `count` records of the input). */
  count: 50,
  promptsPath: "builtin:self_instruct_seed_tasks.jsonl",
  /** Models asked for responses; [] = the endpoint's model (RXSYNTH_MODEL, else gpt-4o-mini; the simulator on no endpoint). */
  models: [] as string[],
  /** Sampling temperatures; each model answers once at each. */
  temperatures: [0.3, 0.8, 1.2] as number[],
  /** Most pairs judged per prompt (of the k(k-1)/2 possible). */
  maxPairsPerPrompt: 3,
  /** Judge model; "" = the endpoint's model. */
  judgeModel: "",
  criteria:
    "Which response follows the prompt better: correct, complete and helpful, honest about uncertainty, " +
    "and no longer than it needs to be. Penalise refusals of harmless requests and invented facts.",
  /** Drop pairs whose judge margin (chosen score - rejected score) is below this; 0 keeps every agreed pair. */
  minMargin: 0,
  /** Most tokens per response; 0 = the server's default. */
  maxTokens: 0,
  /** Price per 1M tokens over the built-in table: "input=<usd>,output=<usd>[,cached=<usd>]" or JSON by model; "" = the table. RXSYNTH_PRICE wins. */
  price: "",
  seed: 42,
};

/** A view of a client that sends another model name; limits, cache and totals stay shared. */
function withModel(llm: Llm, model: string): Llm {
  if (model === "" || model === llm.model) return llm;
  return {
    model,
    baseURL: llm.baseURL,
    get supportsJsonSchema() {
      return llm.supportsJsonSchema;
    },
    concurrency: llm.concurrency,
    chat: (request, options) => llm.chat({ ...request, model: request.model ?? model }, options),
    stats: () => llm.stats(),
    limits: () => llm.limits(),
    // The shared client is closed once, by the endpoint.
    close: async () => {},
  };
}

/** The prompt text of an input record: `prompt`, or `instruction` with its input (a seed task's first instance). */
export function promptText(data: SampleData): string {
  if (typeof data.prompt === "string" && data.prompt.trim()) return data.prompt.trim();
  if (typeof data.instruction !== "string" || !data.instruction.trim()) return "";
  const instances = Array.isArray(data.instances) ? (data.instances as { input?: unknown }[]) : [];
  const input = typeof data.input === "string" ? data.input : typeof instances[0]?.input === "string" ? instances[0].input : "";
  return input.trim() ? `${data.instruction.trim()}\n\n${input.trim()}` : data.instruction.trim();
}

interface Response {
  readonly text: string;
  readonly model: string;
  readonly temperature: number;
}

export default defineGraph({
  name: "preference-pairs",
  description: "Preference pairs (MT-Bench-style pairwise judge, as in Starling): k responses (models x temperatures) -> pairwise judge in both orders -> DPO pairs",
  defaults,
  async build(options, env) {
    if (options.temperatures.length === 0) throw new ConfigError("preference-pairs: temperatures is empty; give at least one");
    const source = firstRecords(await openSource(resolveDataPath(options.promptsPath), { name: "prompts" }), options.count);
    const endpoint = await openEndpoint(env, { seed: options.seed, price: options.price });
    const models = options.models.length > 0 ? options.models : [endpoint.llm.model];
    const configs = models.flatMap((model) => options.temperatures.map((temperature) => ({ model, temperature })));
    if (configs.length < 2) {
      await endpoint.dispose();
      throw new ConfigError("preference-pairs: models x temperatures gives one response per prompt; a pair needs at least two");
    }
    const askers = configs.map((config) =>
      asker({
        llm: withModel(endpoint.llm, config.model),
        temperature: config.temperature,
        seed: options.seed,
        ...(options.maxTokens > 0 ? { maxTokens: options.maxTokens } : {}),
      }),
    );
    const judgeLlm = withModel(endpoint.llm, options.judgeModel);

    const operators: Operator[] = [
      defineFanOut({
        name: "candidates",
        params: { configs, maxTokens: options.maxTokens, askers: askers.map((a) => a.params) },
        concurrency: Math.max(1, Math.floor(endpoint.llm.concurrency / configs.length)),
        async expand(sample, _state, context, signal) {
          const prompt = promptText(sample.data);
          if (!prompt) return [drop("no_prompt", { message: "the record has no prompt or instruction text" })];
          const messages = [{ role: "user" as const, content: prompt }];
          const answers = await Promise.all(askers.map((a) => a.ask(messages, context, signal)));
          const responses: Response[] = [];
          const failures: string[] = [];
          let promptTokens = 0;
          let completionTokens = 0;
          let latencyMs = 0;
          answers.forEach((answer, i) => {
            const { model, temperature } = configs[i]!;
            if (!answer.ok) {
              failures.push(`${model}@${temperature}: ${answer.verdict.reason}`);
              return;
            }
            responses.push({ text: answer.text.trim(), model, temperature });
            promptTokens += answer.step.promptTokens ?? 0;
            completionTokens += answer.step.completionTokens ?? 0;
            latencyMs = Math.max(latencyMs, answer.step.latencyMs ?? 0);
          });
          if (responses.length < 2) {
            return [drop("too_few_responses", { value: responses.length, threshold: 2, message: failures.join("; ") })];
          }
          return [
            {
              data: { prompt, responses },
              step: {
                model: [...new Set(responses.map((r) => r.model))].join(","),
                promptHash: stableHash(messages),
                promptTokens,
                completionTokens,
                latencyMs,
                note: `${responses.length} of ${configs.length} responses${failures.length > 0 ? `; failed: ${failures.join("; ")}` : ""}`,
              },
            },
          ];
        },
      }),
      defineFanOut({
        name: "pairs",
        params: { maxPairsPerPrompt: options.maxPairsPerPrompt },
        reads: ["prompt", "responses"],
        expand(sample) {
          const responses = sample.data.responses as Response[];
          const pairs: [number, number][] = [];
          for (let i = 0; i < responses.length; i++) {
            for (let j = i + 1; j < responses.length; j++) {
              // Two identical answers teach nothing as a preference.
              if (responses[i]!.text !== responses[j]!.text) pairs.push([i, j]);
            }
          }
          if (pairs.length === 0) return [drop("identical_responses")];
          // Index order would keep (0,1), (0,2), (0,3)... when k > 3, so response 0 would be in every pair; a
          // per-prompt seeded order gives every response the same chance to be judged.
          const ordered = pairs
            .map((pair) => ({ pair, key: stableHash([sample.data.prompt, pair]) }))
            .sort((x, y) => (x.key < y.key ? -1 : x.key > y.key ? 1 : 0))
            .map(({ pair }) => pair);
          return ordered.slice(0, options.maxPairsPerPrompt).map(([i, j]) => {
            const a = responses[i]!;
            const b = responses[j]!;
            return {
              generation: "same" as const,
              data: {
                prompt: sample.data.prompt,
                response_a: a.text,
                response_b: b.text,
                model_a: a.model,
                model_b: b.model,
                temperature_a: a.temperature,
                temperature_b: b.temperature,
              },
              step: { note: `responses ${i} and ${j}` },
            };
          });
        },
      }),
      pairwiseJudge({
        llm: judgeLlm,
        name: "judge",
        criteria: options.criteria,
        instruction: "prompt",
        first: "response_a",
        second: "response_b",
        scores: true,
        seed: options.seed,
      }),
      defineMap({
        name: "dpo",
        reads: ["prompt", "chosen", "rejected"],
        map(sample) {
          const d = sample.data;
          const aWon = d.chosen === d.response_a;
          return {
            data: {
              prompt: d.prompt,
              chosen: d.chosen,
              rejected: d.rejected,
              chosen_model: aWon ? d.model_a : d.model_b,
              rejected_model: aWon ? d.model_b : d.model_a,
              chosen_temperature: aWon ? d.temperature_a : d.temperature_b,
              rejected_temperature: aWon ? d.temperature_b : d.temperature_a,
            },
          };
        },
      }),
    ];
    if (options.minMargin > 0) {
      operators.push(
        defineFilter({
          name: "margin",
          params: { minMargin: options.minMargin },
          test: (sample) => {
            const margin = sample.scores.judge_margin ?? 0;
            return margin >= options.minMargin ? true : drop("low_margin", { value: margin, threshold: options.minMargin });
          },
        }),
      );
    }
    return { sources: [source], operators, dispose: endpoint.dispose, chunkable: true };
  },
});
