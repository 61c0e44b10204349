import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Subject } from "rxjs";
import { afterAll, describe, expect, it } from "vitest";
import { collect, ConfigError, memoryRunContext, withRunContext, type Sample } from "../../../src/index.ts";
import { INDEX_BYTES_TOTAL, INDEXED_TOTAL, nearDedup } from "../../../operators/dedup/near-dedup.ts";
import { corpus, sample } from "./fixtures.ts";

const dirs: string[] = [];
afterAll(() => dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), "rxsynth-near-"));
  dirs.push(dir);
  return dir;
};

const gen = corpus(21);
const originals = Array.from({ length: 40 }, () => gen.document(200));

describe("nearDedup", () => {
  it("rejects near-duplicates of kept samples with the kept id and the estimated Jaccard, and keeps the rest", async () => {
    const samples = [
      ...originals.map((text, i) => sample(`o${i}`, { text })),
      ...originals.slice(0, 10).map((text, i) => sample(`near${i}`, { text: gen.edit(text, 0.005) })),
      ...originals.slice(10, 20).map((text, i) => sample(`far${i}`, { text: gen.edit(text, 0.3) })),
    ];
    const { out, rejects, metrics } = await collect(nearDedup({ threshold: 0.8 }), samples);
    expect(out.map((s) => s.id)).toEqual([...originals.map((_, i) => `o${i}`), ...Array.from({ length: 10 }, (_, i) => `far${i}`)]);
    expect(rejects).toHaveLength(10);
    rejects.forEach((r, i) => {
      expect(r).toMatchObject({ reason: "near_duplicate", duplicateOf: `o${i}`, threshold: 0.8, operator: "near_dedup" });
      expect(r.value).toBeGreaterThanOrEqual(0.8);
      expect(r.value).toBeLessThanOrEqual(1);
    });
    expect(metrics.total(INDEXED_TOTAL)).toBe(50);
    expect(metrics.total(INDEX_BYTES_TOTAL)).toBeGreaterThan(0);
  });

  it("reads several fields as one text and keeps empty texts without matching them to each other", async () => {
    const { out } = await collect(nearDedup({ fields: ["instruction", "output"] }), [
      sample("a", { instruction: originals[0], output: "yes" }),
      sample("b", { instruction: originals[0], output: "yes" }),
      sample("e1", { instruction: "", output: null }),
      sample("e2", {}),
    ]);
    expect(out.map((s) => s.id)).toEqual(["a", "e1", "e2"]);
  });

  describe("with groups", () => {
    // Three instances of one long classification task: as texts they are near-duplicates of each other.
    const instruction = originals[5]!.split(" ").slice(0, 45).join(" ");
    const instances = [
      ["The food was great.", "positive"],
      ["Cold soup, rude waiter.", "negative"],
      ["Nice view, bland pasta.", "mixed"],
    ];
    const taskRows = (task: string, prefix: string) =>
      instances.map(([input, output], i) => sample(`${prefix}${i}`, { instruction, input, output, task }));
    const options = { fields: ["instruction", "input", "output"], threshold: 0.8 } as const;
    const byTask = (s: Sample) => String(s.data.task);

    it("never compares members of one group, and still rejects their near-duplicates in another group", async () => {
      // Check the premise: without groups the siblings are near-duplicates.
      expect((await collect(nearDedup(options), taskRows("t1", "a"))).out).toHaveLength(1);
      const { out, rejects } = await collect(nearDedup({ ...options, group: byTask }), [...taskRows("t1", "a"), ...taskRows("t2", "b")]);
      expect(out.map((s) => s.id)).toEqual(["a0", "a1", "a2"]);
      // Each of t2's rows matches the t1 row it copies, named by its plain id.
      expect(rejects.map((r) => [r.sample.id, r.reason, r.duplicateOf])).toEqual([
        ["b0", "near_duplicate", "a0"],
        ["b1", "near_duplicate", "a1"],
        ["b2", "near_duplicate", "a2"],
      ]);
    });

    it("keeps group and plain ids apart whatever characters they hold, and resumes a grouped index", async () => {
      const runDir = tempDir();
      const odd = (s: Sample) => `${byTask(s)}:9:x é`;
      await collect(nearDedup({ ...options, group: odd }), taskRows("t:1", "1:"), { runDir });
      // Resumed: the replayed siblings find themselves, another task's copy of one is rejected by its plain id.
      const { out, rejects } = await collect(nearDedup({ ...options, group: odd }), [...taskRows("t:1", "1:"), sample("other", { ...taskRows("t:2", "z")[1]!.data })], { runDir });
      expect(out.map((s) => s.id)).toEqual(["1:0", "1:1", "1:2"]);
      expect(rejects.map((r) => [r.sample.id, r.duplicateOf])).toEqual([["other", "1:1"]]);
    });
  });

  it("refuses a threshold outside (0, 1) and impossible bands", () => {
    expect(() => nearDedup({ threshold: 1.2 })).toThrow(ConfigError);
    expect(() => nearDedup({ bands: 30, rows: 5 })).toThrow(ConfigError);
  });

  it("writes its index at a checkpoint and, resumed, rejects duplicates of samples kept before it while keeping in-flight samples that find themselves", async () => {
    const runDir = tempDir();
    // First run: four samples go through, then a checkpoint, then the process "dies" mid-run.
    const first = memoryRunContext({ runDir });
    const input = new Subject<Sample>();
    const seen: string[] = [];
    withRunContext(first, () => input.pipe(nearDedup()).subscribe((s) => seen.push(s.id)));
    originals.slice(0, 4).forEach((text, i) => input.next(sample(`o${i}`, { text })));
    for (const hook of first.checkpointHooks) await hook();
    expect(seen).toEqual(["o0", "o1", "o2", "o3"]);
    expect(readdirSync(join(runDir, "state"))).toEqual(["near_dedup.bin"]);

    // Resumed run: o2 and o3 were in flight (not yet committed), so they come again and must be kept.
    const { out, rejects } = await collect(
      nearDedup(),
      [
        sample("o2", { text: originals[2] }),
        sample("o3", { text: originals[3] }),
        sample("dup0", { text: gen.edit(originals[0]!, 0.005) }),
        sample("dup3", { text: originals[3] }),
        sample("o4", { text: originals[4] }),
      ],
      { runDir },
    );
    expect(out.map((s) => s.id)).toEqual(["o2", "o3", "o4"]);
    expect(rejects.map((r) => [r.sample.id, r.duplicateOf])).toEqual([
      ["dup0", "o0"],
      ["dup3", "o3"],
    ]);
    expect(existsSync(join(runDir, "state", "near_dedup.bin"))).toBe(true);
    expect(readdirSync(join(runDir, "state")).filter((f) => f.endsWith(".tmp"))).toEqual([]);
  });

  it("rejects a second sample with an equal id: a document this run added is never the sample itself", async () => {
    const { out, rejects } = await collect(nearDedup(), [sample("a:1", { text: originals[0] }), sample("a:1", { text: originals[0] })]);
    expect(out).toHaveLength(1);
    expect(rejects.map((r) => [r.sample.id, r.reason, r.duplicateOf])).toEqual([["a:1", "near_duplicate", "a:1"]]);
  });

  it("takes a checkpointed document for the replayed sample only with the same signature, and only once", async () => {
    const runDir = tempDir();
    await collect(nearDedup(), [sample("a:1", { text: originals[0] })], { runDir });
    const { out, rejects } = await collect(
      nearDedup(),
      [
        sample("a:1", { text: gen.edit(originals[0]!, 0.01) }),
        sample("a:1", { text: originals[0] }),
        sample("a:1", { text: originals[0] }),
      ],
      { runDir },
    );
    expect(out).toHaveLength(1);
    expect(out[0]!.data.text).toBe(originals[0]);
    expect(rejects.map((r) => [r.sample.id, r.reason, r.duplicateOf])).toEqual([
      ["a:1", "near_duplicate", "a:1"],
      ["a:1", "near_duplicate", "a:1"],
    ]);
  });

  it("refuses a saved index built with other band settings", async () => {
    const runDir = tempDir();
    await collect(nearDedup({ threshold: 0.8 }), [sample("a", { text: originals[0] })], { runDir });
    await expect(collect(nearDedup({ threshold: 0.5 }), [sample("b", { text: originals[1] })], { runDir, failFast: true })).rejects.toThrow(ConfigError);
  });

  it("keeps nothing on disk without a run folder or with checkpoint off", async () => {
    const runDir = tempDir();
    await collect(nearDedup({ checkpoint: false }), [sample("a", { text: originals[0] })], { runDir });
    expect(existsSync(join(runDir, "state"))).toBe(false);
  });
});
