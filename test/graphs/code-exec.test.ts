import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { buildGraph, listShardFiles, run, type GraphDefinition } from "../../src/index.ts";
import definition, { assembleProgram, defaults, extractAsserts, extractCode, readProblems, type Problem } from "../../graphs/code-exec.ts";
import { readParquetRows } from "../support/parquet.ts";

const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

/** Runs a graph into a temp folder and reads its shards back with hyparquet. */
async function runGraph(graph: GraphDefinition<typeof defaults>, overrides: Partial<typeof defaults>) {
  const out = await mkdtemp(join(tmpdir(), "rxsynth-code-exec-"));
  dirs.push(out);
  const built = await buildGraph(graph, overrides, { log: () => {}, out });
  const summary = await run(built, { out });
  const read = async (prefix: string) => (await Promise.all((await listShardFiles(out, { prefix })).map(readParquetRows))).flat();
  return { summary, rows: await read("part"), rejects: await read("rejects") };
}

type Row = Record<string, unknown>;
const dataOf = (row: Row) => row.data as Record<string, unknown>;
const stepsOf = (row: Row) => (row.provenance as { steps: { op: string; note: string | null }[] }).steps;
const historyOf = (row: Row) => JSON.parse(dataOf(row).history as string) as { attempt: number; status: string; error: string }[];
const COLUMNS = ["task_id", "prompt", "entry_point", "test", "solution", "tests", "program", "status", "attempts", "history"];

/**
 * A scripted OpenAI-compatible endpoint over real HTTP: the first solution it writes is wrong, every
 * repair returns HumanEval's reference solution, and test-writing requests get `testAnswer`.
 */
class ScriptedModel {
  server: Server | undefined;
  requests: string[] = [];
  testAnswer = "";
  constructor(private readonly problems: Map<string, Problem>) {}

  async start(): Promise<string> {
    this.server = createServer((req, res) => {
      let body = "";
      req.on("data", (chunk: Buffer) => (body += chunk.toString("utf8")));
      req.on("end", () => {
        const request = JSON.parse(body) as { model: string; messages: { role: string; content: string }[] };
        const all = request.messages.map((m) => m.content).join("\n");
        const entry = /def (\w+)\(/.exec(request.messages.find((m) => m.role === "user")!.content)![1]!;
        const problem = [...this.problems.values()].find((p) => p.entry_point === entry)!;
        let content: string;
        if (all.includes("unit tests for the function")) {
          this.requests.push("tests");
          content = this.testAnswer;
        } else if (request.messages.some((m) => m.role === "assistant")) {
          this.requests.push("repair");
          content = `The loop never ran.\n\`\`\`python\n${problem.prompt}${problem.canonical_solution}\`\`\``;
        } else {
          this.requests.push("solve");
          content = `\`\`\`python\ndef ${entry}(*args):\n    return None\n\`\`\``;
        }
        res.writeHead(200, { "content-type": "application/json" });
        res.end(
          JSON.stringify({
            id: `chatcmpl-${this.requests.length}`,
            object: "chat.completion",
            created: 0,
            model: request.model,
            choices: [{ index: 0, message: { role: "assistant", content }, finish_reason: "stop" }],
            usage: { prompt_tokens: 10, completion_tokens: 10, total_tokens: 20 },
          }),
        );
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    return `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}/v1`;
  }
}

let problems: Map<string, Problem>;
beforeAll(async () => {
  problems = new Map((await readProblems(defaults.problemsPath, 3)).map((p) => [p.task_id, p]));
});

describe("graphs/code-exec", () => {
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
      expect((row.provenance as { parents: string[] }).parents).toEqual([dataOf(row).task_id]);
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
    const model = { current: undefined as ScriptedModel | undefined };
    beforeAll(async () => {
      model.current = new ScriptedModel(problems);
      process.env.OPENAI_BASE_URL = await model.current.start();
    });
    afterAll(async () => {
      delete process.env.OPENAI_BASE_URL;
      await new Promise((resolve) => model.current!.server!.close(resolve));
    });

    it("feeds the test failure back, keeps the repaired solution and records attempt 2", async () => {
      model.current!.requests = [];
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
      expect(model.current!.requests.sort()).toEqual(["repair", "repair", "solve", "solve"]);
    });

    it("runs the model's own asserts after the problem's tests when generateTests is on", async () => {
      model.current!.testAnswer = "Here are tests:\n```python\nassert has_close_elements([1.0, 1.05], 0.1) == 42\nprint('done')\n```";
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
