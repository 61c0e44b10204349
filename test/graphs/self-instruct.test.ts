import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import { SIMULATOR_MODEL, defineMap, drop, defineFilter, readManifest, startSimulator } from "../../src/index.ts";
import definition, { defaults } from "../../graphs/self-instruct.ts";
import { conflictingInput, parseInstructionList, readSeedTasks } from "../../graphs/lib/self-instruct-steps.ts";
import { RougePool } from "../../operators/diversity/rouge-filter.ts";
import { labelCoverage } from "../../benchmarks/lib/label-coverage.ts";
import { readShards, useGraphRuns, useRecordingSimulator, type OutputRow, type RecordedRequest } from "../support/graph-run.ts";

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
    // Up to 5 instances per task: distinct as (instruction, input), several rows to an instruction.
    expect(new Set(rows.map((row) => JSON.stringify([row.data.instruction, row.data.input]).toLowerCase())).size).toBe(12);
    expect(new Set(rows.map((row) => row.data.instruction)).size).toBeLessThan(12);
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
      "program_tasks",
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
      const jittered = await runGraph(definition, { ...options, concurrency: 3 }, { run: { budget: 4 * 8 * 5 } });
      expect(fast.rows).toHaveLength(60);
      expect(dataset(jittered.rows, jittered.rejects)).toEqual(dataset(fast.rows, fast.rejects));
    } finally {
      await slow.close();
    }
  }, 120_000);

  it("refuses a budget that cannot hold a whole wave, saying what to change", async () => {
    await expect(runGraph(definition, { target: 10, parallelRounds: 4 }, { run: { budget: 159 } })).rejects.toThrow(
      /holding up to parallelRounds x instructionsPerRound x instancesPerTask = 160 rows in flight; the run's budget is 159/,
    );
  });

  it.each(["shards", "state", "manifest"])("equals the uninterrupted run after a SIGKILL at the %s step and a resume", async (step) => {
    const options = { target: 40, parallelRounds: 2 };
    const whole = await runGraph(definition, options);
    const out = await tempDir();
    const args = [CLI, "run", GRAPH, "--out", out, "--set", "target=40", "--set", "parallelRounds=2", "--budget", "80", "--checkpoint-rows", "5", "--quiet"];
    const env = { ...process.env, OPENAI_BASE_URL: "" };
    // Killed at its second commit of that step: a wave or so is committed, the loop state may be ahead.
    const killed = spawnSync(process.execPath, args, { encoding: "utf8", env: { ...env, RXSYNTH_FAULT: `${step}:2` }, timeout: 60_000 });
    expect(killed.signal, killed.stderr).toBe("SIGKILL");
    expect((await readManifest(out))?.complete).not.toBe(true);
    const resumed = spawnSync(process.execPath, args, { encoding: "utf8", env, timeout: 60_000 });
    expect(resumed.status, resumed.stderr).toBe(0);
    const rows = await readShards(out, "part");
    expect(rows).toHaveLength(40);
    expect(dataset(rows, await readShards(out, "rejects"))).toEqual(dataset(whole.rows, whole.rejects));
  }, 180_000);
});

