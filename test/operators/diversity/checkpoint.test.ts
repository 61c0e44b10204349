// The ROUGE pool and the diversity tracker across a resume: a run stopped part-way (by a limit, or by a
// crash at a checkpoint) and resumed must end with the files of one uninterrupted run, and rerunning a
// finished run must leave its folder as it was.
import { createHash } from "node:crypto";
import { cpSync, existsSync, readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";
import { defineAsyncMap, defineGraph, readManifest } from "../../../src/index.ts";
import type { CommitStep, FaultHook } from "../../../src/run/commit.ts";
import { memorySource } from "../../../src/io/memory-source.ts";
import { diversityTracker } from "../../../operators/diversity/diversity-tracker.ts";
import { rougeFilter } from "../../../operators/diversity/rouge-filter.ts";
import { seededRandom } from "../../../operators/diversity/sketches.ts";
import { useGraphRuns, type GraphRun } from "../../support/graph-run.ts";

const { runGraph, tempDir } = useGraphRuns();

const RECORDS = 150;
const random = seededRandom(7);
const vocabulary = Array.from({ length: 300 }, (_, i) => `w${i.toString(36)}`);
const verbs = ["write", "explain", "list", "describe", "summarize", "compare"];
const pick = <T>(items: readonly T[]) => items[Math.floor(random() * items.length)]!;
const records: { instruction: string }[] = [];
for (let n = 0; n < RECORDS; n++) {
  // Every fourth one rewords an earlier one by one word: ROUGE-L 0.9, so the pool's answer depends on what it holds.
  const earlier = n % 4 === 3 ? records[Math.floor(random() * n)]!.instruction.split(" ") : undefined;
  const words = earlier ?? [pick(verbs), ...Array.from({ length: 9 }, () => pick(vocabulary))];
  if (earlier) words[1 + Math.floor(random() * 9)] = pick(vocabulary);
  records.push({ instruction: words.join(" ") });
}

const graph = defineGraph({
  name: "diversity-resume",
  description: "ROUGE pool and diversity tracker across a resume",
  defaults: { records: RECORDS },
  build: (options) => ({
    sources: [memorySource("tasks", records.slice(0, options.records), { batchSize: 16 })],
    operators: [
      rougeFilter({ field: "instruction" }),
      diversityTracker({ fields: "instruction", snapshotEvery: 7 }),
      // Holds samples past the tracker, so some are counted but not yet committed at each checkpoint.
      defineAsyncMap({
        name: "hold",
        concurrency: 6,
        map: async (s) => {
          await new Promise((resolve) => setTimeout(resolve, 1 + (s.id.length % 3)));
          return { scores: { held: 1 } };
        },
      }),
    ],
    budget: 16,
  }),
});

/** A fault hook that copies the run folder into `into` once `step` of the nth commit is done: what a kill -9 there leaves. */
function crashAfter(step: CommitStep, commit: number, out: () => string, into: string): FaultHook {
  let seen = 0;
  return (done) => {
    if (done === step && ++seen === commit) cpSync(out(), into, { recursive: true });
  };
}

const RUN = { checkpointRows: 10 } as const;
const STATE_FILES = ["state/rouge_filter.bin", "state/diversity_tracker.bin", "diversity.jsonl", "diversity-summary.json"];

/** Every file under `dir` (relative path -> sha256), so two moments can be compared. */
function hashFiles(dir: string): Record<string, string> {
  const hashes: Record<string, string> = {};
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    hashes[relative(dir, path)] = createHash("sha256").update(readFileSync(path)).digest("hex");
  }
  return hashes;
}

const read = (out: string, file: string) => readFileSync(join(out, file));
const ids = (run: GraphRun) => ({
  accepted: run.rows.map((row) => row.id).sort(),
  rejected: run.rejects.map((row) => `${row.id} ${row.reject!.reason}`).sort(),
});

