// Claim: whatever the graph, budget, checkpoint interval and crash point, a run killed and resumed (any
// number of times, with --limit runs between) ends with exactly what an uninterrupted run writes, each
// row once, and no run has more in flight than its budget. And the quickstart is deterministic: the same
// seed, run twice into two folders, accepts the same ids.
//
//   npm run bench -- chaos                          (200 sequences)
//   npx tsx benchmarks/chaos.ts --sequences 50 --no-write   (a partial run: prints, leaves results/ alone)
//
// Each sequence: a random graph (test/fixtures/chaos-graphs.ts: source -> filter -> map; an async fan-out
// of width 1-6; llmMap against a simulator answering 10 % 429 and 10 % 500; the Self-Instruct loop on
// the built-in simulator, 10-60 rows in waves of 1-2 rounds), a budget of 2-32 (for the loop, a wave to a
// wave and a round), a checkpoint every 3-50 rows, 1-3 steps (a crash thrown from the `fault` hook after a
// random commit step and occurrence, or a run with a random --limit: source records, or the loop's waves),
// then a full run; compared with the uninterrupted run. The table adds the counts per kind.
// Counts in benchmarks/results/chaos.json:
//   sequences                  sequences run
//   kills                      crashes that happened (a crash step whose commit step was never reached is none)
//   lost                       ids of the uninterrupted run missing after the final run, over all sequences
//   duplicated                 ids present more than once after the final run, over all sequences
//   diverged                   sequences whose final output differs from the uninterrupted run's (ids kept,
//                              ids rejected, or an accepted row's data), or one of whose runs never settled or was refused
//   max_in_flight_over_budget  runs whose peak in flight exceeded the budget
//   deterministic              the quickstart's two accepted id sets are equal
// A run that never settles (neither resolves nor rejects) is abandoned after HANG_MS, counted in the
// printed table as `hung`, and its sequence as diverged; the sequence goes on in the same folder. A run
// that fails otherwise (a resume refused, as a --limit rerun of a finished loop folder was before the
// runner's fix) is counted as `refused`, its sequence as diverged, and goes on too.
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { buildGraph, COMMIT_STEPS, readRows, run, type RunOptions } from "../src/index.ts";
import { startSimulator } from "../src/sim/index.ts";
import { CHAOS_KINDS, chaosGraph, chaosLlm, compareChaos, isClean, crashRange, limitRange, LOOP_WAVE_ROWS, readChaosOutput, type ChaosKind, type ChaosSpec } from "../test/fixtures/chaos-graphs.ts";
import type { ChaosStep } from "../test/fixtures/chaos-sequence.ts";

const SEED = 20261202;
const HANG_MS = 8_000;
const flag = process.argv.indexOf("--sequences");
const SEQUENCES = flag >= 0 ? Number(process.argv[flag + 1]) : 200;
const WRITE_RESULTS = !process.argv.includes("--no-write");

const specArb: fc.Arbitrary<ChaosSpec> = fc.oneof(
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("source" as const), records: fc.integer({ min: 5, max: 60 }), width: fc.constant(1), budget: fc.integer({ min: 2, max: 32 }), shardRows: fc.integer({ min: 4, max: 40 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("fanout" as const), records: fc.integer({ min: 3, max: 20 }), width: fc.integer({ min: 1, max: 6 }), budget: fc.integer({ min: 2, max: 32 }), shardRows: fc.integer({ min: 4, max: 40 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("llm" as const), records: fc.integer({ min: 3, max: 12 }), width: fc.constant(1), budget: fc.integer({ min: 2, max: 32 }), shardRows: fc.integer({ min: 4, max: 40 }) }) },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 1, max: 2 }).chain((rounds) =>
      fc.record({ kind: fc.constant("loop" as const), records: fc.integer({ min: 10, max: 60 }), width: fc.constant(rounds), budget: fc.integer({ min: rounds * LOOP_WAVE_ROWS, max: (rounds + 1) * LOOP_WAVE_ROWS }), shardRows: fc.integer({ min: 4, max: 40 }) }),
    ),
  },
);
const caseArb = specArb.chain((spec) =>
  fc.record({
    spec: fc.constant(spec),
    checkpointRows: fc.integer({ min: 3, max: 50 }),
    steps: fc.array(
      fc.oneof(
        fc.record({ type: fc.constant("crash" as const), step: fc.constantFrom(...COMMIT_STEPS), nth: fc.integer({ min: 1, max: crashRange(spec) }) }),
        fc.record({ type: fc.constant("limit" as const), limit: fc.integer({ min: 1, max: limitRange(spec) }) }),
      ) as fc.Arbitrary<ChaosStep>,
      { minLength: 1, maxLength: 3 },
    ),
  }),
);

type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown } | { ok: "hung" };
async function settle<T>(promise: Promise<T>): Promise<Settled<T>> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<{ ok: "hung" }>((resolve) => (timer = setTimeout(() => resolve({ ok: "hung" }), HANG_MS)));
  const result = await Promise.race([promise.then((value) => ({ ok: true as const, value }), (error: unknown) => ({ ok: false as const, error })), hang]);
  clearTimeout(timer);
  return result;
}

const round = (value: number, digits = 2) => Math.round(value * 10 ** digits) / 10 ** digits;

