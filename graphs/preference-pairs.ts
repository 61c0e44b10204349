// Preference pairs: prompts -> several responses -> a judge -> DPO records {prompt, chosen, rejected}.
// Two judges (`judge`):
//
// "ultrafeedback" (default; Cui et al. 2023, OpenBMB/UltraFeedback, binarised as in
// HuggingFaceH4/ultrafeedback_binarized): per prompt, `modelsPerPrompt` (4) completions from a seeded
// sample of that many distinct models of `models`; each completion's system prompt holds a principle drawn
// per completion (helpfulness, honesty, truthfulness, verbalized calibration; our own short wording,
// drawn uniformly where the paper weights them by source data set). The judge rates every completion
// 1-5 on instruction following, honesty, truthfulness and helpfulness. Deliberately different: ONE call per
// prompt asks all four aspects as JSON (response_1..response_k, each with the four ratings), where the
// paper made one GPT-4 call per aspect; a quarter of the calls, at the risk of aspects bleeding into each
// other. chosen = the completion with the highest mean rating, rejected = a seeded random completion with
// a strictly lower mean; a tie for best (all-equal included) rejects the prompt as no_clear_best. With fewer
// models than modelsPerPrompt (e.g. `models: []`, the endpoint's model alone), the shuffled models are
// cycled: round r of the cycle samples at temperatures[r % temperatures.length] with seed + r, so repeats
// of a model still differ. With at least modelsPerPrompt models every completion is round 0.
//
// "pairwise" (MT-Bench's pairwise comparison, Zheng et al. 2023; also Starling / Nectar, Zhu et al. 2023):
// one response per (model, temperature) in `models` x `temperatures`; each pair asked in both orders to
// cancel the judge's position bias; pairs whose two verdicts disagree (position_bias) or tie are rejected.
// With more than maxPairsPerPrompt pairs, the pairs judged are taken in a seeded per-prompt order, not index
// order, so no response (e.g. response 0) is favoured for inclusion.
//
// Input: prompts from `promptsPath` (JSONL/Parquet with `prompt`, or `instruction` [+ `input`], or
// Self-Instruct seed tasks whose first instance gives the input); default: the 175 Self-Instruct seeds.
// `models: []` uses the endpoint's model (on the simulator, seeds and temperatures alone vary the answers).
//
// Output columns (data), ultrafeedback: prompt, chosen, rejected, chosen_model, rejected_model,
// chosen_principle, rejected_principle ("" with principles off), chosen_rating, rejected_rating (mean of the
// four aspects), ratings (JSON: every completion's model, principle, temperature, four ratings and mean,
// in completion order, to re-binarise). Score: rating_margin (chosen mean - rejected mean, > 0).
// Provenance: prompt (depth 0) -> completions (depth 1, one step naming every model) -> rate -> binarise.
// Drop reasons: no_prompt, too_few_responses (fewer than 2 usable completions), no_clear_best, and the
// rating call's llm_error / schema_mismatch / unparseable / refusal / truncated / empty.
//
// Output columns (data), pairwise: prompt, chosen, rejected, chosen_model, rejected_model,
// chosen_temperature, rejected_temperature. Scores: judge_agreement (1: both orders agreed), judge_margin
// (the judge's mean 1-10 score of the chosen response minus the rejected one's, over both orders).
// Provenance: prompt (depth 0) -> candidates (depth 1: the k responses, one step naming every model)
// -> pairs (same generation, a step per pair) -> judge (a step with both verdicts in its note) -> dpo.
// Drop reasons: no_prompt, too_few_responses (fewer than 2 usable answers), identical_responses,
// position_bias, tie, low_margin (with minMargin), and the judge's judge_* / llm_error.
//
//   rxsynth run graphs/preference-pairs.ts --set count=200 --out out/prefs
//   OPENAI_BASE_URL=... rxsynth run graphs/preference-pairs.ts --set 'models=["gpt-4o-mini","gpt-4o","llama-3.1-8b","qwen2.5-7b","mistral-7b"]'
//   rxsynth run graphs/preference-pairs.ts --set judge=pairwise --set 'temperatures=[0.3,1.0]'
//   rxsynth export out/prefs --format dpo
import {
  ConfigError,
  defineFanOut,
  defineFilter,
  defineGraph,
  defineAsyncMap,
  defineMap,
  drop,
  openSource,
  resolveDataPath,
  stableHash,
  type Child,
  type DropVerdict,
  type Operator,
  type SampleData,
  type StepExtras,
} from "../src/index.ts";
import type { Llm } from "../src/llm/index.ts";
import { pairwiseJudge } from "../operators/filter/judge.ts";
import { asker, type Answer } from "../operators/generate/llm-map.ts";
import { openEndpoint } from "./lib/endpoint.ts";
import { firstRecords } from "./lib/llm-steps.ts";
import {
  binarise,
  meanRating,
  PRINCIPLE_NAMES,
  PRINCIPLES,
  ratingMessages,
  ratingSchema,
  ratingsOf,
  sampleSlots,
  samplePrinciple,
  type AspectRatings,
  type Principle,
} from "./lib/ultrafeedback.ts";

