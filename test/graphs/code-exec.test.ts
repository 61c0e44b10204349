import { beforeAll, describe, expect, it } from "vitest";
import definition, { assembleProgram, defaults, extractAsserts, extractCode, readProblems, type Problem } from "../../graphs/code-exec.ts";
import { useGraphRuns, useScriptedModel, type OutputRow } from "../support/graph-run.ts";
import { describeWithSandbox } from "../support/sandbox.ts";

const { runGraph } = useGraphRuns();

const dataOf = (row: OutputRow) => row.data;
const stepsOf = (row: OutputRow) => row.provenance.steps;
const historyOf = (row: OutputRow) => JSON.parse(dataOf(row).history as string) as { attempt: number; status: string; error: string }[];
const COLUMNS = ["task_id", "prompt", "entry_point", "test", "solution", "tests", "program", "status", "attempts", "history"];

let problems: Map<string, Problem>;
beforeAll(async () => {
  problems = new Map((await readProblems(defaults.problemsPath, 3)).map((p) => [p.task_id, p]));
});

describeWithSandbox("graphs/code-exec", () => {
  it("keeps reference solutions that pass their tests at the first attempt (seedSolutions: canonical)", async () => {
    const { rows, rejects } = await runGraph(definition, { count: 3, seedSolutions: "canonical" });
    expect(rejects).toEqual([]);
    expect(rows.map((row) => dataOf(row).task_id).sort()).toEqual(["HumanEval/0", "HumanEval/1", "HumanEval/2"]);
    for (const row of rows) {
      expect(Object.keys(dataOf(row)).filter((key) => key !== "_extra")).toEqual(COLUMNS);
      expect(dataOf(row)).toMatchObject({ status: "passed", attempts: 1, tests: "" });
      expect(historyOf(row)).toEqual([]);
      expect(row.scores).toMatchObject({ attempts: 1, exec_ms: expect.any(Number) });
      // A human-written reference: same generation, human origin, its parent the problem.
      expect(row.provenance).toMatchObject({ origin: "human", source: "problems", depth: 0 });
      expect((row.provenance as { parents: string[] }).parents).toEqual([`problems:${dataOf(row).task_id}`]);
      expect(stepsOf(row).map((step) => step.op)).toEqual(["solve", "attempt_1"]);
      expect(stepsOf(row)[1]!.note).toBe("attempt 1: passed");
    }
  });

  it("rejects placeholder answers after every repair round with the sandbox's reason and the attempt count", async () => {
    const { rows, rejects } = await runGraph(definition, { count: 2, maxRepairs: 1 });
    expect(rows).toEqual([]);
    expect(rejects).toHaveLength(2);
    for (const row of rejects) {
      expect(row.reject).toMatchObject({ operator: "verified", reason: "syntax_error", value: 2, message: expect.stringContaining("SyntaxError") });
      expect(historyOf(row).map((attempt) => [attempt.attempt, attempt.status])).toEqual([
        [1, "syntax_error"],
        [2, "syntax_error"],
      ]);
      expect(stepsOf(row).map((step) => step.op)).toEqual(["solve", "attempt_1", "repair_1"]);
      expect(stepsOf(row)[2]!.note).toMatch(/^attempt 2: syntax_error -> syntax_error/);
      expect(row.provenance).toMatchObject({ origin: "synthetic", depth: 1 });
    }
  });

  describe("with a model over HTTP", () => {
    // The first solution it writes is wrong, every repair returns HumanEval's reference solution, and
    // test-writing requests get `testAnswer`.
    const asked: string[] = [];
    let testAnswer = "";
    useScriptedModel((request) => {
      const all = request.messages.map((m) => m.content).join("\n");
      const entry = /def (\w+)\(/.exec(request.messages.find((m) => m.role === "user")!.content)![1]!;
      const problem = [...problems.values()].find((p) => p.entry_point === entry)!;
      if (all.includes("unit tests for the function")) {
        asked.push("tests");
        return testAnswer;
      }
      if (request.messages.some((m) => m.role === "assistant")) {
        asked.push("repair");
        return `The loop never ran.\n\`\`\`python\n${problem.prompt}${problem.canonical_solution}\`\`\``;
      }
      asked.push("solve");
      return `\`\`\`python\ndef ${entry}(*args):\n    return None\n\`\`\``;
    });

    it("feeds the test failure back, keeps the repaired solution and records attempt 2", async () => {
      asked.length = 0;
      const { rows, rejects } = await runGraph(definition, { count: 2, maxRepairs: 2 });
      expect(rejects).toEqual([]);
      expect(rows).toHaveLength(2);
      for (const row of rows) {
        expect(dataOf(row)).toMatchObject({ status: "passed", attempts: 2 });
        expect(row.scores).toMatchObject({ attempts: 2 });
        expect(historyOf(row)).toEqual([{ attempt: 1, status: "test_failed", error: expect.any(String) }]);
        // The second round saw a passing sample and left no step.
        expect(stepsOf(row).map((step) => step.op)).toEqual(["solve", "attempt_1", "repair_1"]);
        expect(stepsOf(row)[2]!.note).toBe("attempt 2: test_failed -> passed");
        expect(dataOf(row).program).not.toContain("return None");
      }
      expect(asked.sort()).toEqual(["repair", "repair", "solve", "solve"]);
    });

    it("runs the model's own asserts after the problem's tests when generateTests is on", async () => {
      testAnswer = "Here are tests:\n```python\nassert has_close_elements([1.0, 1.05], 0.1) == 42\nprint('done')\n```";
      const { rows, rejects } = await runGraph(definition, { count: 1, seedSolutions: "canonical", generateTests: true, maxRepairs: 1 });
      expect(rows).toEqual([]);
      expect(rejects).toHaveLength(1);
      expect(dataOf(rejects[0]!).tests).toBe("assert has_close_elements([1.0, 1.05], 0.1) == 42");
      expect(rejects[0]!.reject).toMatchObject({ reason: "test_failed", value: 2 });
      expect(stepsOf(rejects[0]!).map((step) => step.op)).toEqual(["solve", "write_tests", "attempt_1", "repair_1"]);
      expect(stepsOf(rejects[0]!)[1]!.note).toBe("1 assert statements");
    });
  });
});

describe("code-exec helpers", () => {
  it("reads the longest python block, or the whole answer when there is none", () => {
    expect(extractCode("Sure:\n```python\ndef f():\n    return 1\n```\nand\n```\nx = 1\n```")).toBe("def f():\n    return 1");
    expect(extractCode("  return 1  ")).toBe("return 1");
  });

  it("appends a full definition after the prompt, and a bare body inside it", () => {
    const prompt = 'def f(x):\n    """Double x."""\n';
    expect(assembleProgram(prompt, "f", "def f(x):\n    return 2 * x")).toBe(`${prompt}\n\ndef f(x):\n    return 2 * x\n`);
    expect(assembleProgram(prompt, "f", "    return 2 * x")).toBe(`${prompt}    return 2 * x\n`);
  });

  it("keeps only assert statements from generated tests", () => {
    expect(extractAsserts("```python\nimport os\nassert f(1) == 2\nos.remove('x')\nassert f(0) == 0\n```")).toBe("assert f(1) == 2\nassert f(0) == 0");
  });
});
