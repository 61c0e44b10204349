import { resolveDataPath } from "../../src/index.ts";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import definition, { answersMatch, defaults, extractAnswer, parseNumber } from "../../graphs/math-verified.ts";
import { useGraphRuns, useScriptedModel, type OutputRow } from "../support/graph-run.ts";

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
    expect(parseNumber("no number")).toBeUndefined();
  });

  it("matches numerically within the tolerance, else as normalised text", () => {
    expect(answersMatch("0.875", "7/8")).toBe(true);
    expect(answersMatch("4.20", "4.2")).toBe(true);
    expect(answersMatch("150.0000001", "150")).toBe(true);
    expect(answersMatch("151", "150")).toBe(false);
    expect(answersMatch("Ottawa.", "ottawa")).toBe(true);
    expect(answersMatch("", "")).toBe(false);
  });
});

describe("graphs/math-verified", () => {
  it("rejects free-text placeholder answers that state no final answer", async () => {
    const { rows, rejects } = await runGraph(definition, { count: 3, samples: 2 });
    expect(rows).toEqual([]);
    expect(rejects).toHaveLength(6);
    for (const row of rejects) {
      expect(reject(row)).toMatchObject({ operator: "verified", reason: "no_answer" });
      expect(stepsOf(row).map((step) => step.op)).toEqual(["solve", "check"]);
    }
  });

  it("keeps multiple-choice solutions whose chosen value is the reference answer and rejects the rest as wrong_answer", async () => {
    const { rows, rejects } = await runGraph(definition, { count: 12, samples: 3, mode: "multiple_choice" });
    expect(rows.length + rejects.length).toBe(36);
    expect(rows.length).toBeGreaterThan(0);
    for (const row of rows) {
      const data = dataOf(row);
      expect(Object.keys(data).filter((key) => key !== "_extra")).toEqual(["question", "answer", "choices", "solution", "extracted", "correct", "kind", "wrong_solution", "wrong_answer"]);
      expect(data).toMatchObject({ correct: true, kind: "solution", wrong_solution: "", extracted: data.answer });
      expect(data.solution).toMatch(new RegExp(`\\n#### ${String(data.answer).replace(".", "\\.")}$`));
      expect(row.scores).toMatchObject({ verified: 1 });
      expect(row.provenance).toMatchObject({ origin: "synthetic", source: "problems", depth: 1 });
      expect(stepsOf(row).map((step) => step.op)).toEqual(["solve", "check"]);
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

  describe("with a model over HTTP", () => {
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

    it("keeps verified solutions and, with keepCorrections, wrong attempts followed by their verified correction", async () => {
      const { rows, rejects } = await runGraph(definition, { count: 3, samples: 2, keepCorrections: true, hint: true });
      expect(rejects).toEqual([]);
      const kinds = rows.map((row) => dataOf(row).kind).sort();
      expect(kinds).toEqual(["correction", "correction", "correction", "solution", "solution", "solution"]);
      for (const row of rows.filter((r) => dataOf(r).kind === "correction")) {
        const data = dataOf(row);
        expect(data).toMatchObject({ correct: true, wrong_answer: "7", wrong_solution: "A quick guess.\n#### 7", extracted: data.answer });
        expect(stepsOf(row).map((step) => step.op)).toEqual(["solve", "check", "correct"]);
        expect(stepsOf(row)[2]!.note).toBe(`corrected "7" -> "${String(data.answer)}"`);
      }
      // The correction request said the answer was wrong and, with hint, gave the reference.
      const correction = model.requests.find((request) => request.messages.some((m) => m.role === "assistant"))!.messages;
      expect(correction.at(-1)!.content).toMatch(/^Your final answer, 7, is wrong\. The correct answer is \d+/);
    });
  });
});
