import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  MemorySink,
  buildGraph,
  defineAsyncMap,
  defineFanOut,
  defineFilter,
  defineGraph,
  defineMap,
  drop,
  extendGraph,
  readManifest,
  run,
  type OutputRow,
  type RejectRow,
  type RunSink,
  type Source,
  type SourceItem,
} from "../../src/index.ts";
import { jsonlSource } from "../../src/io/jsonl-source.ts";
import { readParquetRows } from "../support/parquet.ts";

/** A source that counts how far it was read, to prove it is pulled, not drained. */
function countingSource(total: number, batchSize = 64): Source & { read: number } {
  const source = {
    name: "count",
    origin: "human" as const,
    read: 0,
    size: async () => total,
    async *batches({ from }: { from: number }) {
      for (let i = from; i < total; i += batchSize) {
        const batch: SourceItem[] = [];
        for (let j = i; j < Math.min(total, i + batchSize); j++) batch.push({ position: j, data: { n: j, text: `record ${j}` } });
        source.read += batch.length;
        yield batch;
      }
    },
  };
  return source;
}

/** A sink that takes `delayMs` per write and records how many samples were in flight at each write. */
class SlowSink implements RunSink {
  readonly rows: OutputRow[] = [];
  constructor(private readonly delayMs: number) {}
  async write(rows: readonly OutputRow[]) {
    await new Promise((resolve) => setTimeout(resolve, this.delayMs));
    this.rows.push(...rows);
  }
  async commit() {
    return [];
  }
  async abort() {}
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "rxsynth-run-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("backpressure", () => {
  it("never has more samples in flight than the budget, with a fast source and a slow sink", async () => {
    const source = countingSource(5000);
    const sink = new SlowSink(3);
    let peakPulledAhead = 0;
    const watch = defineMap({
      name: "watch",
      map: () => {
        peakPulledAhead = Math.max(peakPulledAhead, source.read - sink.rows.length);
        return {};
      },
    });
    const summary = await run(
      { name: "bp", sources: [source], operators: [watch], sinks: { accepted: [sink], rejects: new MemorySink() } },
      { budget: 100, sinkBatch: 25 },
    );
    expect(summary.accepted).toBe(5000);
    expect(summary.maxInFlight).toBeLessThanOrEqual(100);
    // The source is read at most one batch beyond the budget: pulled, not drained into a buffer.
    expect(peakPulledAhead).toBeLessThanOrEqual(100 + 64);
  });

  it("counts fan-out children against the budget and still finishes", async () => {
    const triple = defineFanOut({ name: "triple", expand: (s) => [{ data: s.data }, { data: s.data }, { data: s.data }] });
    const slow = defineAsyncMap({ name: "slow", concurrency: 4, map: async () => (await new Promise((r) => setTimeout(r, 1)), {}) });
    const accepted = new MemorySink();
    const summary = await run(
      { name: "fan", sources: [countingSource(300)], operators: [triple, slow], sinks: { accepted: [accepted], rejects: new MemorySink() } },
      { budget: 30 },
    );
    expect(accepted.rows).toHaveLength(900);
    expect(new Set(accepted.rows.map((row) => row.id)).size).toBe(900);
    expect(summary.maxInFlight).toBeLessThanOrEqual(30 + 2);
  });
});

describe("run", () => {
  it("sends every sample to the output or the rejects, exactly once", async () => {
    const odd = defineFilter({ name: "even_only", test: (s) => ((s.data.n as number) % 2 === 0 ? true : drop("odd", { value: s.data.n as number })) });
    const accepted = new MemorySink();
    const rejects = new MemorySink();
    const summary = await run({ name: "split", sources: [countingSource(1000)], operators: [odd], sinks: { accepted: [accepted], rejects } });
    expect(summary).toMatchObject({ status: "complete", accepted: 500, rejected: 500 });
    const ids = [...accepted.rows, ...rejects.rows].map((row) => row.id);
    expect(new Set(ids).size).toBe(1000);
    expect((rejects.rows[0] as RejectRow).reject).toMatchObject({ operator: "even_only", reason: "odd" });
  });

  it("stops pulling at --limit and reports it as limited", async () => {
    const accepted = new MemorySink();
    const summary = await run({ name: "limit", sources: [countingSource(1000)], operators: [], sinks: { accepted: [accepted], rejects: new MemorySink() } }, { limit: 120 });
    expect(summary.status).toBe("limited");
    expect(accepted.rows).toHaveLength(120);
  });

  it("stops cleanly on a stop signal: commits what is done and says so", async () => {
    const stop = new AbortController();
    const slow = defineAsyncMap({
      name: "slow",
      concurrency: 2,
      map: async (s) => {
        await new Promise((resolve) => setTimeout(resolve, 2));
        if (s.data.n === 20) stop.abort();
        return {};
      },
    });
    const accepted = new MemorySink();
    const summary = await run(
      { name: "stop", sources: [countingSource(10_000)], operators: [slow], sinks: { accepted: [accepted], rejects: new MemorySink() } },
      { signal: stop.signal, graceMs: 2000, budget: 50 },
    );
    expect(summary.status).toBe("stopped");
    expect(summary.accepted).toBeGreaterThan(0);
    expect(summary.accepted).toBeLessThan(10_000);
    expect(accepted.rows).toHaveLength(summary.accepted);
  });

  it("fails the run when a sink write fails, and keeps nothing half-written", async () => {
    const broken: RunSink = { write: async () => { throw new Error("disk full"); }, commit: async () => [], abort: async () => {} };
    await expect(run({ name: "broken", sources: [countingSource(10)], operators: [], sinks: { accepted: [broken], rejects: new MemorySink() } })).rejects.toThrow("disk full");
  });

  it("sends a malformed JSONL line to rejects naming file and line, and keeps the rest", async () => {
    const file = join(dir, "input.jsonl");
    await writeFile(file, '{"text":"one"}\n{"text": oops}\n{"text":"three"}\n');
    const accepted = new MemorySink();
    const rejects = new MemorySink();
    await run({ name: "bad", sources: [jsonlSource(file)], operators: [], sinks: { accepted: [accepted], rejects } });
    expect(accepted.rows.map((row) => row.data.text)).toEqual(["one", "three"]);
    const reject = (rejects.rows[0] as RejectRow).reject;
    expect(reject).toMatchObject({ reason: "malformed_input", raw: '{"text": oops}' });
    expect(reject.message).toContain(`${file}, line 2`);
  });

  it("fails at once on a malformed line with strict input", async () => {
    const file = join(dir, "input.jsonl");
    await writeFile(file, '{"text":"one"}\nnot json\n');
    await expect(
      run({ name: "strict", sources: [jsonlSource(file)], operators: [], sinks: { accepted: [new MemorySink()], rejects: new MemorySink() } }, { strictInput: true }),
    ).rejects.toThrow(/line 2/);
  });
});

