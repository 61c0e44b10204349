import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import quickstart from "../../graphs/quickstart.ts";
import { buildGraph, run } from "../../src/index.ts";
import { BatchBoard, readJournal } from "../../src/llm/batch/index.ts";
import { readShards } from "../support/graph-run.ts";

// Batch mode wired into a ready graph: `GraphEnvironment.batch` (what `rxsynth run --batch` sets) makes
// the graph's endpoint a batch client, over the built-in simulator's Batch API here; the rows are the
// online run's, and the progress figures count the batches.

const root = resolve(import.meta.dirname, "../..");
const dirs: string[] = [];
const tempDir = async () => {
  const dir = await mkdtemp(join(tmpdir(), "rxsynth-batch-graph-"));
  dirs.push(dir);
  return dir;
};
beforeEach(() => {
  vi.stubEnv("OPENAI_BASE_URL", "");
});
afterEach(async () => {
  vi.unstubAllEnvs();
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

async function runQuickstart(out: string, board?: BatchBoard) {
  const graph = await buildGraph(quickstart, { target: 10 }, { log: () => {}, out, cache: false, ...(board ? { batch: { board } } : {}) });
  const summary = await run(graph, { out, log: () => {} });
  const rows = await readShards(out, "part");
  return { summary, rows: rows.map((row) => [row.id, JSON.stringify(row.data)]).sort() };
}

describe("batch mode in a ready graph", () => {
  it("writes the rows the online run writes, and counts its batches", async () => {
    const online = await runQuickstart(await tempDir());
    const board = new BatchBoard();
    const out = await tempDir();
    const batched = await runQuickstart(out, board);
    expect(batched.rows).toEqual(online.rows);
    expect(batched.rows).toHaveLength(10);
    const figures = board.figures();
    expect(figures.submitted).toBeGreaterThan(0);
    expect(figures).toMatchObject({ inProgress: 0, completed: figures.submitted, expired: 0, failed: 0 });
    expect(figures.requestsDone).toBe(batched.summary.metrics.totals["llm.requests"]);
    const journal = readJournal(join(out, "state", "batches.jsonl"));
    expect(journal.filter((record) => record.type === "batch")).toHaveLength(figures.submitted);
  }, 120_000);

  it("rxsynth run --batch says what its batches did in the summary", async () => {
    const out = await tempDir();
    const { stderr } = await promisify(execFile)(process.execPath, [join(root, "bin/rxsynth.mjs"), "run", "graphs/quickstart.ts", "--batch", "--quiet", "--no-cache", "--set", "target=10", "--out", out], {
      cwd: root,
      env: { ...process.env, OPENAI_BASE_URL: "" },
    });
    expect(stderr).toMatch(/^batches: \d+ submitted, 0 in progress, \d+ completed, 0 expired; requests (\d+)\/\1$/m);
    expect(stderr).toMatch(/complete: 10 accepted/);
  }, 120_000);
});
