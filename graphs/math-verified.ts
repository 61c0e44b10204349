// Verified math: problems with a checkable answer -> several step-by-step solutions per problem (rejection
// sampling) -> the final answer is extracted ("#### 42", "\boxed{42}", "Answer: 42") and compared with the
// reference programmatically (numbers within a tolerance, fractions and percentages read as numbers) ->
// every intermediate equation is checked -> one path per distinct equation sequence is kept. Model text is
// never given to eval/Function: equations go through a small arithmetic evaluator (graphs/lib/equations.ts).
//
// What it follows:
// - Rejection-sampling fine-tuning (RFT, Yuan et al. 2023, OFA-Sys/gsm8k-ScRel): of the sampled paths that
//   reach the right answer, keep one per distinct equation sequence. The equations of a path are its
//   GSM8K calculator annotations ("<<48/2=24>>") and its plain "a op b = c" equations, normalised
//   (whitespace, "1,200.00" -> "1200", "x"/"×"/"\times" -> "*", "÷" -> "/", "**" -> "^"), compared in
//   order; a path with no equation falls back to its exact text (whitespace collapsed). A path with a
//   wrong intermediate equation is rejected even when its final answer is right.
// - STaR (Zelikman et al. 2022), with keepCorrections + hint: a failed attempt's problem is asked again with
//   the reference answer as a hint (and without the attempt); the rationale is kept as question ->
//   rationale, as if produced without the hint, marked `rationalized: true` and `kind: "rationalization"`.
// - Outcome supervision as in "Let's Verify Step by Step" (Lightman et al. 2023), plus the arithmetic of
//   each step (not a learned process reward model).
//
// What differs, deliberately:
// - Equations RFT's regex would miss are read too (plain-text equations, LaTeX and Unicode operators), and
//   a left side outside the evaluator's grammar ("2x = 10", "Area = 40") is no equation, so word-only
//   reasoning is neither checked nor deduplicated by equations: such paths fall back to exact-text dedup.
// - A stated result may be rounded to the precision it is written in ("10/3 = 3.33" holds; "10/3 = 3"
//   does not): models round, and the final answer is checked against the reference anyway.
// - An equation the evaluator will not compute (over 400 characters, nested over 32 deep, a non-finite
//   result) is rejected as unchecked_equation rather than trusted.
// - STaR rationalizes per problem after a whole pass; a stream has no "after", so each wrong attempt is
//   rationalized on its own. The request is the same for every wrong attempt of a problem, and path dedup
//   keeps one rationale per equation sequence, also against the problem's kept solutions.
// - STaR trusts a rationale whose answer is right. Here a rationale is also rejected when it leans on the
//   hint (hint_leak: it says "hint", "correct/given/expected/provided/reference/known answer", "answer
//   is given", "told the answer", "we already know the answer": a list, so other paraphrases pass; a rationale
//   that merely says "the correct answer is 45" is dropped too)
//   or when no equation of it computes the answer (underived_rationale: it only restates the hint).
// - Multiple choice: a guessed letter with unrelated steps is right 1 time in 4 (4 options), and an
//   answer-only check would keep it. With deriveChoice (default) a kept path's equations must compute the
//   chosen option's value (underived_choice otherwise), so only paths that show their arithmetic pass;
//   with deriveChoice=false the 25 % guesses pass as before. Open mode does not ask for derivation (its
//   answer is written by the model, not picked), but its equations are still checked.
// - keepCorrections without hint is self-correction, not STaR: the wrong attempt and "your answer is
//   wrong" go to the model, and the row keeps the attempt in wrong_solution/wrong_answer (an
//   error-correction example; question -> solution is still the training pair).
//
// Input: data/math-verified.jsonl (builtin:math-verified.jsonl), 32 arithmetic and word problems written for this graph, each
// {id, question, answer, choices (4 options, one correct)}; or any JSONL with question and answer.
// Modes: "open" asks for free text ending in "#### <answer>"; "multiple_choice" lists the choices and asks
// for structured output {steps: string[], choice: "A".."D"} (the solution is the steps plus "#### <value of
// the chosen option>", then read by the same extractor) - handy with constrained decoding.
//
// Output columns (data): question, answer (reference), choices (multiple_choice only), solution (the kept
// step-by-step text or rationale), extracted (the final answer read from it), correct (true), equations
// (the path's equations, canonical, in order), kind ("solution" | "correction" | "rationalization"),
// rationalized (true for a STaR rationale: weigh these, the model saw the answer), wrong_solution and
// wrong_answer (the corrected attempt, kind "correction" only; "" otherwise).
// Scores: verified (1). Drop reasons (operator verified): no_answer (no final answer found), wrong_answer
// (value: the extracted number, message: extracted vs expected), wrong_intermediate_equation (value: what
// the left side really is, message: the equation), unchecked_equation, underived_choice, hint_leak,
// underived_rationale; (operator path_dedup) exact_duplicate (same question and equation sequence, or same
// text when there are no equations; duplicate_of: the kept path); and generate's refusal / truncated /
// empty / schema_mismatch / llm_error.
//
//   rxsynth run graphs/math-verified.ts --set samples=8 --out out/math
//   rxsynth run graphs/math-verified.ts --set keepCorrections=true --set hint=true --out out/math-star
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
  type Verdict,
} from "../src/index.ts";
import type { ChatMessage } from "../src/llm/index.ts";
import { exactDedup } from "../operators/dedup/exact-dedup.ts";
import { generate } from "../operators/generate/generate.ts";
import { asker } from "../operators/generate/llm-map.ts";
import { openEndpoint } from "./lib/endpoint.ts";
import { checkEquations, derives, equationKey, extractEquations, pathKey, type Equation } from "./lib/equations.ts";
import { firstRecords } from "./lib/llm-steps.ts";

