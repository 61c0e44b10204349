// Verified math: problems with a checkable answer -> several step-by-step solutions per problem (rejection
// sampling) -> the final answer is extracted ("#### 42", "\boxed{42}", "Answer: 42") and compared with the
// reference programmatically (numbers within a tolerance, fractions and percentages read as numbers; no
// model text is ever evaluated) -> only solutions that reach the right answer are kept. Follows rejection
// sampling fine-tuning (Yuan et al. 2023), STaR (Zelikman et al. 2022: keep rationales that reach the
// correct answer; rationalize failures with the answer as a hint) and outcome supervision as in "Let's
// Verify Step by Step" (Lightman et al. 2023).
//
// Input: data/math-verified.jsonl (builtin:math-verified.jsonl), 32 arithmetic and word problems written for this graph, each
// {id, question, answer, choices (4 options, one correct)}; or any JSONL with question and answer.
// Modes: "open" asks for free text ending in "#### <answer>"; "multiple_choice" lists the choices and asks
// for structured output {steps: string[], choice: "A".."D"} (the solution is the steps plus "#### <value of
// the chosen option>", then read by the same extractor) - handy with constrained decoding, and the mode
// whose answers the offline simulator can get right by chance.
// keepCorrections: a wrong attempt gets one correction request (told its answer was wrong; with `hint`, also
// shown the reference answer, STaR's rationalization); a correction that verifies is kept as an
// error-correction example (kind "correction", with the wrong attempt alongside).
//
// Output columns (data): question, answer (reference), choices (multiple_choice only), solution (the kept
// step-by-step text), extracted (the final answer read from it), correct (true), kind ("solution" |
// "correction"), wrong_solution and wrong_answer (the corrected attempt; "" for kind "solution").
// Scores: verified (1). Drop reasons: wrong_answer (value: the extracted number, message: extracted vs
// expected), no_answer (no final answer found), exact_duplicate (same solution text twice), and generate's refusal / truncated /
// empty / schema_mismatch / llm_error.
//
//   rxsynth run graphs/math-verified.ts --set samples=8 --out out/math
//   rxsynth run graphs/math-verified.ts --set mode=multiple_choice --set keepCorrections=true --out out/math-mc
import { z } from "zod";
import {
  ConfigError,
  defineAsyncMap,
  defineFilter,
  defineGraph,
  defineMap,
  drop,
  openSource,
  type Operator,
  type Sample,
  type SampleData,
} from "../src/index.ts";
import type { ChatMessage } from "../src/llm/index.ts";
import { exactDedup } from "../operators/dedup/exact-dedup.ts";
import { generate } from "../operators/generate/generate.ts";
import { asker } from "../operators/generate/llm-map.ts";
import { openEndpoint } from "./lib/endpoint.ts";
import { firstRecords } from "./lib/llm-steps.ts";

export const defaults = {
  /** Problems to attempt (the first `count` of the file). */
  count: 32,
  problemsPath: "builtin:math-verified.jsonl",
  /** Solutions sampled per problem (rejection sampling keeps the verified ones). */
  samples: 4,
  /** "open" (free text ending in "#### answer") or "multiple_choice" (structured choice among `choices`). */
  mode: "open" as "open" | "multiple_choice",
  /** Relative tolerance for numeric answers (absolute below 1). */
  tolerance: 1e-6,
  /** Ask for one correction of each wrong attempt and keep verified corrections as error-correction examples. */
  keepCorrections: false,
  /** Show the reference answer in the correction request (STaR's rationalization). */
  hint: false,
  temperature: 0.8,
  /** Price per 1M tokens over the built-in table: "input=<usd>,output=<usd>[,cached=<usd>]" or JSON by model; "" = the table. RXSYNTH_PRICE wins. */
  price: "",
  seed: 42,
};

const LETTERS = ["A", "B", "C", "D"] as const;

/** Text after the last "\boxed{" up to its matching brace. */
function lastBoxed(text: string): string | undefined {
  const start = text.lastIndexOf("\\boxed{");
  if (start < 0) return undefined;
  let depth = 0;
  for (let i = start + 6; i < text.length; i++) {
    if (text[i] === "{") depth++;
    else if (text[i] === "}" && --depth === 0) return text.slice(start + 7, i);
  }
  return undefined;
}

/**
 * The final answer of a solution: after the last "####", else the last \boxed{...}, else the last
 * "answer is/:" phrase; undefined when the solution states none (a bare number in the prose is not taken:
 * intermediate results would pass for answers).
 */
