import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TIMELINE_FILE, nextSession, type TimelinePoint } from "../../src/run/timeline.ts";
import { rxsynth } from "../cli/run-cli.ts";

const readTimeline = async (out: string): Promise<TimelinePoint[]> =>
  (await readFile(join(out, TIMELINE_FILE), "utf8"))
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line) as TimelinePoint);

const committedRows = async (out: string) => {
  const manifest = JSON.parse(await readFile(join(out, "manifest.json"), "utf8")) as { shards: Array<{ kind: string; rows: number }> };
  const rows = (kind: string) => manifest.shards.filter((shard) => shard.kind === kind).reduce((sum, shard) => sum + shard.rows, 0);
  return { accepted: rows("accepted"), rejected: rows("rejects") };
};

describe("timeline.jsonl", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "rxsynth-timeline-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("continues a resumed run's history: sessions counted on, counts carried over, the last point equal to the manifest", async () => {
    const out = join(dir, "resumed");
    expect((await rxsynth(["run", "template-records", "--set", "count=3000", "--limit", "1200", "--out", out, "-q"])).code).toBe(0);
    const first = await readTimeline(out);
    expect(first.length).toBeGreaterThanOrEqual(2);
    expect(new Set(first.map((point) => point.session))).toEqual(new Set([0]));
    expect(first.at(-1)!.accepted).toBe((await committedRows(out)).accepted);

    expect((await rxsynth(["run", "template-records", "--set", "count=3000", "--out", out, "-q"])).code).toBe(0);
    const both = await readTimeline(out);
    const second = both.slice(first.length);
    expect(second.every((point) => point.session === 1)).toBe(true);
    // The second session starts where the first ended, and every count only grows over the folder's life.
    expect(second[0]!.accepted).toBe(first.at(-1)!.accepted);
    expect(second[0]!.pulled).toBe(1200);
    for (let i = 1; i < both.length; i++) {
      expect(both[i]!.at).toBeGreaterThanOrEqual(both[i - 1]!.at);
      expect(both[i]!.accepted).toBeGreaterThanOrEqual(both[i - 1]!.accepted);
      for (const [name, counts] of Object.entries(both[i - 1]!.operators)) expect(both[i]!.operators[name]!.in).toBeGreaterThanOrEqual(counts.in);
    }
    const final = both.at(-1)!;
    expect(final.accepted + final.rejected).toBe(3000);
    expect({ accepted: final.accepted, rejected: final.rejected }).toEqual(await committedRows(out));
    expect(await nextSession(out)).toBe(2);

    // A rerun of the finished folder does nothing, and changes no file: the timeline included.
    const before = await stat(join(out, TIMELINE_FILE));
    expect((await rxsynth(["run", "template-records", "--set", "count=3000", "--out", out, "-q"])).code).toBe(0);
    expect((await stat(join(out, TIMELINE_FILE))).mtimeMs).toBe(before.mtimeMs);
  });

  it("ends each session with the per-operator counts the manifest holds, added up over sessions", async () => {
    const out = join(dir, "operators");
    expect((await rxsynth(["run", "curate", "--limit", "30", "--out", out, "-q"])).code).toBe(0);
    expect((await rxsynth(["run", "curate", "--out", out, "-q"])).code).toBe(0);
    const manifest = JSON.parse(await readFile(join(out, "manifest.json"), "utf8")) as { operatorCounts: Record<string, { in: number; out: number; rejected: number }> };
    const points = await readTimeline(out);
    expect(points.at(-1)!.operators).toEqual(manifest.operatorCounts);
    expect(Object.keys(manifest.operatorCounts).length).toBeGreaterThan(3);
    expect(points.filter((point) => point.session === 1)[0]!.operators).toEqual(points.filter((point) => point.session === 0).at(-1)!.operators);
  });

  it("reads the next session from a timeline whose last line a crash cut short", async () => {
    const out = join(dir, "cut");
    expect((await rxsynth(["run", "template-records", "--set", "count=50", "--out", out, "-q"])).code).toBe(0);
    const { appendFile } = await import("node:fs/promises");
    await appendFile(join(out, TIMELINE_FILE), '{"at":1,"session":7,"elap');
    expect(await nextSession(out)).toBe(1);
  });
});
