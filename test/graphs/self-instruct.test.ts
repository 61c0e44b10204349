import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import { SIMULATOR_MODEL, defineMap, drop, defineFilter, readManifest, startSimulator } from "../../src/index.ts";
import definition, { defaults } from "../../graphs/self-instruct.ts";
import { parseInstructionList, readSeedTasks } from "../../graphs/lib/self-instruct-steps.ts";
import { readShards, useGraphRuns, type OutputRow } from "../support/graph-run.ts";

const { runGraph, tempDir } = useGraphRuns();

const CLI = join(import.meta.dirname, "..", "..", "bin", "rxsynth.mjs");
const GRAPH = join(import.meta.dirname, "..", "..", "graphs", "self-instruct.ts");

/** What two runs must agree on: every accepted row (id and data) and every reject (id, operator, reason). */
function dataset(rows: OutputRow[], rejects: OutputRow[]) {
  const byId = <T>(list: [string, T][]) => list.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return {
    accepted: byId(rows.map((row) => [row.id, row.data] as [string, unknown])),
    rejected: byId(rejects.map((row) => [row.id, `${row.reject!.operator}:${row.reject!.reason}`] as [string, string])),
  };
}

const STEPS = ["split_rounds", "sample_demos", "propose_instructions", "split_instructions", "classify_task", "generate_instances", "split_instances"];

