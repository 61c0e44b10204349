import { beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import definition, {
  HUMANEVAL_WARNING,
  assembleProgram,
  defaults,
  extractAsserts,
  extractCode,
  heldOutCount,
  heldOutIndices,
  readProblems,
  testsFromCheck,
  type Problem,
} from "../../graphs/code-exec.ts";
import { useGraphRuns, useRecordingSimulator, useScriptedModel, type OutputRow } from "../support/graph-run.ts";
import { describeWithSandbox } from "../support/sandbox.ts";

const { runGraph } = useGraphRuns();

const dataOf = (row: OutputRow) => row.data;
const stepsOf = (row: OutputRow) => row.provenance.steps;
/** A list column as read back: JSON text or an array, whichever the reader gives. */
const listOf = <T>(value: unknown): T[] => (typeof value === "string" ? (JSON.parse(value) as T[]) : (value as T[]));
const historyOf = (row: OutputRow) => listOf<{ attempt: number; status: string; error: string }>(dataOf(row).history);
const COLUMNS = ["task_id", "prompt", "entry_point", "setup", "tests", "held_out", "solution", "generated_tests", "program", "status", "attempts", "history"];

let problems: Problem[];
const byEntry = (entry: string) => problems.find((p) => p.entry_point === entry)!;
const heldOutOf = (p: Problem) => heldOutIndices(p.task_id, p.tests.length, defaults.heldOutShare, defaults.seed).map((i) => p.tests[i]!);
const shownOf = (p: Problem) => {
  const held = new Set(heldOutIndices(p.task_id, p.tests.length, defaults.heldOutShare, defaults.seed));
  return p.tests.filter((_, i) => !held.has(i));
};
beforeAll(async () => {
  problems = await readProblems(defaults.problemsPath, 100);
});

describe("code-exec settings", () => {
  it("pins the graph's settings: practice problems, not HumanEval; 2 of 5 tests held out; 2 repair rounds", () => {
    expect(defaults).toEqual({
      count: 20,
      problemsPath: "builtin:code-exec-problems.jsonl",
      heldOutShare: 0.4,
      maxRepairs: 2,
      generateTests: false,
      seedSolutions: "none",
      temperature: 0.2,
      timeoutMs: 10_000,
      sandboxConcurrency: 2,
      price: "",
      seed: 42,
    });
    expect(defaults.problemsPath).not.toMatch(/humaneval/i);
    expect(problems).toHaveLength(24);
    for (const problem of problems) {
      expect(problem.task_id).toMatch(/^rxsynth-code\/\d+$/);
      expect(problem.tests).toHaveLength(5);
      expect(heldOutOf(problem)).toHaveLength(2);
    }
  });
});

describeWithSandbox("graphs/code-exec", () => {
  it("by default runs the problems written for rxsynth, keeps reference solutions that pass shown and held-out tests, and records the split", async () => {
    const { rows, rejects, logs } = await runGraph(definition, { count: 24, seedSolutions: "canonical" });
    expect(rejects).toEqual([]);
    expect(rows.map((row) => dataOf(row).task_id).sort()).toEqual(problems.map((p) => p.task_id).sort());
    expect(logs.filter((line) => /humaneval/i.test(line))).toEqual([]);
    for (const row of rows) {
      const problem = problems.find((p) => p.task_id === dataOf(row).task_id)!;
      expect(Object.keys(dataOf(row)).filter((key) => key !== "_extra")).toEqual(COLUMNS);
      expect(dataOf(row)).toMatchObject({ status: "passed", attempts: 1, generated_tests: "", setup: "" });
      expect(listOf(dataOf(row).tests)).toEqual(problem.tests);
      expect(listOf<number>(dataOf(row).held_out).map(Number)).toEqual(heldOutIndices(problem.task_id, 5, defaults.heldOutShare, defaults.seed));
      expect(historyOf(row)).toEqual([]);
      expect(row.scores).toMatchObject({ attempts: 1, exec_ms: expect.any(Number), held_out_tests: 2 });
      // A human-written reference: same generation, human origin, its parent the problem.
      expect(row.provenance).toMatchObject({ origin: "human", source: "problems", depth: 0 });
      expect(row.provenance.parents).toEqual([`problems:${dataOf(row).task_id}`]);
      expect(stepsOf(row).map((step) => [step.op, step.note])).toEqual([
        ["solve", "canonical solution (seedSolutions)"],
        ["attempt_1", "attempt 1: passed"],
        ["held_out", "2 held-out tests: passed"],
      ]);
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

  it("says once, when HumanEval is chosen explicitly, that the output must not train a model evaluated on it", async () => {
    const { rows, rejects, logs } = await runGraph(definition, { count: 2, seedSolutions: "canonical", problemsPath: "builtin:HumanEval.jsonl.gz" });
    expect(logs.filter((line) => line === HUMANEVAL_WARNING)).toHaveLength(1);
    expect(HUMANEVAL_WARNING).toMatch(/must not be used to train a model that will be evaluated on HumanEval/);
    expect(rejects).toEqual([]);
    expect(rows.map((row) => dataOf(row).task_id).sort()).toEqual(["HumanEval/0", "HumanEval/1"]);
    // HumanEval/0's check() has 7 asserts: 3 held out, 4 shown.
    const first = rows.find((row) => dataOf(row).task_id === "HumanEval/0")!;
    expect(listOf(dataOf(first).tests)).toHaveLength(7);
    expect(listOf(dataOf(first).held_out)).toHaveLength(3);
    expect(dataOf(first).setup).toContain("METADATA");
  });

  describe("over HTTP with the simulator, which sees every request", () => {
    const { requests } = useRecordingSimulator({ seed: defaults.seed });
    beforeEach(() => {
      vi.stubEnv("RXSYNTH_CACHE_DIR", "off");
    });

    it("quotes the shown tests in the solve and repair prompts and never a held-out one, at the graph's temperature and seed", async () => {
      const count = 6;
      const { rows, rejects } = await runGraph(definition, { count, maxRepairs: 1 });
      expect(rows).toEqual([]);
      expect(rejects).toHaveLength(count);
      // One solve and one repair request per problem (the simulator's prose never passes).
      const bodies = requests.map((request) => request.body);
      expect(bodies).toHaveLength(2 * count);
      const texts = requests.map((request) => request.text);
      expect(texts.filter((text) => text.includes("Running the unit tests on this code failed"))).toHaveLength(count);
      for (const problem of problems.slice(0, count)) {
        const asked = texts.filter((text) => text.includes(`def ${problem.entry_point}(`));
        expect(asked).toHaveLength(2);
        for (const text of asked) for (const test of shownOf(problem)) expect(text).toContain(test);
        for (const test of heldOutOf(problem)) for (const text of texts) expect(text).not.toContain(test);
      }
      for (const body of bodies) expect(body).toMatchObject({ temperature: defaults.temperature, seed: defaults.seed });
    });
  });

  describe("with a model over HTTP", () => {
    // "special-case": answers with a function that returns the expected value of each shown test and
    // nothing else; "repair": the first solution is wrong, every repair returns the reference solution.
    let mode: "special-case" | "repair" = "repair";
    let testAnswer = "";
    const asked: string[] = [];
    useScriptedModel((request) => {
      const all = request.messages.map((m) => m.content).join("\n");
      const user = request.messages.find((m) => m.role === "user")!.content;
      const entry = /def (\w+)\(/.exec(user)![1]!;
      const problem = byEntry(entry);
      if (all.includes("unit tests for the function")) {
        asked.push("tests");
        return testAnswer;
      }
      if (mode === "special-case") {
        asked.push("solve");
        const shown = /Your code should pass these tests:\n```python\n([\s\S]*?)```/.exec(user)![1]!.trim().split("\n");
        const cases = shown.map((line) => {
          const [, args, expected] = new RegExp(`^assert ${entry}\\((.*)\\) (?:==|is) (.*)$`).exec(line)!;
          return `    if args == (${args},):\n        return ${expected}\n`;
        });
        return `\`\`\`python\ndef ${entry}(*args):\n${cases.join("")}    return None\n\`\`\``;
      }
      if (request.messages.some((m) => m.role === "assistant")) {
        asked.push("repair");
        return `The loop never ran.\n\`\`\`python\n${problem.prompt}${problem.canonical_solution}\`\`\``;
      }
      asked.push("solve");
      return `\`\`\`python\ndef ${entry}(*args):\n    return None\n\`\`\``;
    });

    it("rejects a solution that passes every shown test but fails a held-out one: the held-out tests decide", async () => {
      mode = "special-case";
      asked.length = 0;
      const { rows, rejects } = await runGraph(definition, { count: 2, maxRepairs: 1 });
      expect(rows).toEqual([]);
      expect(rejects).toHaveLength(2);
      for (const row of rejects) {
        // Passed the shown tests at the first attempt, so no repair round ran.
        expect(dataOf(row)).toMatchObject({ status: "passed", attempts: 1 });
        expect(historyOf(row)).toEqual([]);
        expect(row.reject).toMatchObject({ operator: "held_out", reason: "test_failed", value: 2, message: expect.stringContaining("AssertionError") });
        expect(stepsOf(row).map((step) => [step.op, step.note])).toEqual([
          ["solve", null],
          ["attempt_1", "attempt 1: passed"],
        ]);
      }
      expect(asked).toEqual(["solve", "solve"]);
    });

    it("feeds the test failure back, keeps the repaired solution and records attempt 2", async () => {
      mode = "repair";
      asked.length = 0;
      const { rows, rejects } = await runGraph(definition, { count: 2, maxRepairs: 2 });
      expect(rejects).toEqual([]);
      expect(rows).toHaveLength(2);
      for (const row of rows) {
        expect(dataOf(row)).toMatchObject({ status: "passed", attempts: 2 });
        expect(row.scores).toMatchObject({ attempts: 2, held_out_tests: 2 });
        expect(historyOf(row)).toEqual([{ attempt: 1, status: "test_failed", error: expect.any(String) }]);
        // The second round saw a passing sample and left no step.
        expect(stepsOf(row).map((step) => step.op)).toEqual(["solve", "attempt_1", "repair_1", "held_out"]);
        expect(stepsOf(row)[2]!.note).toBe("attempt 2: test_failed -> passed");
        expect(dataOf(row).program).not.toContain("return None");
      }
      expect(asked.sort()).toEqual(["repair", "repair", "solve", "solve"]);
    });

    it("runs the model's own asserts with the shown tests when generateTests is on", async () => {
      testAnswer = 'Here are tests:\n```python\nassert run_length_encode("ab") == "wrong"\nprint(\'done\')\n```';
      const { rows, rejects } = await runGraph(definition, { count: 1, seedSolutions: "canonical", generateTests: true, maxRepairs: 1 });
      expect(rows).toEqual([]);
      expect(rejects).toHaveLength(1);
      expect(dataOf(rejects[0]!).generated_tests).toBe('assert run_length_encode("ab") == "wrong"');
      expect(rejects[0]!.reject).toMatchObject({ operator: "verified", reason: "test_failed", value: 2 });
      expect(stepsOf(rejects[0]!).map((step) => step.op)).toEqual(["solve", "write_tests", "attempt_1", "repair_1"]);
      expect(stepsOf(rejects[0]!)[1]!.note).toBe("1 assert statements");
    });
  });
});

describe("code-exec test split", () => {
  it("holds out the share of tests, at least one, and shows at least one when there are two or more", () => {
    expect([1, 2, 3, 4, 5, 7, 10].map((n) => heldOutCount(n, 0.4))).toEqual([1, 1, 1, 2, 2, 3, 4]);
    expect(heldOutCount(5, 0.01)).toBe(1);
    expect(heldOutCount(5, 0.99)).toBe(4);
  });

  it("draws the same held-out tests for the same seed and task, and others for another seed", () => {
    const draw = (seed: number, task = "t/1") => heldOutIndices(task, 10, 0.4, seed);
    expect(draw(42)).toEqual(draw(42));
    expect(draw(42)).toHaveLength(4);
    expect(new Set(draw(42)).size).toBe(4);
    expect([1, 2, 3, 4, 5].map((seed) => draw(seed).join(",")).some((split) => split !== draw(42).join(","))).toBe(true);
    expect(heldOutIndices("single", 1, 0.4, 42)).toEqual([0]);
    // Pinned: a change to the hashing would move tests between shown and held out in every rerun.
    expect([0, 1, 2, 3].map((i) => heldOutIndices(`rxsynth-code/${i}`, 5, defaults.heldOutShare, defaults.seed))).toEqual([[1, 3], [1, 3], [1, 2], [0, 1]]);
  });

  it("splits HumanEval's check() into one test per assert, and keeps a check with loops whole", () => {
    const check = "\n\nMETADATA = {}\n\n\ndef check(candidate):\n    assert candidate([1, 2]) == 3\n    assert candidate(\n        [4]) == 4, 'multi-line'\n\n";
    expect(testsFromCheck(check, "total")).toEqual({ setup: "METADATA = {}", tests: ["assert total([1, 2]) == 3", "assert total(\n    [4]) == 4, 'multi-line'"] });
    const loop = "def check(candidate):\n    for x in range(3):\n        assert candidate(x) == x\n";
    expect(testsFromCheck(loop, "same")).toEqual({ setup: "", tests: [`${loop}\n\ncheck(same)\n`] });
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
