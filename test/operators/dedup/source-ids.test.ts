import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  MemorySink,
  listShardFiles,
  memorySource,
  readManifest,
  run,
  type BuiltGraph,
  type CommitStep,
  type Operator,
  type RejectRow,
  type Sample,
} from "../../../src/index.ts";
import { exactDedup } from "../../../operators/dedup/exact-dedup.ts";
import { nearDedup } from "../../../operators/dedup/near-dedup.ts";
import { readParquetRows } from "../../support/parquet.ts";
import { corpus } from "./fixtures.ts";

// Two sources both numbered 1..10; records 1..5 of "b" repeat the text of records 1..5 of "a".
const docs = corpus(7);
const textsA = Array.from({ length: 10 }, () => docs.document(80));
const textsB = [...textsA.slice(0, 5), ...Array.from({ length: 5 }, () => docs.document(80))];
const records = (texts: string[]) => texts.map((text, i) => ({ id: i + 1, text }));

function graph(operator: () => Operator, sinks?: BuiltGraph["sinks"]): BuiltGraph {
  return {
    name: "two-sources",
    sources: [memorySource("a", records(textsA), { batchSize: 4 }), memorySource("b", records(textsB), { batchSize: 4 })],
    operators: [operator()],
    ...(sinks ? { sinks } : {}),
  };
}

const expectedKept = [...textsA.map((_, i) => `a:${i + 1}`), "b:6", "b:7", "b:8", "b:9", "b:10"];
const expectedRejects = [1, 2, 3, 4, 5].map((n) => [`b:${n}`, `a:${n}`]);

describe.each([
  ["exactDedup", () => exactDedup(), "exact_duplicate"],
  ["nearDedup", () => nearDedup(), "near_duplicate"],
] as const)("%s over two sources numbered alike", (_name, operator, reason) => {
  it(`keeps 15, rejects the 5 repeated texts as ${reason}, and never takes a sample with an equal record id for itself`, async () => {
    const accepted = new MemorySink();
    const rejects = new MemorySink();
    const summary = await run(graph(operator, { accepted: [accepted], rejects }));
    expect(summary).toMatchObject({ accepted: 15, rejected: 5 });
    expect(accepted.rows.map((row) => row.id).sort()).toEqual([...expectedKept].sort());
    expect((rejects.rows as RejectRow[]).map((row) => [row.id, row.reject.reason, row.reject.duplicateOf])).toEqual(
      expectedRejects.map(([id, of]) => [id, reason, of]),
    );
    // The record's own id stays in its data, for exports and users.
    expect(accepted.rows.find((row) => row.id === "b:7")!.data).toEqual({ id: 7, text: textsB[6] });
  });

  describe("killed between saving its index and committing the manifest, then resumed", () => {
    let out: string;
    beforeEach(async () => {
      out = await mkdtemp(join(tmpdir(), "rxsynth-source-ids-"));
    });
    afterEach(async () => {
      await rm(out, { recursive: true, force: true });
    });

    it("keeps each replayed sample once and still rejects the true duplicates", async () => {
      let states = 0;
      const crash = (step: CommitStep) => {
        // The second checkpoint: its index holds samples the manifest in force does not list as finished.
        if (step === "state" && ++states === 2) throw new Error("killed after the state step");
      };
      const options = { out, budget: 2, sinkBatch: 1, checkpointRows: 3 };
      await expect(run(graph(operator), { ...options, fault: crash })).rejects.toThrow(/killed after the state step/);
      const before = (await readManifest(out))!;
      expect(before.complete).toBe(false);

      const summary = await run(graph(operator), options);
      expect(summary.status).toBe("complete");
      const rows = async (prefix: "part" | "rejects") =>
        (await Promise.all((await listShardFiles(out, { prefix })).map(readParquetRows))).flat() as unknown as (Sample & {
          reject?: { reason: string; duplicate_of: string };
        })[];
      const kept = (await rows("part")).map((row) => row.id);
      expect(kept.sort()).toEqual([...expectedKept].sort());
      const rejected = (await rows("rejects")).map((row) => [row.id, row.reject!.reason, row.reject!.duplicate_of]);
      expect(rejected.sort()).toEqual(expectedRejects.map(([id, of]) => [id, reason, of]));
    });
  });
});