async function main() {
  // The loop kind's graph asks the built-in simulator (deterministic by prompt and seed), never a real endpoint.
  process.env.OPENAI_BASE_URL = "";
  const dir = await mkdtemp(join(tmpdir(), "rxsynth-chaos-bench-"));
  const sim = await startSimulator({ latencyMs: 1, seed: 7, faults: { "429": 0.1, "500": 0.1 }, faultRetryAfterMs: 1 });
  const llm = chaosLlm(sim.url);
  const cases = fc.sample(caseArb, { seed: SEED, numRuns: SEQUENCES });
  const totals = { sequences: 0, kills: 0, lost: 0, duplicated: 0, diverged: 0, max_in_flight_over_budget: 0 };
  const byKind = Object.fromEntries(CHAOS_KINDS.map((kind) => [kind, { ...totals }])) as Record<ChaosKind, typeof totals>;
  let hung = 0;
  let refused = 0;
  const examples: string[] = [];
  const started = performance.now();
  for (const [index, c] of cases.entries()) {
    const at = join(dir, `s${index}`);
    const { spec, checkpointRows } = c;
    const base: RunOptions = { budget: spec.budget, checkpointRows };
    const kind = byKind[spec.kind];
    const before = { ...totals };
    const reference = await run(await chaosGraph(spec, { out: join(at, "reference"), llm }), { ...base, out: join(at, "reference") });
    if (reference.maxInFlight > spec.budget) totals.max_in_flight_over_budget++;
    const out = join(at, "chaos");
    let sequenceHung = false;
    let sequenceRefused = false;
    for (const step of [...c.steps, { type: "full" } as const]) {
      let peak = 0;
      let seen = 0;
      const options: RunOptions =
        step.type === "crash"
          ? {
              ...base,
              out,
              progressEveryMs: 5,
              onProgress: (p) => (peak = Math.max(peak, p.inFlight)),
              fault: (done) => {
                if (done === step.step && ++seen === step.nth) throw new Error("chaos crash");
              },
            }
          : step.type === "limit"
            ? { ...base, out, limit: step.limit }
            : { ...base, out };
      const result = await settle(run(await chaosGraph(spec, { out, llm }), options));
      if (result.ok === "hung") {
        hung++;
        sequenceHung = true;
        if (step.type === "crash" && seen >= step.nth) totals.kills++;
        if (examples.length < 5) examples.push(`hung: ${JSON.stringify({ ...c, at: step })}`);
      } else if (result.ok) {
        peak = Math.max(peak, result.value.maxInFlight);
      } else if (String(result.error).includes("chaos crash")) {
        totals.kills++;
      } else {
        refused++;
        sequenceRefused = true;
        if (examples.length < 5) examples.push(`refused: ${JSON.stringify({ ...c, at: step })}: ${String(result.error).slice(0, 200)}`);
      }
      if (peak > spec.budget) totals.max_in_flight_over_budget++;
    }
    const findings = compareChaos(await readChaosOutput(join(at, "reference")), await readChaosOutput(out), true);
    totals.sequences++;
    totals.lost += findings.lost.length;
    totals.duplicated += findings.duplicated.length;
    if (!isClean(findings) || sequenceHung || sequenceRefused) {
      totals.diverged++;
      if (!sequenceHung && !sequenceRefused && examples.length < 5) examples.push(`${JSON.stringify(c)} -> ${JSON.stringify({ lost: findings.lost.length, duplicated: findings.duplicated.length, diverged: findings.diverged.length, manifestMismatch: findings.manifestMismatch })}`);
    }
    for (const key of Object.keys(totals) as (keyof typeof totals)[]) kind[key] += totals[key] - before[key];
    await rm(at, { recursive: true, force: true });
    if ((index + 1) % 25 === 0) console.log(`${index + 1}/${cases.length} sequences, ${round((performance.now() - started) / 1000, 1)} s`);
  }
  const chaosSeconds = (performance.now() - started) / 1000;
  await llm.close();
  await sim.close();

  // The quickstart twice, same seed, two folders, no response cache (so the second run asks again).
  process.env.RXSYNTH_CACHE_DIR = "off";
  delete process.env.OPENAI_BASE_URL;
  const quickstart = (await import("../graphs/quickstart.ts")).default;
  const ids: string[][] = [];
  for (const name of ["quickstart-a", "quickstart-b"]) {
    const out = join(dir, name);
    await mkdir(out, { recursive: true });
    const graph = await buildGraph(quickstart, { seed: 42 }, { log: () => {}, out });
    await run(graph, { out });
    ids.push((await readRows(out, { prefix: "part" })).map((row) => row.id as string).sort());
  }
  const deterministic = ids[0]!.length === ids[1]!.length && ids[0]!.every((id, i) => id === ids[1]![i]);
  const shared = ids[0]!.filter((id) => new Set(ids[1]).has(id)).length;
  await rm(dir, { recursive: true, force: true });

  const result = { ...totals, deterministic };
  console.table({ chaos: { ...totals, hung, refused, seconds: round(chaosSeconds, 1) } });
  console.table(byKind);
  console.table({ quickstart: { accepted_a: ids[0]!.length, accepted_b: ids[1]!.length, ids_in_both: shared, deterministic } });
  for (const example of examples) console.log(`counterexample: ${example}`);
  console.log(`load average ${loadavg().map((n) => round(n)).join(" ")} on ${cpus().length} cpus`);
  if (!WRITE_RESULTS) {
    console.log("--no-write: benchmarks/results/chaos.json left as it was");
    return;
  }
  const results = fileURLToPath(new URL("./results/", import.meta.url));
  await mkdir(results, { recursive: true });
  await writeFile(`${results}chaos.json`, `${JSON.stringify(result, null, 2)}\n`);
  console.log("wrote benchmarks/results/chaos.json");
}

await main();