interface Outcome {
  readonly ids: ReturnType<typeof ids>;
  readonly files: Readonly<Record<string, Buffer>>;
}
const outcome = (run: GraphRun): Outcome => ({ ids: ids(run), files: Object.fromEntries(STATE_FILES.map((file) => [file, read(run.out, file)])) });

let uninterrupted: Promise<Outcome> | undefined;
/** One uninterrupted run, shared: the outcome every interrupted run must end with. */
const reference = () => (uninterrupted ??= runGraph(graph, {}, { run: RUN }).then(outcome));

function expectSameOutcome(run: GraphRun, expected: Outcome) {
  const actual = outcome(run);
  expect(actual.ids).toEqual(expected.ids);
  for (const file of STATE_FILES) expect(actual.files[file]!.toString(), file).toBe(expected.files[file]!.toString());
}

describe("rougeFilter and diversityTracker across a resume", () => {
  it("end a run stopped by a limit and resumed with the pool, snapshots and summary of one uninterrupted run", async () => {
    const ref = await reference();
    const first = await runGraph(graph, {}, { run: { ...RUN, limit: 60 } });
    expect(first.summary.status).toBe("limited");
    const firstSummary = JSON.parse(read(first.out, "diversity-summary.json").toString()) as { samples: number };
    expect(firstSummary.samples).toBe(first.rows.length);
    // The session's closing snapshot (45 samples, snapshots every 7) is no part of an uninterrupted run's file: the resume cuts it.
    const saved = JSON.parse(read(first.out, "state/diversity_tracker.bin").toString()) as { snapshotBytes: number };
    expect(read(first.out, "diversity.jsonl").length).toBeGreaterThan(saved.snapshotBytes);

    const second = await runGraph(graph, {}, { out: first.out, run: RUN });
    expect(second.summary).toMatchObject({ status: "complete", resumed: true });
    expectSameOutcome(second, ref);
    const summary = JSON.parse(read(second.out, "diversity-summary.json").toString()) as { samples: number };
    expect(summary.samples).toBe(ref.ids.accepted.length);
  });

  for (const commit of [2, 5]) {
    // After "shards": new shards in place, state and manifest of the commit before. After "state": the
    // operators saved this commit, the manifest is the one before. After "manifest": all committed.
    for (const step of ["shards", "state", "manifest"] as const) {
      it(`end a run killed after step "${step}" of commit ${commit} and resumed as one uninterrupted run ends`, async () => {
        const ref = await reference();
        const out = await tempDir("diversity-run");
        const into = await tempDir("diversity-crash");
        const crashed = await runGraph(graph, {}, { out, run: { ...RUN, fault: crashAfter(step, commit, () => out, into) } });
        expect(crashed.summary.status).toBe("complete");
        const manifest = (await readManifest(into))!;
        expect(manifest.complete).toBe(false);
        if (step === "state") {
          // The rows committed by this commit are removed and replayed: they meet themselves in the pool and
          // among the tracker's counted ids.
          const saved = JSON.parse(read(into, "state/diversity_tracker.bin").toString()) as { samples: number };
          const committed = manifest.shards.filter((shard) => shard.kind === "accepted").reduce((sum, shard) => sum + shard.rows, 0);
          expect(saved.samples).toBeGreaterThan(committed);
        }

        const resumed = await runGraph(graph, {}, { out: into, run: RUN });
        expect(resumed.summary).toMatchObject({ status: "complete", resumed: true });
        expectSameOutcome(resumed, ref);
      });
    }
  }

  it("leave every file of a finished run as it was when it is run again", async () => {
    const done = await runGraph(graph, {}, { run: RUN });
    for (const file of STATE_FILES) expect(existsSync(join(done.out, file)), file).toBe(true);
    const before = hashFiles(done.out);
    const again = await runGraph(graph, {}, { out: done.out, run: RUN });
    expect(again.summary).toMatchObject({ status: "complete", resumed: true, accepted: 0, rejected: 0 });
    expect(hashFiles(done.out)).toEqual(before);
  });
});
