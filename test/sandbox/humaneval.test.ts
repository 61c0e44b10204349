import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { expect, it } from "vitest";
import { collect, createSample, resolveDataPath } from "../../src/index.ts";
import { executeFilter } from "../../operators/filter/execute.ts";
import { describeWithSandbox } from "../support/sandbox.ts";

interface Problem {
  readonly task_id: string;
  readonly prompt: string;
  readonly canonical_solution: string;
  readonly test: string;
  readonly entry_point: string;
}

// openai/human-eval (MIT), shipped in the project's data/ folder (see data/README.md).
const HUMAN_EVAL = resolveDataPath("builtin:HumanEval.jsonl.gz");

function problems(): Problem[] {
  return gunzipSync(readFileSync(HUMAN_EVAL))
    .toString("utf8")
    .split("\n")
    .filter((line) => line.trim())
    .map((line) => JSON.parse(line) as Problem);
}

describeWithSandbox("executeFilter on HumanEval", () => {
  it("passes all 164 canonical solutions and fails each one's stubbed-out variant as test_failed", async () => {
    const all = problems();
    expect(all).toHaveLength(164);
    const samples = all.flatMap((problem) => [
      createSample({
        id: `${problem.task_id}/canonical`,
        data: { prompt: problem.prompt, completion: problem.canonical_solution, test: problem.test, entry_point: problem.entry_point },
        source: "human-eval",
      }),
      // The prompt ends inside the function's docstring, so an indented line is the function's body.
      createSample({
        id: `${problem.task_id}/stub`,
        data: { prompt: problem.prompt, completion: "    return None\n", test: problem.test, entry_point: problem.entry_point },
        source: "human-eval",
      }),
    ]);
    const started = performance.now();
    const { out, rejects } = await collect(
      executeFilter({
        language: "python",
        code: (sample) => `${sample.data.prompt}${sample.data.completion}`,
        tests: "test",
        entryPoint: "entry_point",
        concurrency: 3,
      }),
      samples,
    );
    const seconds = (performance.now() - started) / 1000;
    console.log(`HumanEval: ${samples.length} sandboxes in ${seconds.toFixed(1)} s (concurrency 3)`);

    expect(rejects.filter((r) => r.sample.id.endsWith("/canonical")).map((r) => [r.sample.id, r.reason, r.message])).toEqual([]);
    expect(out.map((s) => s.id).sort()).toEqual(all.map((p) => `${p.task_id}/canonical`).sort());
    expect(out.every((s) => typeof s.scores.exec_ms === "number" && s.scores.exec_ms > 0)).toBe(true);
    const stubs = rejects.filter((r) => r.sample.id.endsWith("/stub"));
    expect(stubs).toHaveLength(164);
    expect(stubs.filter((r) => r.reason !== "test_failed").map((r) => [r.sample.id, r.reason, r.message])).toEqual([]);
  }, 120_000);
});