describe("graphs/self-instruct, with the authors' settings (yizhongw/self-instruct)", () => {
  const { requests } = useRecordingSimulator();
  const kindOf = ({ body }: RecordedRequest) => {
    // The last message is the task's prompt (a structured answer may put a format message before it).
    const text = (body.messages as Array<{ content: string }>).at(-1)!.content;
    if (text.startsWith("Come up with")) return "propose";
    if (text.startsWith("Can the following task be regarded as a classification task")) return "classify";
    if (/^Write (one instance|up to \d+ instances)/.test(text)) return "instances";
    return "other";
  };

  it("sends the authors' sampling: instructions at temperature 0.7, top_p 0.5, presence_penalty 2; instances and classification at temperature 0", async () => {
    const { rows } = await runGraph(definition, { target: 10 });
    expect(rows).toHaveLength(10);
    const byKind = new Map<string, Array<Readonly<Record<string, unknown>>>>();
    for (const request of requests) byKind.set(kindOf(request), [...(byKind.get(kindOf(request)) ?? []), request.body]);
    expect(byKind.get("other")).toBeUndefined();
    for (const body of byKind.get("propose")!) expect(body).toMatchObject({ temperature: 0.7, top_p: 0.5, presence_penalty: 2 });
    for (const body of byKind.get("instances")!) {
      expect(body).toMatchObject({ temperature: 0, presence_penalty: 1.5 });
      expect(body.top_p).toBeUndefined();
    }
    for (const body of byKind.get("classify")!) expect(body).toMatchObject({ temperature: 0 });
    expect(byKind.get("instances")!.length).toBeGreaterThanOrEqual(2);
  });

  it("asks for up to 5 instances, for classification one per label (2 at least), shows a task with no input, and keeps every label", async () => {
    const { rows } = await runGraph(definition, { target: 60 });
    expect(rows).toHaveLength(60);
    const instanceRequests = requests.filter((request) => kindOf(request) === "instances");
    const prompt = (request: RecordedRequest) => (request.body.messages as Array<{ content: string }>).at(-1)!.content;
    const itemsOf = (request: RecordedRequest) => {
      const format = request.body.response_format as { json_schema: { schema: { properties: { instances: { minItems: number; maxItems: number } } } } };
      return format.json_schema.schema.properties.instances;
    };
    const labelled = instanceRequests.filter((request) => prompt(request).includes("for each of its class labels (for 5 of them if it has more than 5)"));
    const open = instanceRequests.filter((request) => prompt(request).startsWith("Write up to 5 instances of the task below"));
    expect(labelled.length).toBeGreaterThan(0);
    expect(open.length).toBeGreaterThan(0);
    expect(labelled.length + open.length).toBe(instanceRequests.length);
    for (const request of labelled) expect(itemsOf(request)).toMatchObject({ minItems: 2, maxItems: 5 });
    for (const request of open) {
      expect(itemsOf(request)).toMatchObject({ minItems: 1, maxItems: 5 });
      // The authors' instance template includes tasks without an input.
      expect(prompt(request)).toContain("Input: (none)");
    }
    // A task's instances are several rows; every classification task keeps each label the model gave it.
    expect(new Set(rows.map((row) => row.data.instruction)).size).toBeLessThan(40);
    const coverage = labelCoverage(rows);
    expect(coverage.classificationTasks).toBeGreaterThan(0);
    expect(coverage.meanLabels).toBeGreaterThanOrEqual(2);
    expect(coverage.coverage).toBeGreaterThanOrEqual(0.9);
  });

  it("keeps every instance of a long task with short inputs: dedup compares a row with other tasks' rows only", async () => {
    const long =
      "Read the following customer review of a restaurant carefully and decide whether the overall sentiment the reviewer " +
      "expresses about the food, the service and the atmosphere is positive, negative or mixed, taking sarcasm into account where it appears, " +
      "and ignoring remarks about the price, the parking or the weather, which say nothing about the meal itself";
    let planted = false;
    const plant = defineMap({
      name: "plant_long_task",
      map: (sample) => {
        if (planted) return {};
        planted = true;
        const instances = [["The food was great.", "positive"], ["Cold soup, rude waiter.", "negative"], ["Nice view, bland pasta.", "mixed"]];
        return { data: { ...sample.data, instruction: long, is_classification: true, instances: instances.map(([input, output]) => ({ input, output })) } };
      },
    });
    const { rows, rejects } = await runGraph(definition, { target: 30 }, { customization: { insert: [{ after: "generate_instances", operators: [plant] }] } });
    expect(rows.filter((row) => row.data.instruction === long).map((row) => row.data.output)).toEqual(["positive", "negative", "mixed"]);
    expect(rejects.filter((row) => row.data.instruction === long)).toEqual([]);
  });

  it("measures label coverage as kept labels over the labels the model gave", () => {
    const row = (task: string, output: string, labels: string[], is_classification = true) => ({
      data: { output, is_classification },
      provenance: { parents: [task], steps: [{ op: "generate_instances", note: `output-first (classification), labels ${JSON.stringify(labels)}` }] },
    });
    const both = ["yes", "no"];
    expect(labelCoverage([row("a", "yes", both), row("a", "no", both), row("b", "yes", both)])).toMatchObject({ coverage: 0.5, classificationTasks: 2, covered: 1 });
    // One label of one is not coverage; open tasks do not count.
    expect(labelCoverage([row("c", "yes", ["yes"]), row("d", "x", [], false)])).toMatchObject({ coverage: 0, classificationTasks: 1 });
  });

  it("drops instructions of 3 words or fewer and 'Write a program' tasks, as the authors' filters do", async () => {
    let n = 0;
    const plant = defineMap({
      name: "plant",
      map: (sample) => {
        const k = n++;
        if (k % 5 === 0) return { data: { ...sample.data, instruction: `Summarise topic ${k}.` } };
        if (k % 5 === 1) return { data: { ...sample.data, instruction: `Write a program that sorts the numbers of list ${k} in place.` } };
        return {};
      },
    });
    const { rows, rejects } = await runGraph(definition, { target: 10 }, { customization: { insert: [{ after: "split_instructions", operators: [plant] }] } });
    expect(rows.some((row) => /^write a program/i.test(row.data.instruction as string))).toBe(false);
    expect(rows.every((row) => (row.data.instruction as string).trim().split(/\s+/).length > 3)).toBe(true);
    const short = rejects.filter((row) => /^Summarise topic \d+\.$/.test(row.data.instruction as string));
    const programs = rejects.filter((row) => /^Write a program that sorts/.test(row.data.instruction as string));
    expect(short.length).toBeGreaterThan(0);
    expect(programs.length).toBeGreaterThan(0);
    for (const row of short) expect(row.reject).toMatchObject({ operator: "instruction_heuristics", reason: "too_few_words" });
    for (const row of programs) expect(row.reject).toMatchObject({ operator: "program_tasks", reason: "program_task" });
  });

  it("drops a whole task whose instances answer one input two ways, and instances cut off at a colon", async () => {
    let n = 0;
    const plant = defineMap({
      name: "plant_instances",
      map: (sample) => {
        const k = n++;
        if (k % 4 === 0) return { data: { ...sample.data, instances: [{ input: "2 + 2", output: "4" }, { input: "3 + 3", output: "6" }, { input: "2 + 2", output: "5" }] } };
        if (k % 4 === 1) return { data: { ...sample.data, instances: [{ input: "List three fruits:", output: "Apples, pears and plums." }, { input: "Name a colour", output: "The answer is:" }] } };
        return {};
      },
    });
    const { rows, rejects } = await runGraph(definition, { target: 10 }, { customization: { insert: [{ after: "generate_instances", operators: [plant] }] } });
    // The consistent "3 + 3" goes with the task: no row of a planted task is accepted.
    expect(rows.some((row) => ["2 + 2", "3 + 3", "List three fruits:"].includes(row.data.input as string))).toBe(false);
    expect(rows.some((row) => (row.data.input as string).endsWith(":") || (row.data.output as string).endsWith(":"))).toBe(false);
    // A dropped instance is rejected with its task's data: all three instances of each conflicting task.
    const planted = (row: OutputRow, marker: string) => String(row.data.instances).includes(marker);
    const conflicts = rejects.filter((row) => row.reject!.reason === "conflicting_instance");
    expect(conflicts.length).toBeGreaterThan(0);
    expect(conflicts.every((row) => planted(row, '"2 + 2"'))).toBe(true);
    expect(conflicts.length % 3).toBe(0);
    // Both instances of the other planted task end in a colon, one in its input, one in its output.
    const cut = rejects.filter((row) => row.reject!.reason === "incomplete_instance");
    expect(cut.length).toBeGreaterThan(0);
    expect(cut.every((row) => planted(row, "List three fruits:"))).toBe(true);
    expect(cut.length % 2).toBe(0);
  });

  it("finds the conflicting input among a task's instances, ignoring case and empty inputs", () => {
    expect(conflictingInput([{ input: "A", output: "x" }, { input: "a", output: "X" }])).toBeUndefined();
    expect(conflictingInput([{ input: "", output: "x" }, { input: "", output: "y" }])).toBeUndefined();
    expect(conflictingInput([{ input: "q", output: "x" }, { input: "r", output: "y" }, { input: "Q", output: "z" }])).toBe("Q");
  });

  it("keeps an instruction whose ROUGE-L to the pool is exactly the threshold, and drops one above it", () => {
    // LCS 7 of 10 and 10 tokens: ROUGE-L F = 0.7 exactly.
    const member = "alpha beta gamma delta epsilon zeta eta theta iota kappa";
    const exactly = "alpha beta gamma delta epsilon zeta eta one two three";
    const above = "alpha beta gamma delta epsilon zeta eta theta two three";
    for (const search of ["lsh", "brute"] as const) {
      const keep = new RougePool({ threshold: 0.7, atThreshold: "keep", search });
      keep.add("m", keep.prepare(member));
      expect(keep.best(keep.prepare(exactly))).toBeUndefined();
      expect(keep.best(keep.prepare(above))).toMatchObject({ id: "m", score: 0.8 });
      const dropAt = new RougePool({ threshold: 0.7, search });
      dropAt.add("m", dropAt.prepare(member));
      expect(dropAt.best(dropAt.prepare(exactly))).toMatchObject({ id: "m", score: 0.7 });
    }
  });
});