describe("graphs", () => {
  const graph = defineGraph({
    name: "tiny",
    description: "test graph",
    defaults: { count: 50, minN: 10 },
    build: (options) => ({
      sources: [countingSource(options.count)],
      operators: [defineFilter({ name: "min", test: (s) => ((s.data.n as number) >= options.minN ? true : drop("small")) })],
    }),
  });

  it("rejects unknown options with the list of known ones", async () => {
    await expect(buildGraph(graph, { cout: 3 } as never)).rejects.toThrow(/no option "cout".*count, minN/);
  });

  it("writes Parquet shards, rejects and a manifest into the output folder", async () => {
    const built = await buildGraph(graph, { count: 200 });
    const summary = await run(built, { out: dir });
    expect(summary).toMatchObject({ status: "complete", accepted: 190, rejected: 10 });
    const manifest = (await readManifest(dir))!;
    expect(manifest.complete).toBe(true);
    expect(manifest.sources.count).toEqual({ watermark: 200, done: [] });
    expect(manifest.shards.map((shard) => [shard.file, shard.kind, shard.rows])).toEqual([
      ["part-00000.parquet", "accepted", 190],
      ["rejects-00000.parquet", "rejects", 10],
    ]);
    const rows = await readParquetRows(join(dir, "part-00000.parquet"));
    expect(rows).toHaveLength(190);
    expect(rows[0]).toMatchObject({ id: "count:10", provenance: { origin: "human", depth: 0, source: "count" } });
  });

  it("refuses to resume into a folder holding another graph's run", async () => {
    await run(await buildGraph(graph, { count: 20 }), { out: dir });
    const other = defineGraph({ ...graph, name: "other" });
    await expect(run(await buildGraph(other, { count: 20 }), { out: dir })).rejects.toThrow(/holds a run of graph "tiny"/);
  });

  it("refuses to resume with other options, which would mix two datasets", async () => {
    await run(await buildGraph(graph, { count: 20 }), { out: dir });
    await expect(run(await buildGraph(graph, { count: 20, minN: 3 }), { out: dir })).rejects.toThrow(/other options/);
  });
});

describe("customising a ready graph", () => {
  const graph = defineGraph({
    name: "ready",
    description: "test graph",
    defaults: { count: 30 },
    build: (options) => ({
      sources: [countingSource(options.count)],
      operators: [defineMap({ name: "first", map: (s) => ({ data: { ...s.data, trail: "first" } }) }), defineMap({ name: "last", map: (s) => ({ data: { ...s.data, trail: `${s.data.trail as string}>last` } }) })],
    }),
  });

  it("runs a custom operator inserted after a named one, in place", async () => {
    const mine = defineMap({ name: "mine", map: (s) => ({ data: { ...s.data, trail: `${s.data.trail as string}>mine` } }) });
    const built = await buildGraph(graph, {}, undefined, { insert: [{ after: "first", operators: [mine] }] });
    const accepted = new MemorySink();
    await run({ ...built, sinks: { accepted: [accepted], rejects: new MemorySink() } });
    expect(accepted.rows[0]!.data.trail).toBe("first>mine>last");
    expect(accepted.rows[0]!.provenance.steps.map((step) => step.op)).toEqual(["first", "mine", "last"]);
  });

  it("names the operators it has when the anchor does not exist", async () => {
    await expect(buildGraph(graph, {}, undefined, { insert: [{ after: "nope", operators: [] }] })).rejects.toThrow(/no such operator \(it has: first, last\)/);
  });
});

describe("extendGraph", () => {
  it("makes a new graph definition with the custom operator in place", async () => {
    const base = defineGraph({
      name: "base",
      description: "test graph",
      defaults: { count: 5 },
      build: (options) => ({ sources: [countingSource(options.count)], operators: [defineFilter({ name: "keep", test: () => true })] }),
    });
    const extended = extendGraph(base, { insert: [{ after: "start", operators: [defineFilter({ name: "odd_out", test: (s) => ((s.data.n as number) % 2 ? drop("odd") : true) })] }] });
    const accepted = new MemorySink();
    await run({ ...(await buildGraph(extended)), sinks: { accepted: [accepted], rejects: new MemorySink() } });
    expect(accepted.rows.map((row) => row.data.n)).toEqual([0, 2, 4]);
  });
});
