import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { buildGraph } from "../../src/index.ts";
import definition, { defaults } from "../../graphs/distill-rationales.ts";
import { ORCA_SYSTEM_MESSAGES, ORCA_TASK_SUBSETS, isMultipleChoice, taskTypeOf } from "../../graphs/lib/orca-system-messages.ts";
import { readSeedTasks } from "../../graphs/lib/self-instruct-steps.ts";
import { useGraphRuns, useRecordingSimulator, type RecordedRequest } from "../support/graph-run.ts";

const { runGraph, tempDir } = useGraphRuns();

type Row = { instruction: string; input?: string; task_type?: string };
type Message = { role: string; content: string };

async function writeRows(rows: readonly Row[]): Promise<string> {
  const path = join(await tempDir("orca-input"), "rows.jsonl");
  await writeFile(path, rows.map((row) => JSON.stringify(row)).join("\n") + "\n");
  return path;
}

/** The system message id a request was sent under: its system text looked up, none = the empty #1. */
function systemIdOf(request: RecordedRequest): number {
  const messages = request.body.messages as Message[];
  const system = messages.filter((message) => message.role === "system");
  expect(system.length).toBeLessThanOrEqual(1);
  if (system.length === 0) return 1;
  const found = ORCA_SYSTEM_MESSAGES.find((message) => message.text === system[0]!.content);
  expect(found, `unknown system message: ${system[0]!.content}`).toBeDefined();
  expect(found!.text).not.toBe("");
  return found!.id;
}

const userOf = (request: RecordedRequest) => (request.body.messages as Message[]).find((message) => message.role === "user")!.content;

// Rows of every kind a type field can name, with distinct instructions so a request names its row.
const KINDS = [
  { type: "cot", subset: ORCA_TASK_SUBSETS.cot, instruction: (i: number) => `Row ${i}: is ${i} an even number? Reason it out.` },
  { type: "niv2", subset: ORCA_TASK_SUBSETS.niv2, instruction: (i: number) => `Row ${i}: Definition: label the sentiment of the review as positive or negative.` },
  { type: "t0", subset: ORCA_TASK_SUBSETS.t0, instruction: (i: number) => `Row ${i}: Read the passage and say who wrote the letter.` },
  { type: "flan2021", subset: ORCA_TASK_SUBSETS.flan2021, instruction: (i: number) => `Row ${i}: Write a sentence about a harbour at dawn.` },
  {
    type: "flan2021",
    subset: ORCA_TASK_SUBSETS.flan2021_multiple_choice,
    instruction: (i: number) => `Row ${i}: Which of these is a mammal?\nOptions:\n- whale\n- shark\n- trout`,
  },
  { type: "dialogue", subset: ORCA_TASK_SUBSETS.default, instruction: (i: number) => `Row ${i}: Continue the conversation politely.` },
  { type: undefined, subset: ORCA_TASK_SUBSETS.default, instruction: (i: number) => `Row ${i}: Suggest a name for a bakery.` },
] as const;

function mixedRows(perKind: number): { rows: Row[]; subsetOf: Map<string, readonly number[]> } {
  const rows: Row[] = [];
  const subsetOf = new Map<string, readonly number[]>();
  for (let i = 0; i < perKind; i++) {
    for (const [k, kind] of KINDS.entries()) {
      const instruction = kind.instruction(i * KINDS.length + k);
      rows.push(kind.type === undefined ? { instruction } : { instruction, task_type: kind.type });
      subsetOf.set(instruction, kind.subset);
    }
  }
  return { rows, subsetOf };
}

// A problem the simulator answers in a few words ("Step by step, 17 + 28 = 45 / #### 45"): a short answer
// that is a whole answer.
const SHORT: Row = { instruction: "Problem: What is 17 + 28? End your answer with a line '#### <answer>'.", task_type: "cot" };