describe("graphs/self-instruct", () => {
  it("stops at the target with exactly that many rows, the documented columns and depth-1 provenance", async () => {
    const { summary, rows, rejects, logs } = await runGraph(definition, { target: 12 });
    expect(summary.status).toBe("complete");
    expect(rows).toHaveLength(12);
    expect(logs.filter((line) => line.startsWith("no OPENAI_BASE_URL set"))).toHaveLength(1);
    for (const row of rows) {
      expect(Object.keys(row.data).filter((key) => key !== "_extra").sort()).toEqual(["input", "instruction", "is_classification", "output"]);
      expect(typeof row.data.instruction).toBe("string");
      expect(typeof row.data.is_classification).toBe("boolean");
      expect((row.data.output as string).length).toBeGreaterThan(0);
      expect(row.provenance).toMatchObject({ origin: "synthetic", source: "self-instruct-rounds", depth: 1 });
      expect(row.provenance.parents).toHaveLength(1);
      expect(row.provenance.steps.map((step) => step.op)).toEqual(STEPS);
      expect(row.provenance.steps[0]!.note).toMatch(/^round \d+ \(\d+ of \d+ in wave \d+\)$/);
      expect(row.provenance.steps[1]!.note).toMatch(/^human: seed_task_\d+(, seed_task_\d+)*; machine: \d+ of \d+$/);
      expect(row.provenance.steps[2]!.model).toBe("rxsynth-sim");
      expect(row.provenance.steps[5]!.note).toMatch(/^(input-first|output-first \(classification\))/);
    }
    expect(new Set(rows.map((row) => (row.data.instruction as string).toLowerCase())).size).toBe(12);
    // Whatever the last wave produced beyond the target is rejected, not silently dropped.
    const target = summary.metrics.operators.find((op) => op.name === "target")!;
    expect(target.out).toBe(12);
    expect(rejects.filter((row) => row.reject!.reason === "over_target")).toHaveLength(target.in - 12);
    for (const row of rejects.filter((r) => r.reject!.operator === "target")) expect(row.reject!.threshold).toBe(12);
  });

  it("draws in-context examples from accepted instructions once an earlier wave has come back", async () => {
    // One round per wave: every round after the first sees what the ones before it accepted.
    const { rows } = await runGraph(definition, { target: 20, parallelRounds: 1 });
    expect(rows).toHaveLength(20);
    const notes = rows.map((row) => row.provenance.steps[1]!.note!);
    const machine = notes.map((note) => Number(/machine: (\d+) of (\d+)/.exec(note)![1]));
    const pool = notes.map((note) => Number(/machine: \d+ of (\d+)/.exec(note)![1]));
    expect(Math.min(...pool)).toBe(0);
    expect(Math.max(...machine)).toBe(2);
    // 6 human + 2 machine = 8 in-context tasks, and 8 human seeds while the pool is empty.
    for (const note of notes) {
      const human = (note.match(/seed_task_\d+/g) ?? []).length;
      const fromPool = Number(/machine: (\d+)/.exec(note)![1]);
      expect(human + fromPool).toBe(8);
      expect(fromPool).toBe(Math.min(2, Number(/of (\d+)/.exec(note)![1])));
    }
  });

  it("runs a custom operator inserted after a named step, in place", async () => {
    const tag = defineMap({
      name: "tag_length",
      reads: ["instruction"],
      writes: ["instruction_words"],
      map: (sample) => ({ data: { ...sample.data, instruction_words: (sample.data.instruction as string).split(/\s+/).length } }),
    });
    const noQuiz = defineFilter({
      name: "no_quiz",
      reads: ["instruction"],
      test: (sample) => (/\bquiz\b/i.test(sample.data.instruction as string) ? drop("quiz") : true),
    });
    const { rows, rejects, summary } = await runGraph(
      definition,
      { target: 15 },
      { customization: { insert: [{ after: "instruction_heuristics", operators: [tag, noQuiz] }] } },
    );
    expect(rows).toHaveLength(15);
    const names = summary.metrics.operators.map((op) => op.name);
    expect(names.slice(names.indexOf("instruction_heuristics"), names.indexOf("rouge_filter") + 1)).toEqual([
      "instruction_heuristics",
      "tag_length",
      "no_quiz",
      "rouge_filter",
    ]);
    for (const row of rows) {
      expect(row.data.instruction_words).toBe((row.data.instruction as string).split(/\s+/).length);
      expect(row.data.instruction).not.toMatch(/\bquiz\b/i);
      const ops = row.provenance.steps.map((step) => step.op);
      expect(ops.indexOf("tag_length")).toBe(ops.indexOf("split_instructions") + 1);
      expect(ops.indexOf("classify_task")).toBe(ops.indexOf("tag_length") + 1);
    }
    const quiz = rejects.filter((row) => row.reject!.operator === "no_quiz");
    expect(quiz.length).toBe(summary.metrics.operators.find((op) => op.name === "no_quiz")!.rejected);
    for (const row of quiz) expect(row.reject!.reason).toBe("quiz");
  });

  it("rejects new instructions that copy a seed task, by ROUGE-L against a pool that starts with the seeds", async () => {
    const seeds = await readSeedTasks(defaults.seedTasks);
    let n = 0;
    const copySeed = defineMap({
      name: "copy_seed",
      map: (sample) => (n++ % 3 === 0 ? { data: { ...sample.data, instruction: seeds[5]!.instruction } } : {}),
    });
    const { rejects } = await runGraph(definition, { target: 10 }, { customization: { insert: [{ after: "split_instructions", operators: [copySeed] }] } });
    const copies = rejects.filter((row) => row.data.instruction === seeds[5]!.instruction);
    expect(copies.length).toBeGreaterThan(0);
    for (const row of copies) {
      expect(row.reject).toMatchObject({ operator: "rouge_filter", reason: "too_similar", value: 1, threshold: 0.7, duplicate_of: seeds[5]!.id });
    }
  });

  it("continues toward the same target when a stopped run is resumed, to the rows of an uninterrupted run", async () => {
    const whole = await runGraph(definition, { target: 30, parallelRounds: 1 });
    const out = await tempDir();
    const first = await runGraph(definition, { target: 30, parallelRounds: 1 }, { out, run: { limit: 2 } });
    expect(first.summary.status).toBe("limited");
    expect(first.rows.length).toBeGreaterThan(0);
    expect(first.rows.length).toBeLessThan(30);
    const second = await runGraph(definition, { target: 30, parallelRounds: 1 }, { out });
    expect(second.summary.status).toBe("complete");
    expect(second.summary.resumed).toBe(true);
    expect(second.rows).toHaveLength(30);
    expect(new Set(second.rows.map((row) => row.id)).size).toBe(30);
    expect(dataset(second.rows, second.rejects)).toEqual(dataset(whole.rows, whole.rejects));
    // A finished run asked again adds nothing.
    const third = await runGraph(definition, { target: 30, parallelRounds: 1 }, { out });
    expect(third.summary.accepted).toBe(0);
    expect(third.rows).toHaveLength(30);
  });

  it("reads numbered, bulleted and 'Task n:' lists, joining wrapped lines", () => {
    expect(parseInstructionList("1. Write a poem.\n2) Summarize the text\n   in two sentences.\nTask 3: Classify the email.\n- Name three rivers.")).toEqual([
      "Write a poem.",
      "Summarize the text in two sentences.",
      "Classify the email.",
      "Name three rivers.",
    ]);
    expect(parseInstructionList("Sure, here you go.")).toMatchObject({ keep: false, reason: "no_instructions" });
  });
});

