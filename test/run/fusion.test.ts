import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { map } from "rxjs";
import { afterEach, describe, expect, it } from "vitest";
import {
  MemorySink,
  defineAsyncMap,
  defineFilter,
  defineMap,
  defineTap,
  drop,
  readManifest,
  run,
  type Operator,
  type OutputRow,
  type RejectRow,
  type Sample,
  type Source,
  type SourceItem,
} from "../../src/index.ts";
import { fuseOperators } from "../../src/run/fusion.ts";

function numbers(total: number): Source {
  return {
    name: "numbers",
    origin: "human",
    size: async () => total,
    async *batches({ from }) {
      for (let i = from; i < total; i += 16) {
        const batch: SourceItem[] = [];
        for (let j = i; j < Math.min(total, i + 16); j++) batch.push({ position: j, id: `n${j}`, data: { n: j, text: `number ${j}` } });
        yield batch;
      }
    },
  };
}

/**
 * Runs of synchronous stages (fused) between an async stage and a raw RxJS operator (never fused), with
 * state, checkpoint and completion hooks, keeps, scores, rejects with reasons, and errors turned into rejects.
 */
function graphOperators(events: string[], options: { readonly readsMissing?: boolean; readonly throwAt?: number } = {}): Operator[] {
  const operators: Operator[] = [
    defineMap({
      name: "double",
      params: { factor: 2 },
      state: () => ({ seen: 0 }),
      map: (sample, state) => {
        state.seen++;
        return { data: { ...sample.data, n: (sample.data.n as number) * 2 } };
      },
      checkpoint: (state) => void events.push(`checkpoint double ${state.seen}`),
      complete: (state) => void events.push(`complete double ${state.seen}`),
    }),
    defineFilter({
      name: "not_tenth",
      test: (sample) => ((sample.data.n as number) % 10 === 0 ? drop("tenth", { value: sample.data.n as number, threshold: 10 }) : { keep: true, scores: { kept: 1 } }),
      complete: async () => {
        await new Promise((resolve) => setTimeout(resolve, 5));
        events.push("complete not_tenth");
      },
    }),
    defineTap({ name: "watch", observe: (sample) => void (sample.data.n === 4 && events.push("watched 4")), checkpoint: () => void events.push("checkpoint watch") }),
    defineMap({
      name: "fragile",
      reads: options.readsMissing ? ["missing"] : ["text"],
      map: (sample) => {
        const n = sample.data.n as number;
        if (n === options.throwAt) throw new Error(`fragile broke on ${n}`);
        if (n % 7 === 0) throw new Error(`no sevens (${n})`);
        if (n % 6 === 0) return drop("sixth", { message: "divisible by six" });
        return { step: { note: `n=${n}` } };
      },
    }),
    defineAsyncMap({ name: "score", concurrency: 3, map: async (sample) => ({ scores: { score: (sample.data.n as number) % 5 } }) }),
    // A user's own RxJS operator, given the name a graph needs.
    Object.assign(
      map((sample: Sample) => sample),
      { meta: { name: "passthrough", version: "1", paramsHash: "none" } },
    ),
    defineMap({ name: "tag", map: () => ({ provenance: { source: "tagged" } }), complete: () => void events.push("complete tag") }),
    defineFilter({ name: "small", test: (sample) => (sample.data.n as number) < 150 || { keep: false, reason: "large" } }),
  ];
  return operators;
}

/** What a run must produce alike whether or not its stages are fused; step times are the run's clock, not its result. */
function comparable(rows: readonly OutputRow[]) {
  return rows.map((row) => ({
    id: row.id,
    data: row.data,
    scores: row.scores,
    provenance: { ...row.provenance, steps: row.provenance.steps.map(({ at: _at, ...step }) => step) },
  }));
}

function comparableRejects(rows: readonly RejectRow[]) {
  return rows.map(({ reject: { at: _at, ...reject }, ...row }) => ({ ...comparable([row as OutputRow])[0], reject }));
}