describe("graphs/lib/orca-system-messages", () => {
  it("holds the paper's sixteen system messages under its ids, one of them (#1) empty", () => {
    expect(ORCA_SYSTEM_MESSAGES.map((message) => message.id)).toEqual(Array.from({ length: 16 }, (_, i) => i + 1));
    expect(ORCA_SYSTEM_MESSAGES.filter((message) => message.text === "").map((message) => message.id)).toEqual([1]);
    expect(new Set(ORCA_SYSTEM_MESSAGES.map((message) => message.text)).size).toBe(16);
    expect(defaults.systemMessages).toBe(ORCA_SYSTEM_MESSAGES);
  });

  it("maps each FLAN-v2 collection to the paper's subset of ids, multiple choice (#8, #10) only in Flan 2021", () => {
    expect(ORCA_TASK_SUBSETS).toEqual({
      cot: [6, 11, 16],
      niv2: [1, 2, 5, 7, 9, 12, 13, 14, 15],
      t0: [1, 2, 3, 5, 7],
      flan2021: [3, 4, 7],
      flan2021_multiple_choice: [8, 10],
      default: [1, 2, 3, 4, 5, 6, 7, 11, 12, 13, 16],
    });
    expect(isMultipleChoice("Which is a mammal?\nOptions:\n- whale\n- shark")).toBe(true);
    expect(isMultipleChoice("Pick the odd one out.\n(A) red\n(B) blue\n(C) seven")).toBe(true);
    expect(isMultipleChoice("A. Smith wrote to B. Jones about options for dinner.")).toBe(false);
    // FLAN's other templates: a header that ends in a period, "Pick one:", and lower-case or roman markers.
    expect(isMultipleChoice("Is the review positive?\nSelect from the following.\n+ yes\n+ no")).toBe(true);
    expect(isMultipleChoice("Which river is longest?\nPick one:\n- Nile\n- Thames")).toBe(true);
    expect(isMultipleChoice("Choose your answer from the following options.\n- true\n- false")).toBe(true);
    expect(isMultipleChoice("Available options:\n- cat\n- dog")).toBe(true);
    expect(isMultipleChoice("What follows?\n(a) rain\n(b) sun")).toBe(true);
    expect(isMultipleChoice("Premise and hypothesis.\n(i) yes\n(ii) it is not possible to tell\n(iii) no")).toBe(true);
    expect(isMultipleChoice("Select the best title for the article below.\nThe article is about rivers.")).toBe(false);
    expect(isMultipleChoice("Pick one of your friends and describe them.")).toBe(false);
    expect(isMultipleChoice("(a) is the first point of the essay.")).toBe(false);
    expect(isMultipleChoice("Answer options:\n- x\n- y")).toBe(true);
    expect(isMultipleChoice("Choose from options:\n- left\n- right")).toBe(true);
    expect(isMultipleChoice("Is it raining?\n(A). yes\n(B). no")).toBe(true);
    // Review: headers in sentences and a dialogue's turns are not options.
    expect(isMultipleChoice("A: hello\nB: hey\nSummarize the dialogue.")).toBe(false);
    expect(isMultipleChoice("Options: call me back later.")).toBe(false);
    expect(isMultipleChoice("Choices: the one you make matters.")).toBe(false);
    expect(isMultipleChoice("Select: the rows from the table.")).toBe(false);
  });
});