describe("graphs/self-instruct, reproducibly", () => {
  it("writes the same rows and rejects at any concurrency, budget and answer timing", async () => {
    const options = { target: 60, parallelRounds: 4 };
    const fast = await runGraph(definition, { ...options, concurrency: 32 }, { run: { budget: 1024 } });
    // The same answers (same simulator seed and model), but slower the longer they are, from a server that
    // serves two at a time, to a run with a few requests and the smallest budget that holds a wave.
    const slow = await startSimulator({ seed: defaults.seed, latencyMs: 1, tokensPerS: 20_000, maxConcurrency: 2 });
    try {
      vi.stubEnv("OPENAI_BASE_URL", slow.url);
      vi.stubEnv("RXSYNTH_MODEL", SIMULATOR_MODEL);
      // Every answer from the slow server, none from a response cache shared with the first run.
      vi.stubEnv("RXSYNTH_CACHE_DIR", "off");
      const jittered = await runGraph(definition, { ...options, concurrency: 3 }, { run: { budget: 4 * 8 } });
      expect(fast.rows).toHaveLength(60);
      expect(dataset(jittered.rows, jittered.rejects)).toEqual(dataset(fast.rows, fast.rejects));
    } finally {
      await slow.close();
    }
  }, 120_000);

  it("refuses a budget that cannot hold a whole wave, saying what to change", async () => {
    await expect(runGraph(definition, { target: 10, parallelRounds: 4 }, { run: { budget: 31 } })).rejects.toThrow(
      /holding up to parallelRounds x instructionsPerRound x instancesPerTask = 32 rows in flight; the run's budget is 31/,
    );
  });

  it.each(["shards", "state", "manifest"])("equals the uninterrupted run after a SIGKILL at the %s step and a resume", async (step) => {
    const options = { target: 40, parallelRounds: 2 };
    const whole = await runGraph(definition, options);
    const out = await tempDir();
    const args = [CLI, "run", GRAPH, "--out", out, "--set", "target=40", "--set", "parallelRounds=2", "--budget", "16", "--checkpoint-rows", "5", "--quiet"];
    const env = { ...process.env, OPENAI_BASE_URL: "" };
    // Killed at its third commit of that step: two waves or so are committed, the loop state may be ahead.
    const killed = spawnSync(process.execPath, args, { encoding: "utf8", env: { ...env, RXSYNTH_FAULT: `${step}:3` }, timeout: 60_000 });
    expect(killed.signal, killed.stderr).toBe("SIGKILL");
    expect((await readManifest(out))?.complete).not.toBe(true);
    const resumed = spawnSync(process.execPath, args, { encoding: "utf8", env, timeout: 60_000 });
    expect(resumed.status, resumed.stderr).toBe(0);
    const rows = await readShards(out, "part");
    expect(rows).toHaveLength(40);
    expect(dataset(rows, await readShards(out, "rejects"))).toEqual(dataset(whole.rows, whole.rejects));
  }, 180_000);
});
