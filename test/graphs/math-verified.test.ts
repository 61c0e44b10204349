import { resolveDataPath } from "../../src/index.ts";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import definition, { HINT_LEAK, answersMatch, defaults, extractAnswer, parseNumber } from "../../graphs/math-verified.ts";
import { useGraphRuns, useRecordingSimulator, useScriptedModel, type OutputRow } from "../support/graph-run.ts";

const { runGraph } = useGraphRuns();

const dataOf = (row: OutputRow) => row.data;
const stepsOf = (row: OutputRow) => row.provenance.steps;
const reject = (row: OutputRow) => row.reject!;

const PROBLEMS = readFileSync(resolveDataPath(defaults.problemsPath), "utf8")
  .split("\n")
  .filter(Boolean)
  .map((line) => JSON.parse(line) as { question: string; answer: string; choices: string[] });

describe("answer extraction and checking", () => {
  it("reads the final answer after ####, in \\boxed{} or after 'answer is'", () => {
    expect(extractAnswer("3 + 4 = 7\n#### 7")).toBe("7");
    expect(extractAnswer("so the total is $\\boxed{\\frac{3}{4}}$.")).toBe("\\frac{3}{4}");
    expect(extractAnswer("We get 12, then 14.\nThe final answer is 14.")).toBe("14");
    expect(extractAnswer("Answer: $1,234.50")).toBe("1,234.50");
    expect(extractAnswer("12 apples and 3 pears make 15 fruits.")).toBeUndefined();
  });

  it("reads numbers with separators, currency, fractions, percentages and units", () => {
    expect(parseNumber("1,234.50")).toBe(1234.5);
    expect(parseNumber("$30")).toBe(30);
    expect(parseNumber("3/4")).toBe(0.75);
    expect(parseNumber("\\frac{7}{8}")).toBe(0.875);
    expect(parseNumber("-2.5")).toBe(-2.5);
    expect(parseNumber("36%")).toBe(36);
    expect(parseNumber("84 loaves")).toBe(84);
    expect(parseNumber("1.5e3")).toBe(1500);
    expect(parseNumber("3 eggs")).toBe(3);
    expect(parseNumber("no number")).toBeUndefined();
  });

  it("reads a rationale as leaning on the hint in the paraphrases models use, not in the problem's own words", () => {
    for (const text of ["We are told the answer is 45, so 40 + 5 = 45.", "I'm told the answer is 45.", "We already know the answer: 45.", "Using the hint, 40 + 5 = 45.", "The correct answer is 45."]) {
      expect(HINT_LEAK.test(text), text).toBe(true);
    }
    const ordinary = [
      "We are told that Tom has 40 apples and buys 5 more: 40 + 5 = 45.",
      "We are told it is 3 miles to the store, so 3 * 2 = 6.",
      "The teacher told the result was posted.",
      "Now we know the answer to the first part, 5 + 5 = 10.",
      "So the answer must be 45.",
    ];
    for (const text of ordinary) {
      expect(HINT_LEAK.test(text), text).toBe(false);
    }
  });

  it("matches numerically within the tolerance, else as normalised text", () => {
    expect(answersMatch("0.875", "7/8")).toBe(true);
    expect(answersMatch("4.20", "4.2")).toBe(true);
    expect(answersMatch("150.0000001", "150")).toBe(true);
    expect(answersMatch("151", "150")).toBe(false);
    expect(answersMatch("2.5e-3", "2.5")).toBe(false);
    expect(answersMatch("1e6", "1")).toBe(false);
    expect(answersMatch("1e6", "1,000,000")).toBe(true);
    expect(answersMatch("2.5E-3", "0.0025")).toBe(true);
    expect(answersMatch("Ottawa.", "ottawa")).toBe(true);
    expect(answersMatch("", "")).toBe(false);
  });
});

const listOf = (value: unknown) => (typeof value === "string" ? (JSON.parse(value) as string[]) : (value as string[]));
const pathOf = (row: OutputRow) => `${String(dataOf(row).question)}\u0000${listOf(dataOf(row).equations).join(";")}`;
const COLUMNS = ["question", "answer", "solution", "extracted", "correct", "equations", "kind", "rationalized", "wrong_solution", "wrong_answer"];

