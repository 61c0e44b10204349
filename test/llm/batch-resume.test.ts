import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import fc from "fast-check";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BATCH_STEPS, readJournal, type BatchStep } from "../../src/llm/batch/index.ts";
import { startSimulator, type Simulator } from "../../src/sim/index.ts";
import { duplicatesOf, readChaosOutput, type ChaosOutput } from "../fixtures/chaos-graphs.ts";

// The promise of the batch protocol, tested with real kills: a batch run killed with SIGKILL between any
// two steps of the protocol, or at random moments, and then resumed, ends with exactly the rows of an
// uninterrupted run, and the server holds one batch per batch the journal recorded: nothing was submitted
// twice (no double billing) and nothing submitted was lost. The simulator lives in this process, so its
// batches outlive the child that submitted them, as an account's do.

const root = resolve(import.meta.dirname, "../..");
const driver = join(root, "test/fixtures/batch-driver.ts");
const RECORDS = 20;
const BUDGET = 12;

let dir: string;
let sim: Simulator;
let reference: ChaosOutput;

interface Child {
  readonly killed: boolean;
  readonly stderr: string;
}

/** Runs the driver into `out`; `env` sets a fault, `killAfterMs` kills it that long after the first batch is recorded. */
async function runChild(out: string, options: { env?: Record<string, string>; killAfterMs?: number; cache?: string } = {}): Promise<Child> {
  const args = ["--import", "tsx/esm", driver, out, "--llm", sim.url, "--records", `${RECORDS}`, "--budget", `${BUDGET}`, "--cache", options.cache ?? "none"];
  const child = spawn(process.execPath, args, { cwd: root, env: { ...process.env, RXSYNTH_BATCH_FAULT: "", ...options.env }, stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdout.resume();
  let exited = false;
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) =>
    child.once("exit", (code, signal) => {
      exited = true;
      done({ code, signal });
    }),
  );
  let timer: NodeJS.Timeout | undefined;
  if (options.killAfterMs !== undefined) {
    const createdBefore = sim.stats().batchesCreated;
    const wait = options.killAfterMs;
    // The clock starts at the child's first batch, so the kill lands in the batch part of the run however slow its start.
    void (async () => {
      while (!exited && sim.stats().batchesCreated === createdBefore) await new Promise((r) => setTimeout(r, 5));
      if (!exited) timer = setTimeout(() => child.kill("SIGKILL"), wait);
    })();
  }
  const { code, signal } = await exit;
  clearTimeout(timer);
  if (signal === null && code !== 0) throw new Error(`batch driver exited ${code}: ${stderr}`);
  return { killed: signal === "SIGKILL", stderr };
}

/** Batches on the server by journal key: a key with two batches is a double submission. */
async function serverBatches(): Promise<Map<string, string[]>> {
  const client = new OpenAI({ baseURL: sim.url, apiKey: "test" });
  const byKey = new Map<string, string[]>();
  for await (const batch of client.batches.list({ limit: 100 })) {
    const key = batch.metadata?.rxsynth_journal_key ?? "";
    byKey.set(key, [...(byKey.get(key) ?? []), batch.id]);
  }
  return byKey;
}

/** The end state of a folder, checked against the uninterrupted run and the server. */
async function expectSound(out: string, createdByThisCase: number) {
  const output = await readChaosOutput(out);
  expect(duplicatesOf(output)).toEqual([]);
  expect(output.accepted).toEqual(reference.accepted);
  expect(output.rejected).toEqual(reference.rejected);
  const sorted = (data: Map<string, string>) => [...data].sort((a, b) => a[0].localeCompare(b[0]));
  expect(sorted(output.data)).toEqual(sorted(reference.data));
  const journal = readJournal(join(out, "state", "batches.jsonl"));
  const recorded = new Set(journal.flatMap((record) => (record.type === "batch" ? [record.batchId] : [])));
  // Every batch created for this folder is one its journal knows, and each was created once.
  expect(createdByThisCase).toBe(recorded.size);
  // ...and no request went in two batches: an answer collected before a crash is never paid for again.
  const withBatch = new Set(journal.flatMap((record) => (record.type === "batch" ? [record.key] : [])));
  const sent = journal.flatMap((record) => (record.type === "intent" && withBatch.has(record.key) ? record.lines.map((line) => line.id) : []));
  expect(sent.length - new Set(sent).size, "requests sent in two batches").toBe(0);
  const keys = new Set(journal.flatMap((record) => (record.type === "intent" ? [record.key] : [])));
  const onServer = await serverBatches();
  for (const key of keys) expect(onServer.get(key)?.length ?? 0, `batches with key ${key}`).toBeLessThanOrEqual(1);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "rxsynth-batch-resume-"));
  sim = await startSimulator({ port: 0, seed: 5, latencyMs: 0, batchCompletionMs: 60 });
  const out = join(dir, "reference");
  await runChild(out);
  reference = await readChaosOutput(out);
  expect(reference.accepted.length).toBe(RECORDS);
}, 60_000);
afterAll(async () => {
  await sim?.close();
  await rm(dir, { recursive: true, force: true });
});

let caseNumber = 0;
/** A folder run through `crashes` and then once more to the end; returns the batches the server created meanwhile. */
async function crashThenResume(crashes: ReadonlyArray<Parameters<typeof runChild>[1]>, cache?: string): Promise<{ out: string; created: number; kills: number }> {
  const out = join(dir, `case-${caseNumber++}`);
  const before = sim.stats().batchesCreated;
  let kills = 0;
  for (const crash of crashes) if ((await runChild(out, { ...crash, cache })).killed) kills++;
  const last = await runChild(out, { cache });
  expect(last.killed).toBe(false);
  return { out, created: sim.stats().batchesCreated - before, kills };
}

describe("batch mode under kill -9", () => {
  // The 2nd time each step is done: one batch is already in flight, so a resume has both kinds to handle.
  it.each(BATCH_STEPS.map((step) => [step, 2] as const))(
    "killed after step %s (occurrence %i) and resumed: the uninterrupted run's rows, no batch submitted twice",
    async (step: BatchStep, nth: number) => {
      const { out, created, kills } = await crashThenResume([{ env: { RXSYNTH_BATCH_FAULT: `${step}:${nth}` } }]);
      expect(kills).toBe(1);
      await expectSound(out, created);
    },
    60_000,
  );

  it("killed twice in a row at the lost create, then resumed with the response cache", async () => {
    const cache = join(dir, "shared-cache");
    const { out, created, kills } = await crashThenResume([{ env: { RXSYNTH_BATCH_FAULT: "create:2" } }, { env: { RXSYNTH_BATCH_FAULT: "create:1" } }], cache);
    expect(kills).toBe(2);
    await expectSound(out, created);
  }, 90_000);

  it("killed at random moments (seeded) and resumed: the same end state", async () => {
    let kills = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 0, max: 400 }), { minLength: 1, maxLength: 3 }), async (delays) => {
        const result = await crashThenResume(delays.map((killAfterMs) => ({ killAfterMs })));
        kills += result.kills;
        await expectSound(result.out, result.created);
      }),
      { seed: 1403, numRuns: 4 },
    );
    // The kills landed while batches were in flight, not after the runs had ended.
    expect(kills).toBeGreaterThanOrEqual(4);
  }, 240_000);
});