export const defaults = {
  /** Problems to attempt (the first `count` of the file). */
  count: 32,
  problemsPath: "builtin:math-verified.jsonl",
  /** Solutions sampled per problem (rejection sampling keeps the verified ones). */
  samples: 4,
  /** "open" (free text ending in "#### answer") or "multiple_choice" (structured choice among `choices`). */
  mode: "open" as "open" | "multiple_choice",
  /** Relative tolerance for numeric answers (absolute below 1); intermediate equations are checked exactly, up to floating-point noise. */
  tolerance: 1e-6,
  /** Ask for one correction of each wrong attempt and keep verified corrections as error-correction examples. */
  keepCorrections: false,
  /**
   * STaR's rationalization instead of a correction: the model gets the question and the reference answer as
   * a hint (never its wrong attempt) and writes a rationale, kept as question -> rationale without the hint.
   */
  hint: false,
  /**
   * multiple_choice only: keep a path only when its equations compute the chosen option's value. Off, a
   * guessed letter with unrelated steps passes 1 time in 4.
   */
  deriveChoice: true,
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

/** A number written as "1,234", "$5.50", "-3", "1.5e3", "3/4", "\frac{3}{4}", "50%" or "42 apples"; undefined if none. */
export function parseNumber(text: string): number | undefined {
  const t = text.replace(/\\[,!; ]/g, "").replace(/\\(?:text|mathrm)\{[^}]*\}/g, "").replace(/\\%/g, "%").trim();
  const frac = /^-?\\d?frac\{(-?[\d.]+)\}\{(-?[\d.]+)\}/.exec(t);
  if (frac) return (t.startsWith("-") ? -1 : 1) * (Number(frac[1]) / Number(frac[2]));
  // The exponent is part of the number: dropping it would match "2.5e-3" to "2.5".
  const match = /^[^\d-]*?((?:-?\d[\d,]*(?:\.\d+)?|-?\.\d+)(?:[eE][+-]?\d+)?)(?:\s*\/\s*(\d[\d,]*(?:\.\d+)?))?/.exec(t);
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

/** The equations a path computes (canonical, in order) and the key path dedup compares. */
function pathColumns(solution: string): { equations: string[]; path: string } {
  const equations = extractEquations(solution);
  return { equations: equations.map(equationKey), path: pathKey(solution, equations) };
}

type Options = typeof defaults;
type Llm = Awaited<ReturnType<typeof openEndpoint>>["llm"];
type Attempt = SampleData & { question: string; solution: string; extracted: string; answer: string; choices?: string[] };

function problemText(data: Attempt): string {
  return `Problem: ${data.question}${data.choices ? `\n\nOptions:\n${choicesText(data.choices)}` : ""}`;
}

/** Self-correction: the wrong attempt and the feedback that it is wrong; the row keeps the attempt beside the fix. */
function correctStep(options: Options, llm: Llm): Operator {
  const corrector = asker({ llm, temperature: options.temperature, seed: options.seed });
  return defineAsyncMap({
    name: "correct",
    params: { ...corrector.params, tolerance: options.tolerance, prompt: "correction-v1" },
    reads: ["correct", "solution"],
    concurrency: llm.concurrency,
    async map(sample, _state, context, signal) {
      if (sample.data.correct === true) return {};
      const data = sample.data as Attempt;
      const feedback = data.extracted ? `Your final answer, ${data.extracted}, is wrong.` : `Your solution does not end with a final answer line.`;
      const messages: ChatMessage[] = [
        { role: "system", content: SYSTEM },
        { role: "user", content: `Solve the problem step by step.\n\n${problemText(data)}` },
        { role: "assistant", content: data.solution },
        { role: "user", content: `${feedback} Find the mistake, then solve the problem again step by step. End with a last line of the form "#### <final answer>".` },
      ];
      const answer = await corrector.ask(messages, context, signal);
      if (!answer.ok) return { ...answer.verdict, message: `correction: ${answer.verdict.message ?? answer.verdict.reason}` };
      const corrected = answer.text.trim();
      const verdict = verify(corrected, data.answer, options.tolerance);
      return {
        data: { ...data, solution: corrected, ...verdict, ...pathColumns(corrected), kind: "correction", wrong_solution: data.solution, wrong_answer: data.extracted },
        step: { ...answer.step, note: verdict.correct ? `corrected "${data.extracted}" -> "${verdict.extracted}"` : `still wrong: "${verdict.extracted}"` },
      };
    },
  });
}

/**
 * STaR's rationalization: a failed problem is asked again with the reference answer as a hint and without
 * the wrong attempt; the rationale replaces the attempt, so the row reads question -> rationale, as if the
 * model had reasoned without the hint (the hint lives only in the request, never in a column).
 */
function rationalizeStep(options: Options, llm: Llm): Operator {
  const rationalizer = asker({ llm, temperature: options.temperature, seed: options.seed });
  return defineAsyncMap({
    name: "rationalize",
    params: { ...rationalizer.params, tolerance: options.tolerance, prompt: "rationalization-v1" },
    reads: ["correct", "question", "answer"],
    concurrency: llm.concurrency,
    async map(sample, _state, context, signal) {
      if (sample.data.correct === true) return {};
      const data = sample.data as Attempt;
      const messages: ChatMessage[] = [
        { role: "system", content: SYSTEM },
        {
          role: "user",
          content: `Solve the problem step by step, showing each calculation. End with a last line of the form "#### <final answer>".\n\n${problemText(data)}\n\nHint: The correct answer is ${data.answer}. Work it out from the problem; do not mention this hint or the answer being given.`,
        },
      ];
      const answer = await rationalizer.ask(messages, context, signal);
      if (!answer.ok) return { ...answer.verdict, message: `rationalization: ${answer.verdict.message ?? answer.verdict.reason}` };
      const rationale = answer.text.trim();
      const verdict = verify(rationale, data.answer, options.tolerance);
      return {
        data: { ...data, solution: rationale, ...verdict, ...pathColumns(rationale), kind: "rationalization", rationalized: true, wrong_solution: "", wrong_answer: "" },
        step: { ...answer.step, note: verdict.correct ? `rationalized "${data.extracted}" -> "${verdict.extracted}"` : `still wrong: "${verdict.extracted}"` },
      };
    },
  });
}

// A rationale that leans on the hint ("the correct answer is given as 45") would teach the model to cite an
// answer it will not have at test time.
export const HINT_LEAK = new RegExp(
  [
    String.raw`\bhint\b`,
    String.raw`\b(?:correct|given|expected|provided|reference|known) answer\b`,
    String.raw`\banswer (?:is|was) (?:given|provided|stated|known)\b`,
    String.raw`\b(?:told|given) (?:that )?the answer\b`,
    // Paraphrases naming the answer: "we are told the answer is 45", "we already know the answer". Not
    // "we are told it is 3 miles" or "now we know the answer to the first part" (the problem's own data and
    // steps): a pattern list misses other paraphrases, and says so in the header.
    String.raw`\btold (?:that )?the (?:final |correct )?answer (?:is|was|equals)\b`,
    String.raw`\b(?:we|i) already know (?:that )?the (?:final )?answer\b`,
  ].join("|"),
  "i",
);

/** The first intermediate equation that does not hold; exact arithmetic, whatever the answers' `tolerance`. */
function equationVerdict(equations: readonly Equation[], after: string): Verdict | undefined {
  const check = checkEquations(equations);
  if (check.ok) return undefined;
  if (check.reason === "wrong" || check.reason === "division_by_zero") {
    const found = check.reason === "wrong" ? `the left side is ${check.value}` : "it divides by zero";
    return drop("wrong_intermediate_equation", { ...(check.value !== undefined ? { value: check.value } : {}), message: `"${check.equation}": ${found}${after}` });
  }
  return drop("unchecked_equation", { message: `"${check.equation}" cannot be checked (${check.reason})${after}` });
}

/** The final answer, then every intermediate equation, then (where asked) that the path computes what it states. */
function verifiedFilter(config: { tolerance: number; deriveChoice: boolean }): Operator {
  return defineFilter({
    name: "verified",
    params: config,
    reads: ["correct", "extracted", "solution"],
    test(sample) {
      const { correct, extracted, answer, kind, solution } = sample.data as { correct: boolean; extracted: string; answer: string; kind: string; solution: string };
      const after = kind === "correction" ? " (after a correction)" : kind === "rationalization" ? " (in a rationalization)" : "";
      if (!extracted) return drop("no_answer", { message: `no final answer line${after}` });
      const value = parseNumber(extracted);
      if (!correct) return drop("wrong_answer", { ...(value !== undefined ? { value } : {}), message: `extracted "${extracted}", expected "${answer}"${after}` });
      const equations = extractEquations(solution);
      const wrongStep = equationVerdict(equations, after);
      if (wrongStep) return wrongStep;
      if (kind === "rationalization") {
        const leak = HINT_LEAK.exec(solution);
        if (leak) return drop("hint_leak", { message: `the rationale says "${leak[0]}": it leans on the hint` });
        if (value !== undefined && !derives(equations, value, config.tolerance)) {
          return drop("underived_rationale", { message: `no equation of the rationale computes ${extracted}: it restates the hinted answer` });
        }
      } else if (config.deriveChoice && value !== undefined && !derives(equations, value, config.tolerance)) {
        return drop("underived_choice", { message: `no equation of the steps computes the chosen option ${extracted} (a guessed letter passes 1 time in 4)` });
      }
      return { keep: true, scores: { verified: 1 } };
    },
  });
}

export default defineGraph({
  name: "math-verified",
  description: "Verified math (RFT, STaR): sampled step-by-step solutions -> final answer and every equation checked -> one path per distinct equation sequence, corrections and hint-free rationalizations",
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
        writes: ["extracted", "correct", "kind", "rationalized", "equations", "path"],
        map(sample) {
          const solution = String(sample.data.solution);
          const verdict = verify(solution, String(sample.data.answer), tolerance);
          return {
            data: { ...sample.data, ...verdict, ...pathColumns(solution), kind: "solution", rationalized: false, wrong_solution: "", wrong_answer: "" },
            step: { note: verdict.correct ? "correct" : `wrong: "${verdict.extracted}"` },
          };
        },
      }),
    ];

    if (options.keepCorrections) operators.push(options.hint ? rationalizeStep(options, llm) : correctStep(options, llm));

    operators.push(
      verifiedFilter({ tolerance, deriveChoice: multipleChoice && options.deriveChoice }),
      // RFT keeps one path per distinct equation sequence: sampling repeats the same calculations in other
      // words, which teaches nothing new. A path without equations falls back to its exact text.
      exactDedup({ name: "path_dedup", fields: ["question", "path"], shared: env.shared }),
      defineMap({
        name: "finish",
        reads: ["path"],
        map: ({ data }) => {
          const { path: _path, ...rest } = data;
          return { data: rest };
        },
      }),
    );

    // Every problem is sampled and verified on its own; dedup is shared by the workers of a scaled-out run.
    return { sources: [source], operators, dispose: endpoint.dispose, chunkable: true };
  },
});