describe("graphs/math-verified", () => {
  const sim = useRecordingSimulator();

  describe("open mode, against the simulator's worked solutions", () => {
    it("keeps one path per distinct equation sequence: reworded paths with the same equations collapse, other equation paths survive", async () => {
      const { rows, rejects } = await runGraph(definition, { count: 5, samples: 6 });
      expect(rows.length + rejects.length).toBe(30);
      const kept = rows.map(pathOf);
      expect(new Set(kept).size).toBe(kept.length);
      for (const row of rows) expect(Object.keys(dataOf(row)).filter((key) => key !== "_extra")).toEqual(COLUMNS);
      const collapsed = rejects.filter((row) => reject(row).operator === "path_dedup");
      expect(collapsed.length).toBeGreaterThan(0);
      for (const row of collapsed) {
        expect(reject(row).reason).toBe("exact_duplicate");
        expect(kept).toContain(pathOf(row));
        expect(listOf(dataOf(row).equations).length).toBeGreaterThan(0);
      }
      // Near-identical, not identical: a collapsed path whose text differs from the kept one (annotated or reworded).
      const textOf = new Map(rows.map((row) => [pathOf(row), dataOf(row).solution]));
      expect(collapsed.some((row) => textOf.get(pathOf(row)) !== dataOf(row).solution)).toBe(true);
      // 17 + 28 kept twice: directly and as 17 + 27 = 44, 44 + 1 = 45.
      const additions = rows.filter((row) => dataOf(row).question === "What is 17 + 28?").map((row) => listOf(dataOf(row).equations));
      expect(additions).toEqual(expect.arrayContaining([["17+28=45"], ["17+27=44", "44+1=45"]]));
    });

    it("rejects a path with a wrong intermediate equation even when its final answer is right", async () => {
      const { rows, rejects } = await runGraph(definition, { count: 5, samples: 6 });
      const wrongStep = rejects.filter((row) => reject(row).reason === "wrong_intermediate_equation");
      expect(wrongStep.length).toBeGreaterThan(0);
      for (const row of wrongStep) {
        const data = dataOf(row);
        expect(data).toMatchObject({ correct: true, extracted: data.answer });
        expect(reject(row)).toMatchObject({ operator: "verified", value: Number(data.answer) });
        expect(reject(row).message).toMatch(/^"[^"]+=[\d.]+": the left side is [\d.]+$/);
      }
      expect(rejects.filter((row) => reject(row).reason === "wrong_answer").length).toBeGreaterThan(0);
      for (const row of rows) expect(stepsOf(row).map((step) => step.op)).toEqual(["solve", "check", "finish"]);
    });

    it("rejects placeholder answers that state no final answer (word problems the simulator does not solve)", async () => {
      const { rejects } = await runGraph(definition, { count: 12, samples: 2 });
      const unsolved = rejects.filter((row) => !/^What is \d+%? ?(?:\+|minus|multiplied by|divided by|of) \d+\?$/.test(String(dataOf(row).question)));
      expect(unsolved).toHaveLength(14);
      for (const row of unsolved) expect(reject(row)).toMatchObject({ operator: "verified", reason: "no_answer" });
    });
  });

  describe("STaR rationalization (keepCorrections with hint)", () => {
    it("trains on question -> rationale: no hint and no wrong attempt in the request's rows, the prompt or the output", async () => {
      const runs = [await runGraph(definition, { count: 5, samples: 2, keepCorrections: true, hint: true, seed: 3 })];
      const requests3 = [...sim.requests];
      runs.push(await runGraph(definition, { count: 5, samples: 2, keepCorrections: true, hint: true, seed: 18 }));
      const rationalized = runs.flatMap((r) => r.rows).filter((row) => dataOf(row).kind === "rationalization");
      expect(rationalized.length).toBe(2);
      for (const row of rationalized) {
        const data = dataOf(row);
        const original = PROBLEMS.find((p) => p.question === data.question)!;
        expect(data).toMatchObject({ rationalized: true, correct: true, extracted: original.answer, wrong_solution: "", wrong_answer: "" });
        expect(JSON.stringify(data)).not.toMatch(/hint|correct answer/i);
        expect(stepsOf(row).map((step) => step.op)).toEqual(["solve", "check", "rationalize", "finish"]);
      }
      for (const row of runs.flatMap((r) => r.rows).filter((r) => dataOf(r).kind === "solution")) expect(dataOf(row).rationalized).toBe(false);
      // The request: the question and the hint, never the wrong attempt.
      const asked = requests3.filter((request) => request.text.includes("Hint: The correct answer is"));
      expect(asked.length).toBeGreaterThan(0);
      for (const request of asked) {
        const messages = request.body.messages as Array<{ role: string; content: string }>;
        expect(messages.map((m) => m.role)).toEqual(["system", "user"]);
        const problem = PROBLEMS.find((p) => messages[1]!.content.includes(`Problem: ${p.question}\n`))!;
        expect(messages[1]!.content).toBe(
          `Solve the problem step by step, showing each calculation. End with a last line of the form "#### <final answer>".\n\nProblem: ${problem.question}\n\nHint: The correct answer is ${problem.answer}. Work it out from the problem; do not mention this hint or the answer being given.`,
        );
      }
      const reasons = runs.flatMap((r) => r.rejects).filter((row) => dataOf(row).kind === "rationalization").map((row) => reject(row));
      const leak = reasons.find((r) => r.reason === "hint_leak")!;
      expect(leak.message).toBe('the rationale says "correct answer": it leans on the hint');
      const restated = reasons.find((r) => r.reason === "underived_rationale")!;
      expect(restated.message).toMatch(/^no equation of the rationale computes \d+: it restates the hinted answer$/);
    });
  });

  describe("multiple-choice mode", () => {
    it("rejects a right option whose steps compute nothing as underived_choice (a guessed letter is right 1 time in 4)", async () => {
      const { rows, rejects } = await runGraph(definition, { count: 12, samples: 3, mode: "multiple_choice" });
      expect(rows).toEqual([]);
      const underived = rejects.filter((row) => reject(row).reason === "underived_choice");
      expect(underived.length).toBeGreaterThan(0);
      for (const row of underived) {
        expect(dataOf(row)).toMatchObject({ correct: true, extracted: dataOf(row).answer });
        expect(reject(row).message).toBe(`no equation of the steps computes the chosen option ${String(dataOf(row).answer)} (a guessed letter passes 1 time in 4)`);
      }
    });

    it("with deriveChoice off keeps solutions whose chosen value is the reference answer and rejects the rest as wrong_answer", async () => {
      const { rows, rejects } = await runGraph(definition, { count: 12, samples: 3, mode: "multiple_choice", deriveChoice: false });
      expect(rows.length + rejects.length).toBe(36);
      expect(rows.length).toBeGreaterThan(0);
      for (const row of rows) {
        const data = dataOf(row);
        expect(Object.keys(data).filter((key) => key !== "_extra")).toEqual(["question", "answer", "choices", ...COLUMNS.slice(2)]);
        expect(data).toMatchObject({ correct: true, kind: "solution", rationalized: false, wrong_solution: "", extracted: data.answer });
        expect(data.solution).toMatch(new RegExp(`\\n#### ${String(data.answer).replace(".", "\\.")}$`));
        expect(row.scores).toMatchObject({ verified: 1 });
        expect(row.provenance).toMatchObject({ origin: "synthetic", source: "problems", depth: 1 });
        expect(stepsOf(row)[1]!.note).toBe("correct");
      }
      const wrong = rejects.filter((row) => reject(row).reason === "wrong_answer");
      expect(wrong.length).toBeGreaterThan(0);
      for (const row of wrong) {
        const data = dataOf(row);
        expect(reject(row).value).toBe(Number(data.extracted));
        expect(reject(row).message).toBe(`extracted "${String(data.extracted)}", expected "${String(data.answer)}"`);
        expect(JSON.parse(data.choices as string)).toContain(data.extracted);
      }
    });
  });
});