export function extractAnswer(text: string): string | undefined {
  const hashes = text.lastIndexOf("####");
  let found: string | undefined;
  if (hashes >= 0) found = text.slice(hashes + 4).split("\n")[0];
  found ??= lastBoxed(text);
  if (found === undefined) {
    const phrases = [...text.matchAll(/\b(?:final answer|answer)\s*(?:is|:|=)\s*([^\n]+)/gi)];
    found = phrases.at(-1)?.[1];
  }
  const cleaned = found?.trim().replace(/^\$+|\$+$/g, "").replace(/[.\s]+$/, "").trim();
  return cleaned ? cleaned : undefined;
}

/** A number written as "1,234", "$5.50", "-3", "3/4", "\frac{3}{4}", "50%" or "42 apples"; undefined if none. */
export function parseNumber(text: string): number | undefined {
  const t = text.replace(/\\[,!; ]/g, "").replace(/\\(?:text|mathrm)\{[^}]*\}/g, "").replace(/\\%/g, "%").trim();
  const frac = /^-?\\d?frac\{(-?[\d.]+)\}\{(-?[\d.]+)\}/.exec(t);
  if (frac) return (t.startsWith("-") ? -1 : 1) * (Number(frac[1]) / Number(frac[2]));
  const match = /^[^\d-]*?(-?\d[\d,]*(?:\.\d+)?|-?\.\d+)(?:\s*\/\s*(\d[\d,]*(?:\.\d+)?))?/.exec(t);
  if (!match) return undefined;
  const value = Number(match[1]!.replace(/,/g, ""));
  if (match[2] !== undefined) return value / Number(match[2].replace(/,/g, ""));
  return Number.isFinite(value) ? value : undefined;
}

/** Whether an extracted answer matches the reference: numerically within `tolerance`, else as normalised text. */
export function answersMatch(extracted: string, expected: string, tolerance = defaults.tolerance): boolean {
  const a = parseNumber(extracted);
  const b = parseNumber(expected);
  if (a !== undefined && b !== undefined) return Math.abs(a - b) <= tolerance * Math.max(1, Math.abs(b));
  const norm = (s: string) => s.toLowerCase().replace(/[^a-z0-9]/g, "");
  return norm(extracted) === norm(expected) && norm(expected).length > 0;
}

/** A step-by-step solution as text, from the structured multiple-choice answer. */
function choiceSolution(steps: readonly string[], choices: readonly string[], letter: string): string {
  const value = choices[LETTERS.indexOf(letter as (typeof LETTERS)[number])] ?? letter;
  return `${steps.map((step) => step.trim()).join("\n")}\n#### ${value}`;
}

const SYSTEM = "You are a careful math tutor. You reason step by step and double-check arithmetic before answering.";

function question(sample: Sample): string {
  return String(sample.data.question);
}

function choicesText(choices: readonly string[]): string {
  return choices.map((choice, i) => `(${LETTERS[i]}) ${choice}`).join("\n");
}

/** The verdict on one attempt's text, as data fields. */
function verify(solution: string, expected: string, tolerance: number): { extracted: string; correct: boolean } {
  const extracted = extractAnswer(solution) ?? "";
  return { extracted, correct: extracted !== "" && answersMatch(extracted, expected, tolerance) };
}