describe("graphs/distill-rationales", () => {
  const { requests } = useRecordingSimulator();

  it("sends each row under a system message of its task type's subset, #1 as no system message", async () => {
    const { rows: input, subsetOf } = mixedRows(20);
    const path = await writeRows(input);
    const drawn = new Set<number>();
    for (const seed of [1, 2, 3]) {
      requests.length = 0;
      const { rows, summary } = await runGraph(definition, { input: path, count: input.length, seed });
      expect(summary.metrics.operators.find((op) => op.name === "teacher")!.in).toBe(input.length);
      expect(requests).toHaveLength(input.length);
      for (const request of requests) {
        const id = systemIdOf(request);
        expect(subsetOf.get(userOf(request)), userOf(request)).toContain(id);
        drawn.add(id);
      }
      for (const row of rows) {
        expect(subsetOf.get(row.data.instruction as string)).toContain(row.data.system_id);
        expect(row.data.system).toBe(ORCA_SYSTEM_MESSAGES[(row.data.system_id as number) - 1]!.text);
        expect(row.provenance.steps[0]!.note).toMatch(new RegExp(`^system: ${row.data.system_id as number} \\(`));
      }
    }
    // Every message is drawn somewhere: the choice covers each subset, not its first ids.
    expect([...drawn].sort((a, b) => a - b)).toEqual(Array.from({ length: 16 }, (_, i) => i + 1));
  });

  it("draws the same system messages for the same seed, and others for another", async () => {
    const { rows: input } = mixedRows(4);
    const path = await writeRows(input);
    const assignment = async (seed: number) => {
      const { rows } = await runGraph(definition, { input: path, count: input.length, seed });
      return new Map(rows.map((row) => [row.data.instruction as string, [row.data.system_id, row.data.output]]));
    };
    const first = await assignment(7);
    expect(first.size).toBe(input.length);
    expect(await assignment(7)).toEqual(first);
    const other = await assignment(8);
    expect([...other].filter(([instruction, [id]]) => first.get(instruction)![0] !== id).length).toBeGreaterThan(0);
  });

  it("answers the built-in seed tasks (no task type) under the default subset, with their columns and provenance", async () => {
    const seeds = await readSeedTasks(defaults.input);
    const { rows, rejects } = await runGraph(definition, { count: 6, systemsPerPrompt: 3 });
    expect(rows.length + rejects.length).toBe(18);
    for (const row of rows) {
      expect(Object.keys(row.data).filter((key) => key !== "_extra").sort()).toEqual(["input", "instruction", "output", "system", "system_id", "task_type"]);
      expect(ORCA_TASK_SUBSETS.default).toContain(row.data.system_id);
      expect(row.data.task_type).toBe("");
      const seed = seeds.find((task) => task.instruction === row.data.instruction)!;
      expect(row.data.input).toBe(seed.instances[0]!.input.trim());
      expect(row.provenance).toMatchObject({ origin: "synthetic", depth: 1 });
      expect(row.provenance.steps.map((step) => step.op)).toEqual(["assign_system", "teacher"]);
      expect(row.provenance.steps[0]!.note).toBe(`system: ${row.data.system_id as number} (default)`);
      expect(row.provenance.steps[1]!.model).toBe(requests[0]!.body.model);
    }
    // Three messages per prompt: every prompt under three distinct ones.
    const perPrompt = new Map<string, number[]>();
    for (const row of [...rows, ...rejects]) {
      const key = row.data.instruction as string;
      if (row.data.system_id !== undefined) perPrompt.set(key, [...(perPrompt.get(key) ?? []), row.data.system_id as number]);
    }
    for (const ids of perPrompt.values()) expect(new Set(ids).size).toBe(ids.length);
  });

  it("keeps a short answer that is a whole answer, unless a floor is set for its system message", async () => {
    const path = await writeRows([SHORT]);
    const { rows, rejects } = await runGraph(definition, { input: path, count: 1 });
    expect(rejects).toEqual([]);
    expect(rows).toHaveLength(1);
    const words = (rows[0]!.data.output as string).trim().split(/\s+/).length;
    expect(words).toBeLessThan(20); // the old minOutputWords would have dropped it
    expect(rows[0]!.data.output).toMatch(/#### \d+/);

    const floored = await runGraph(definition, { input: path, count: 1, minWordsBySystem: { 6: 50, 11: 50, 16: 50 } });
    expect(floored.rows).toEqual([]);
    expect(floored.rejects[0]!.reject).toMatchObject({ operator: "answer_length", reason: "too_few_words", value: words, threshold: 50 });
  });

  it("rejects a row whose task type names no collection, with a reason, and sends nothing for it", async () => {
    const path = await writeRows([{ instruction: "Name a colour.", task_type: "poetry" }, { instruction: "Name a fruit.", task_type: "T0" }]);
    const { rows, rejects } = await runGraph(definition, { input: path, count: 2 });
    expect(rows.map((row) => row.data.task_type)).toEqual(["t0"]);
    expect(rejects).toHaveLength(1);
    expect(rejects[0]!.reject).toMatchObject({ operator: "assign_system", reason: "unknown_task_type" });
    expect(rejects[0]!.reject!.message).toContain('"poetry"');
    expect(requests.map(userOf)).toEqual(["Name a fruit."]);
  });

  it("reads Open-Orca's ids and FLAN's names as task types, and no other value", () => {
    expect(["niv.242684", "cot.8", "t0.55", "flan.1024", "Flan 2021", "NIV2", " dialog "].map(taskTypeOf)).toEqual(["niv2", "cot", "t0", "flan2021", "flan2021", "niv2", "dialogue"]);
    expect(["poetry", "niv.x", "cot.8.1", "", "t0s.5"].map(taskTypeOf)).toEqual([undefined, undefined, undefined, undefined, undefined]);
  });

  it("rejects a row with no instruction or input text, with a reason, and sends nothing for it", async () => {
    const path = await writeRows([{ instruction: "" }, { instruction: "   ", input: " " }, { instruction: "Name a fruit." }]);
    const { rows, rejects } = await runGraph(definition, { input: path, count: 3 });
    expect(rows.map((row) => row.data.instruction)).toEqual(["Name a fruit."]);
    expect(rejects.map((row) => [row.reject!.operator, row.reject!.reason])).toEqual([
      ["assign_system", "no_instruction"],
      ["assign_system", "no_instruction"],
    ]);
    expect(requests.map(userOf)).toEqual(["Name a fruit."]);
  });

  it("takes system messages and subsets from its options, and says what is wrong with bad ones", async () => {
    const messages = [
      { id: 1, text: "" },
      { id: 2, text: "Answer by asking and then answering the questions that lead to the solution." },
    ];
    const subsets = Object.fromEntries(Object.keys(ORCA_TASK_SUBSETS).map((key) => [key, [2]]));
    const { rows } = await runGraph(definition, { count: 3, systemMessages: messages, taskSubsets: subsets });
    expect(rows.length).toBeGreaterThan(0);
    for (const row of rows) expect(row.data).toMatchObject({ system_id: 2, system: messages[1]!.text });
    await expect(buildGraph(definition, { systemMessages: [...messages, { id: 2, text: "again" }] })).rejects.toThrow(/distinct ids/);
    await expect(buildGraph(definition, { systemMessages: messages, taskSubsets: { ...subsets, cot: [3] } })).rejects.toThrow(/taskSubsets\.cot/);
    await expect(buildGraph(definition, { minWordsBySystem: { 17: 10 } })).rejects.toThrow(/minWordsBySystem/);
    await expect(buildGraph(definition, { systemsPerPrompt: 0 })).rejects.toThrow(/systemsPerPrompt/);
  });
});

// An answer that failed is rejected with the reason, whatever its length rule.
for (const [fault, reason] of [
  ["empty", "empty"],
  ["length", "truncated"],
  ["refusal", "refusal"],
] as const) {
  describe(`graphs/distill-rationales when every answer is ${fault === "length" ? "cut off" : fault}`, () => {
    useRecordingSimulator({ faults: { [fault]: 1 } });

    it(`rejects it as ${reason}`, async () => {
      const { rows, rejects } = await runGraph(definition, { count: 4 });
      expect(rows).toEqual([]);
      expect(rejects).toHaveLength(4);
      for (const row of rejects) expect(row.reject).toMatchObject({ operator: "teacher", reason });
    });
  });
}