describe("graphs/math-verified self-correction (keepCorrections without hint), with a scripted model over HTTP", () => {
  // Of each request's n solutions, the even ones are right and the odd ones say 7; a correction is always right.
  const model = useScriptedModel((request) => {
    const text = request.messages.map((m) => m.content).join("\n");
    const problem = PROBLEMS.find((p) => text.includes(`Problem: ${p.question}`))!;
    const correcting = request.messages.some((m) => m.role === "assistant");
    return Array.from({ length: request.n ?? 1 }, (_, index) =>
      correcting
        ? `The guess skipped the arithmetic. Redoing it.\n#### ${problem.answer}`
        : index % 2 === 0
          ? `Working it out carefully.\n#### ${problem.answer}`
          : `A quick guess.\n#### 7`,
    );
  });

  it("keeps verified solutions and wrong attempts followed by their verified correction, the attempt beside it", async () => {
    const { rows, rejects } = await runGraph(definition, { count: 3, samples: 2, keepCorrections: true });
    expect(rejects).toEqual([]);
    const kinds = rows.map((row) => dataOf(row).kind).sort();
    expect(kinds).toEqual(["correction", "correction", "correction", "solution", "solution", "solution"]);
    for (const row of rows.filter((r) => dataOf(r).kind === "correction")) {
      const data = dataOf(row);
      expect(data).toMatchObject({ correct: true, rationalized: false, wrong_answer: "7", wrong_solution: "A quick guess.\n#### 7", extracted: data.answer });
      expect(stepsOf(row).map((step) => step.op)).toEqual(["solve", "check", "correct", "finish"]);
      expect(stepsOf(row)[2]!.note).toBe(`corrected "7" -> "${String(data.answer)}"`);
    }
    const correction = model.requests.find((request) => request.messages.some((m) => m.role === "assistant"))!.messages;
    expect(correction.at(-1)!.content).toMatch(/^Your final answer, 7, is wrong\. Find the mistake/);
  });
});