export default defineGraph({
  name: "math-verified",
  description: "Verified math (rejection sampling, STaR): sampled step-by-step solutions -> final answer extracted and checked -> verified solutions and corrections",
  defaults,
  async build(options, env) {
    if (options.mode !== "open" && options.mode !== "multiple_choice") {
      throw new ConfigError(`math-verified: mode is "open" or "multiple_choice", got "${options.mode}"`);
    }
    if (!Number.isInteger(options.samples) || options.samples < 1) throw new ConfigError(`math-verified: samples must be an integer >= 1, got ${options.samples}`);
    const source = firstRecords(await openSource(options.problemsPath, { name: "problems" }), options.count);
    const endpoint = await openEndpoint(env, { seed: options.seed, price: options.price });
    const { llm } = endpoint;
    const multipleChoice = options.mode === "multiple_choice";
    const tolerance = options.tolerance;

    const problem = (sample: Sample) => {
      const { question: q, answer, choices } = sample.data;
      if (typeof q !== "string" || (typeof answer !== "string" && typeof answer !== "number")) return undefined;
      return { question: q, answer: String(answer), choices: Array.isArray(choices) ? (choices as unknown[]).map(String) : [] };
    };

    const solve = multipleChoice
      ? generate({
          llm,
          name: "solve",
          n: options.samples,
          temperature: options.temperature,
          seed: options.seed,
          schemaName: "solution",
          parse: z.strictObject({ steps: z.array(z.string()).min(1), choice: z.enum(LETTERS) }),
          prompt: (sample) => [
            { role: "system", content: SYSTEM },
            {
              role: "user",
              content: `Solve the problem step by step, one step per entry of "steps", then pick the correct option.\n\nProblem: ${question(sample)}\n\nOptions:\n${choicesText(problem(sample)?.choices ?? [])}`,
            },
          ],
          write: (parsed, sample) => {
            const p = problem(sample)!;
            return { question: p.question, answer: p.answer, choices: p.choices, solution: choiceSolution(parsed.steps, p.choices, parsed.choice) };
          },
        })
      : generate({
          llm,
          name: "solve",
          n: options.samples,
          temperature: options.temperature,
          seed: options.seed,
          prompt: (sample) => [
            { role: "system", content: SYSTEM },
            {
              role: "user",
              content: `Solve the problem step by step. End with a last line of the form "#### <final answer>", the answer as a bare number.\n\nProblem: ${question(sample)}`,
            },
          ],
          write: (text, sample) => {
            const p = problem(sample)!;
            return { question: p.question, answer: p.answer, solution: String(text).trim() };
          },
        });

    const operators: Operator[] = [
      defineFilter({
        name: "problems",
        reads: ["question", "answer"],
        test: (sample) => (problem(sample) ? true : drop("no_reference_answer", { message: "a problem needs question and answer" })),
      }),
      solve,
      defineMap({
        name: "check",
        params: { tolerance },
        reads: ["solution", "answer"],
        writes: ["extracted", "correct", "kind"],
        map(sample) {
          const verdict = verify(String(sample.data.solution), String(sample.data.answer), tolerance);
          return { data: { ...sample.data, ...verdict, kind: "solution", wrong_solution: "", wrong_answer: "" }, step: { note: verdict.correct ? "correct" : `wrong: "${verdict.extracted}"` } };
        },
      }),
    ];

    if (options.keepCorrections) {
      const corrector = asker({ llm, temperature: options.temperature, seed: options.seed });
      operators.push(
        defineAsyncMap({
          name: "correct",
          params: { ...corrector.params, hint: options.hint, tolerance, prompt: "correction-v1" },
          reads: ["correct", "solution"],
          concurrency: llm.concurrency,
          async map(sample, _state, context, signal) {
            if (sample.data.correct === true) return {};
            const data = sample.data as SampleData & { solution: string; extracted: string; answer: string; choices?: string[] };
            const feedback = data.extracted
              ? `Your final answer, ${data.extracted}, is wrong.`
              : `Your solution does not end with a final answer line.`;
            const hint = options.hint ? ` The correct answer is ${data.answer}; explain how to reach it.` : "";
            const messages: ChatMessage[] = [
              { role: "system", content: SYSTEM },
              { role: "user", content: `Solve the problem step by step.\n\nProblem: ${data.question as string}${data.choices ? `\n\nOptions:\n${choicesText(data.choices)}` : ""}` },
              { role: "assistant", content: data.solution },
              {
                role: "user",
                content: `${feedback}${hint} Find the mistake, then solve the problem again step by step. End with a last line of the form "#### <final answer>".`,
              },
            ];
            const answer = await corrector.ask(messages, context, signal);
            if (!answer.ok) return { ...answer.verdict, message: `correction: ${answer.verdict.message ?? answer.verdict.reason}` };
            const corrected = answer.text.trim();
            const verdict = verify(corrected, data.answer, tolerance);
            return {
              data: { ...data, solution: corrected, ...verdict, kind: "correction", wrong_solution: data.solution, wrong_answer: data.extracted },
              step: { ...answer.step, note: verdict.correct ? `corrected "${data.extracted}" -> "${verdict.extracted}"` : `still wrong: "${verdict.extracted}"` },
            };
          },
        }),
      );
    }

    operators.push(
      defineFilter({
        name: "verified",
        reads: ["correct", "extracted"],
        test(sample) {
          const { correct, extracted, answer, kind } = sample.data as { correct: boolean; extracted: string; answer: string; kind: string };
          if (correct) return { keep: true, scores: { verified: 1 } };
          const after = kind === "correction" ? " (after a correction)" : "";
          if (!extracted) return drop("no_answer", { message: `no final answer line${after}` });
          const value = parseNumber(extracted);
          return drop("wrong_answer", { ...(value !== undefined ? { value } : {}), message: `extracted "${extracted}", expected "${answer}"${after}` });
        },
      }),
      // Sampling at temperature repeats itself on easy problems; the same text twice teaches nothing new.
      exactDedup({ name: "dedup", fields: ["question", "solution"], shared: env.shared }),
    );

    // Every problem is sampled and verified on its own; dedup is shared by the workers of a scaled-out run.
    return { sources: [source], operators, dispose: endpoint.dispose, chunkable: true };
  },
});