async function runOnce(fused: boolean, options: { readonly failFast?: boolean; readonly readsMissing?: boolean; readonly throwAt?: number } = {}) {
  const out = await mkdtemp(join(tmpdir(), "rxsynth-fusion-"));
  folders.push(out);
  const events: string[] = [];
  const accepted = new MemorySink();
  const rejects = new MemorySink();
  const operators = graphOperators(events, options);
  if (fused) expect(fuseOperators(operators).length).toBeLessThan(operators.length);
  const previous = process.env.RXSYNTH_FUSE;
  process.env.RXSYNTH_FUSE = fused ? "1" : "0";
  try {
    const summary = await run(
      { name: "fusion", sources: [numbers(120)], operators, sinks: { accepted: [accepted], rejects } },
      { out, budget: 8, checkpointRows: 20, failFast: options.failFast },
    ).then(
      (result) => ({ ...result, out: undefined, shards: undefined, metrics: { ...result.metrics, elapsedMs: 0 } }),
      (error: unknown) => ({ error: String(error) }),
    );
    const manifest = await readManifest(out).catch(() => undefined);
    return {
      summary,
      accepted: comparable(accepted.rows),
      rejects: comparableRejects(rejects.rows as RejectRow[]),
      // Each kind in its order; how completions interleave with a checkpoint the I/O chain runs meanwhile is timing.
      events: { completes: events.filter((event) => !event.startsWith("checkpoint")), checkpoints: events.filter((event) => event.startsWith("checkpoint")) },
      manifestOperators: manifest && Object.entries(manifest.operators),
      manifestSources: manifest?.sources,
    };
  } finally {
    if (previous === undefined) delete process.env.RXSYNTH_FUSE;
    else process.env.RXSYNTH_FUSE = previous;
  }
}

const folders: string[] = [];
afterEach(async () => {
  await Promise.all(folders.splice(0).map((folder) => rm(folder, { recursive: true, force: true })));
});

describe("fused synchronous stages", () => {
  it("give the same rows, rejects, metrics, hooks and manifest as the same stages piped one by one", async () => {
    const piped = await runOnce(false);
    const fused = await runOnce(true);
    expect(piped.accepted.length).toBeGreaterThan(0);
    expect(piped.rejects.map((row) => row.reject.operator)).toEqual(expect.arrayContaining(["not_tenth", "fragile", "small"]));
    expect(piped.events.checkpoints).toContain("checkpoint watch");
    expect(piped.events.completes).toEqual(expect.arrayContaining(["complete double 120", "complete not_tenth", "complete tag"]));
    expect(fused).toEqual(piped);
  });

  it("fail the run alike on an error under failFast", async () => {
    const piped = await runOnce(false, { failFast: true, throwAt: 38 });
    const fused = await runOnce(true, { failFast: true, throwAt: 38 });
    expect(piped.summary).toEqual({ error: expect.stringContaining("no sevens") });
    expect(fused).toEqual(piped);
  });

  it("fail the run alike when a stage in the middle of a run reads a field the samples lack", async () => {
    const piped = await runOnce(false, { readsMissing: true });
    const fused = await runOnce(true, { readsMissing: true });
    expect(piped.summary).toEqual({ error: expect.stringContaining('operator "fragile" reads field "missing"') });
    expect(fused).toEqual(piped);
  });

  it("leave operators that are not synchronous stages in their place, one by one", () => {
    const operators = graphOperators([]);
    const fused = fuseOperators(operators);
    // double+not_tenth+watch+fragile | score | raw map | tag+small
    expect(fused).toHaveLength(4);
    expect(fused[1]).toBe(operators[4]);
    expect(fused[2]).toBe(operators[5]);
    expect(fuseOperators([operators[4]!, operators[0]!, operators[4]!])).toEqual([operators[4], operators[0], operators[4]]);
  });
});