export const defaults = {
  /** Prompts to use (the first `count` records of the input). */
  count: 50,
  promptsPath: "builtin:self_instruct_seed_tasks.jsonl",
  /** "ultrafeedback": each completion rated 1-5 on four aspects, best mean vs a random lower one; "pairwise": pairs judged in both orders (MT-Bench). */
  judge: "ultrafeedback" as "ultrafeedback" | "pairwise",
  /** Models asked for responses; [] = the endpoint's model (RXSYNTH_MODEL, else gpt-4o-mini; the simulator on no endpoint). */
  models: [] as string[],
  /** ultrafeedback: completions per prompt, from that many distinct models of `models` (cycled when there are fewer). */
  modelsPerPrompt: 4,
  /** ultrafeedback: a principle (helpfulness, honesty, truthfulness, verbalized calibration) in each completion's system prompt. */
  principles: true,
  /** Sampling temperatures. pairwise: each model answers once at each; ultrafeedback: round r of cycling the models uses temperatures[r % length]. */
  temperatures: [0.3, 0.8, 1.2] as number[],
  /** pairwise: most pairs judged per prompt (of the k(k-1)/2 possible). */
  maxPairsPerPrompt: 3,
  /** Judge model; "" = the endpoint's model. */
  judgeModel: "",
  /** pairwise: what the judge compares. */
  criteria:
    "Which response follows the prompt better: correct, complete and helpful, honest about uncertainty, " +
    "and no longer than it needs to be. Penalise refusals of harmless requests and invented facts.",
  /** pairwise: drop pairs whose judge margin (chosen score - rejected score) is below this; 0 keeps every agreed pair. */
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

type Options = typeof defaults;

interface Response {
  readonly text: string;
  readonly model: string;
  readonly temperature: number;
}

/** Step fields of several answers of one prompt, as one step. */
function mergedStep(steps: readonly { promptTokens?: number; completionTokens?: number; latencyMs?: number }[]) {
  return {
    promptTokens: steps.reduce((sum, step) => sum + (step.promptTokens ?? 0), 0),
    completionTokens: steps.reduce((sum, step) => sum + (step.completionTokens ?? 0), 0),
    latencyMs: steps.reduce((most, step) => Math.max(most, step.latencyMs ?? 0), 0),
  };
}

/**
 * A prompt's answers as one child (field `field`: one entry per usable answer), or too_few_responses when
 * fewer than two are usable, naming why the others failed.
 */
function answersChild<Plan extends { readonly model: string }, Entry>(
  prompt: string,
  field: string,
  plans: readonly Plan[],
  answers: readonly Answer<string>[],
  entry: (text: string, plan: Plan) => Entry,
  shared: { readonly noun: string; readonly failure: (plan: Plan) => string; readonly promptHash: string },
): (Child | DropVerdict)[] {
  const entries: Entry[] = [];
  const failures: string[] = [];
  const steps: StepExtras[] = [];
  answers.forEach((answer, i) => {
    const plan = plans[i]!;
    if (!answer.ok) return void failures.push(`${shared.failure(plan)}: ${answer.verdict.reason}`);
    entries.push(entry(answer.text.trim(), plan));
    steps.push(answer.step);
  });
  if (entries.length < 2) return [drop("too_few_responses", { value: entries.length, threshold: 2, message: failures.join("; ") })];
  const models = plans.filter((_, i) => answers[i]!.ok).map((plan) => plan.model);
  return [
    {
      data: { prompt, [field]: entries },
      step: {
        model: [...new Set(models)].join(","),
        promptHash: shared.promptHash,
        ...mergedStep(steps),
        note: `${entries.length} of ${plans.length} ${shared.noun}${failures.length > 0 ? `; failed: ${failures.join("; ")}` : ""}`,
      },
    },
  ];
}

function pairwiseOperators(options: Options, llm: Llm, models: readonly string[]): Operator[] {
  const configs = models.flatMap((model) => options.temperatures.map((temperature) => ({ model, temperature })));
  if (configs.length < 2) throw new ConfigError("preference-pairs: models x temperatures gives one response per prompt; a pair needs at least two");
  const askers = configs.map((config) =>
    asker({
      llm: withModel(llm, config.model),
      temperature: config.temperature,
      seed: options.seed,
      ...(options.maxTokens > 0 ? { maxTokens: options.maxTokens } : {}),
    }),
  );
  const operators: Operator[] = [
    defineFanOut({
      name: "candidates",
      params: { configs, maxTokens: options.maxTokens, askers: askers.map((a) => a.params) },
      concurrency: Math.max(1, Math.floor(llm.concurrency / configs.length)),
      async expand(sample, _state, context, signal) {
        const prompt = promptText(sample.data);
        if (!prompt) return [drop("no_prompt", { message: "the record has no prompt or instruction text" })];
        const messages = [{ role: "user" as const, content: prompt }];
        const answers = await Promise.all(askers.map((a) => a.ask(messages, context, signal)));
        return answersChild(prompt, "responses", configs, answers, (text, { model, temperature }): Response => ({ text, model, temperature }), {
          noun: "responses",
          failure: ({ model, temperature }) => `${model}@${temperature}`,
          promptHash: stableHash(messages),
        });
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
      llm: withModel(llm, options.judgeModel),
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
  return operators;
}

/** One UltraFeedback completion: who wrote it, under which principle ("" with principles off). */
interface Completion {
  readonly text: string;
  readonly model: string;
  readonly principle: Principle | "";
  readonly temperature: number;
}

/** One completion with its ratings, as the `ratings` column stores it. */
interface RatedCompletion extends Completion {
  readonly ratings: AspectRatings;
  readonly mean: number;
}

/** The completions operator: a seeded sample of models per prompt, each answering under a sampled principle. */
function completionsOperator(options: Options, llm: Llm, models: readonly string[]): Operator {
  const rounds = Math.ceil(options.modelsPerPrompt / models.length);
  const sampling = { seed: options.seed, ...(options.maxTokens > 0 ? { maxTokens: options.maxTokens } : {}) };
  const temperatureOf = (round: number) => options.temperatures[round % options.temperatures.length]!;
  const askers = new Map(
    models.flatMap((model) =>
      Array.from({ length: rounds }, (_, round) => [
        `${model}#${round}`,
        asker({ llm: withModel(llm, model), ...sampling, temperature: temperatureOf(round), seed: options.seed + round }),
      ]),
    ),
  );
  return defineFanOut({
    name: "completions",
    params: { models, modelsPerPrompt: options.modelsPerPrompt, principles: options.principles, askers: [...askers.values()].map((a) => a.params) },
    concurrency: Math.max(1, Math.floor(llm.concurrency / options.modelsPerPrompt)),
    async expand(sample, _state, context, signal) {
      const prompt = promptText(sample.data);
      if (!prompt) return [drop("no_prompt", { message: "the record has no prompt or instruction text" })];
      const slots = sampleSlots(models, options.modelsPerPrompt, [options.seed, prompt]);
      const planned = slots.map((slot, i) => {
        const principle: Principle | "" = options.principles ? samplePrinciple(PRINCIPLE_NAMES, [options.seed, prompt, i]) : "";
        const messages = [
          ...(principle ? [{ role: "system" as const, content: PRINCIPLES[principle] }] : []),
          { role: "user" as const, content: prompt },
        ];
        return { ...slot, principle, messages, temperature: temperatureOf(slot.round) };
      });
      const answers = await Promise.all(planned.map((p) => askers.get(`${p.model}#${p.round}`)!.ask(p.messages, context, signal)));
      return answersChild(prompt, "completions", planned, answers, (text, { model, principle, temperature }): Completion => ({ text, model, principle, temperature }), {
        noun: "completions",
        failure: ({ model }) => model,
        promptHash: stableHash(planned.map((p) => p.messages)),
      });
    },
  });
}

/** The rate operator: one judge call per prompt rates all its completions on the four aspects. */
function rateOperator(options: Options, llm: Llm): Operator {
  const judgeLlm = withModel(llm, options.judgeModel);
  // Some completions of a prompt may have failed, so there is a schema for each possible count.
  const askers = new Map(
    Array.from({ length: options.modelsPerPrompt - 1 }, (_, i) => i + 2).map((count) => [
      count,
      asker({ llm: judgeLlm, parse: ratingSchema(count), temperature: 0, seed: options.seed, schemaName: "ratings" }),
    ]),
  );
  return defineAsyncMap({
    name: "rate",
    reads: ["prompt", "completions"],
    params: { askers: [...askers.values()].map((a) => a.params) },
    concurrency: llm.concurrency,
    async map(sample, _state, context, signal) {
      const prompt = sample.data.prompt as string;
      const completions = sample.data.completions as Completion[];
      const answer = await askers.get(completions.length)!.ask(ratingMessages(prompt, completions.map((c) => c.text)), context, signal);
      if (!answer.ok) return answer.verdict;
      const ratings = ratingsOf(answer.value as Record<string, AspectRatings>, completions.length);
      const rated: RatedCompletion[] = completions.map((c, i) => ({ ...c, ratings: ratings[i]!, mean: meanRating(ratings[i]!) }));
      return { data: { prompt, completions: rated }, step: answer.step };
    },
  });
}

/** The binarise operator: best mean vs a seeded random strictly lower one, as a DPO row. */
function binariseOperator(options: Options): Operator {
  return defineMap({
    name: "binarise",
    reads: ["prompt", "completions"],
    params: { seed: options.seed },
    map(sample) {
      const prompt = sample.data.prompt as string;
      const completions = sample.data.completions as RatedCompletion[];
      const pick = binarise(completions.map((c) => c.mean), [options.seed, prompt]);
      if (!pick.ok) return drop(pick.reason, { message: pick.message });
      const chosen = completions[pick.chosen]!;
      const rejected = completions[pick.rejected]!;
      return {
        data: {
          prompt,
          chosen: chosen.text,
          rejected: rejected.text,
          chosen_model: chosen.model,
          rejected_model: rejected.model,
          chosen_principle: chosen.principle,
          rejected_principle: rejected.principle,
          chosen_rating: chosen.mean,
          rejected_rating: rejected.mean,
          ratings: JSON.stringify(completions.map(({ model, principle, temperature, ratings, mean }) => ({ model, principle, temperature, ratings, mean }))),
        },
        scores: { rating_margin: chosen.mean - rejected.mean },
        step: { note: `chosen response ${pick.chosen + 1}, rejected response ${pick.rejected + 1}` },
      };
    },
  });
}

function ultrafeedbackOperators(options: Options, llm: Llm, models: readonly string[]): Operator[] {
  if (!Number.isInteger(options.modelsPerPrompt) || options.modelsPerPrompt < 2) {
    throw new ConfigError(`preference-pairs: modelsPerPrompt is ${options.modelsPerPrompt}; a pair needs at least 2 completions per prompt`);
  }
  return [completionsOperator(options, llm, models), rateOperator(options, llm), binariseOperator(options)];
}

export default defineGraph({
  name: "preference-pairs",
  description:
    "Preference pairs: UltraFeedback (4 sampled models, principles, 1-5 ratings on four aspects, best vs a random lower one) or an MT-Bench-style pairwise judge in both orders -> DPO pairs",
  defaults,
  async build(options, env) {
    if (options.judge !== "ultrafeedback" && options.judge !== "pairwise") {
      throw new ConfigError(`preference-pairs: judge is "${String(options.judge)}"; use "ultrafeedback" or "pairwise"`);
    }
    if (options.temperatures.length === 0) throw new ConfigError("preference-pairs: temperatures is empty; give at least one");
    const source = firstRecords(await openSource(resolveDataPath(options.promptsPath), { name: "prompts" }), options.count);
    const endpoint = await openEndpoint(env, { seed: options.seed, price: options.price });
    const models = options.models.length > 0 ? options.models : [endpoint.llm.model];
    let operators: Operator[];
    try {
      operators =
        options.judge === "pairwise" ? pairwiseOperators(options, endpoint.llm, models) : ultrafeedbackOperators(options, endpoint.llm, models);
    } catch (error) {
      await endpoint.dispose();
      throw error;
    }
    return { sources: [source], operators, dispose: endpoint.dispose, chunkable: true };
  },
});
