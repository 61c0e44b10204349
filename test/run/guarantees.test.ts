import { createHash } from "node:crypto";
import { spawn } from "node:child_process";
import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  COMMIT_STEPS,
  defineAsyncMap,
  defineFanOut,
  defineFilter,
  defineMap,
  drop,
  jsonlFormat,
  readManifest,
  readRows,
  run,
  type BuiltGraph,
  type CommitStep,
  type RunOptions,
  type SinkFormat,
  type Source,
  type SourceItem,
} from "../../src/index.ts";
import { MemorySink } from "../../src/io/memory-sink.ts";
import { memorySource } from "../../src/io/memory-source.ts";
import { createLlm } from "../../src/llm/index.ts";
import { startSimulator } from "../../src/sim/index.ts";
import { llmMap } from "../../operators/generate/llm-map.ts";

// The runner's promises, each tried where it is weakest: async fan-outs against the budget, a source too
// slow to fill a batch, a crash between every two commit steps, a sink that fails mid-batch, values no
// sink can encode, partly committed roots across a --limit run, a resume against another endpoint.

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "rxsynth-guarantees-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** n records in, a fan-out of `width` whose children finish at different times, a filter: roots end up partly committed. */
function fanOutGraph(options: { records: number; width: number; budget: number; async?: boolean; jsonl?: boolean }): BuiltGraph {
  return {
    name: "fan-out",
    options: { records: options.records, width: options.width },
    sources: [memorySource("numbers", Array.from({ length: options.records }, (_, n) => ({ n })), { batchSize: 16 })],
    operators: [
      defineFanOut({
        name: "spread",
        concurrency: 4,
        expand: options.async
          ? async (sample) => {
              await sleep(1);
              return Array.from({ length: options.width }, (_, k) => ({ data: { ...sample.data, k } }));
            }
          : (sample) => Array.from({ length: options.width }, (_, k) => ({ data: { ...sample.data, k } })),
      }),
      defineAsyncMap({
        name: "slow",
        concurrency: 8,
        map: async (sample) => {
          await sleep(((sample.data.k as number) * 3 + (sample.data.n as number)) % 7);
          return { scores: { slow: 1 } };
        },
      }),
      defineFilter({ name: "odd_k", test: (sample) => ((sample.data.k as number) % 3 === 2 ? drop("third") : true) }),
    ],
    budget: options.budget,
    output: options.jsonl ? { formats: [jsonlFormat()], shardRows: 25 } : { shardRows: 25 },
  };
}

async function outputIds(out: string): Promise<{ accepted: string[]; rejected: string[] }> {
  const accepted = (await readRows(out, { prefix: "part" })).map((row) => row.id as string);
  const rejected = (await readRows(out, { prefix: "rejects" })).map((row) => row.id as string);
  return { accepted, rejected };
}

/** Every row the manifest lists equals the rows in the files, and no id appears twice. */
async function expectConsistent(out: string) {
  const manifest = (await readManifest(out))!;
  const ids = await outputIds(out);
  const listed = manifest.shards.reduce((sum, shard) => sum + shard.rows, 0);
  expect(ids.accepted.length + ids.rejected.length).toBe(listed);
  const all = [...ids.accepted, ...ids.rejected];
  expect(new Set(all).size).toBe(all.length);
  return ids;
}

describe("the budget", () => {
  it("bounds in-flight samples through async fan-outs wider than the budget", async () => {
    const summary = await run(fanOutGraph({ records: 40, width: 20, budget: 16, async: true }), { out: join(dir, "wide") });
    expect(summary.maxInFlight).toBeLessThanOrEqual(16);
    expect(summary.accepted + summary.rejected).toBe(40 * 20);
  });

  it("bounds nested fan-outs at a budget of 2 without deadlock", async () => {
    const graph: BuiltGraph = {
      name: "nested",
      sources: [memorySource("n", Array.from({ length: 30 }, (_, n) => ({ n })))],
      operators: [
        defineFanOut({ name: "first", expand: async (s) => [0, 1, 2].map((a) => ({ data: { ...s.data, a } })) }),
        defineFanOut({ name: "second", expand: (s) => [0, 1, 2, 3].map((b) => ({ data: { ...s.data, b } })) }),
      ],
      budget: 2,
    };
    const summary = await run(graph, { out: join(dir, "nested") });
    expect(summary.maxInFlight).toBeLessThanOrEqual(2);
    expect(summary.accepted).toBe(30 * 12);
  });
});

describe("checkpoints", () => {
  it("commits what finished within checkpointSeconds even when a slow source never fills a batch", async () => {
    const slow: Source = {
      name: "trickle",
      origin: "human",
      async *batches({ from, signal }) {
        for (let position = from; !signal.aborted; position++) {
          await sleep(100);
          yield [{ position, data: { n: position } } satisfies SourceItem];
        }
      },
    };
    const out = join(dir, "trickle");
    const stop = new AbortController();
    const running = run({ name: "trickle", sources: [slow], operators: [] }, { out, checkpointSeconds: 0.5, budget: 64, signal: stop.signal, graceMs: 100 });
    await sleep(2500);
    // As a kill -9 would find it: the manifest alone says what is kept.
    const manifest = await readManifest(out);
    stop.abort();
    await running;
    const committed = manifest?.shards.reduce((sum, shard) => sum + shard.rows, 0) ?? 0;
    expect(committed).toBeGreaterThanOrEqual(10);
  });

  it("a rerun of a finished run changes no file", async () => {
    const out = join(dir, "finished");
    await run(fanOutGraph({ records: 30, width: 3, budget: 8 }), { out });
    const before = await fileHashes(out);
    const again = await run(fanOutGraph({ records: 30, width: 3, budget: 8 }), { out });
    expect(again.accepted).toBe(0);
    expect(await fileHashes(out)).toEqual(before);
    // Nor does a --limit run the folder has passed: it never opens the source, and must not mark the folder unfinished.
    for (const limit of [1, 30]) {
      const limited = await run(fanOutGraph({ records: 30, width: 3, budget: 8 }), { out, limit });
      expect(limited.committed).toBe(false);
      expect(await fileHashes(out)).toEqual(before);
    }
    expect((await readManifest(out))?.complete).toBe(true);
  });

  it("a rerun that read new records commits even when it finished none: a grown source's folder is no longer complete", async () => {
    const out = join(dir, "grown");
    let slowStarted = false;
    const graph = (records: number): BuiltGraph => ({
      name: "grown",
      sources: [memorySource("numbers", Array.from({ length: records }, (_, n) => ({ n })))],
      operators: [
        defineAsyncMap({
          name: "slow",
          concurrency: 1,
          map: async (sample) => {
            if ((sample.data.n as number) < 5) return {};
            slowStarted = true;
            await sleep(500);
            return {};
          },
        }),
      ],
    });
    expect((await run(graph(5), { out })).status).toBe("complete");
    // Stopped once a new record is in the slow stage; budget 2 keeps the pump waiting for credit, so the
    // grace applies and nothing finishes.
    const stop = new AbortController();
    const watch = setInterval(() => slowStarted && stop.abort(), 5);
    const stopped = await run(graph(8), { out, budget: 2, signal: stop.signal, graceMs: 10 }).finally(() => clearInterval(watch));
    expect(stopped.status).toBe("stopped");
    expect(stopped.accepted).toBe(0);
    expect(stopped.committed).toBe(true);
    expect((await readManifest(out))?.complete).toBe(false);
    const finished = await run(graph(8), { out, budget: 2 });
    expect(finished.status).toBe("complete");
    expect(finished.accepted).toBe(3);
  }, 20_000);

  it("a session that sent requests commits its spend even when it finished nothing, so --max-cost counts it next time", async () => {
    const sim = await startSimulator({ latencyMs: 400 });
    const llm = createLlm({ baseURL: sim.url, model: "sim-1", concurrency: 1, cache: false });
    try {
      const out = join(dir, "spend");
      const graph = (): BuiltGraph => ({
        name: "spend",
        sources: [memorySource("items", Array.from({ length: 6 }, (_, n) => ({ text: `item ${n}` })))],
        operators: [llmMap({ llm, name: "label", prompt: (sample) => [{ role: "user", content: `Label: ${String(sample.data.text)}` }], write: "label" })],
      });
      for (const session of [1, 2]) {
        // Stopped once the session's first request reached the server, which answers only after 400 ms.
        const stop = new AbortController();
        const watch = setInterval(() => sim.stats().requests >= session && stop.abort(), 5);
        const stopped = await run(graph(), { out, budget: 2, signal: stop.signal, graceMs: 10 }).finally(() => clearInterval(watch));
        expect(stopped.accepted).toBe(0);
        expect(stopped.committed).toBe(true);
        expect((await readManifest(out))?.totals["llm.requests"]).toBe(sim.stats().requests);
        expect(sim.stats().requests).toBe(session);
      }
    } finally {
      await llm.close();
      await sim.close();
    }
  }, 20_000);
});

async function fileHashes(folder: string): Promise<Record<string, string>> {
  const hashes: Record<string, string> = {};
  for (const entry of await readdir(folder, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    hashes[path] = createHash("sha256").update(await readFile(path)).digest("hex");
  }
  return hashes;
}

describe("a crash between any two commit steps", () => {
  const crashAt = (step: CommitStep, nth: number): RunOptions["fault"] => {
    let seen = 0;
    return (done) => {
      if (done === step && ++seen === nth) throw new Error(`injected crash after ${step}`);
    };
  };

  for (const step of COMMIT_STEPS) {
    it(`after "${step}", resumes to exactly the uninterrupted run's output`, async () => {
      const reference = await outputIds((await run(fanOutGraph({ records: 60, width: 3, budget: 8 }), { out: join(dir, "reference"), checkpointRows: 20 })).out!);
      const out = join(dir, "crashed");
      const nth = step === "manifest-first" ? 1 : 2;
      await expect(run(fanOutGraph({ records: 60, width: 3, budget: 8 }), { out, checkpointRows: 20, fault: crashAt(step, nth) })).rejects.toThrow(/injected crash/);
      await run(fanOutGraph({ records: 60, width: 3, budget: 8 }), { out, checkpointRows: 20 });
      const resumed = await expectConsistent(out);
      expect(resumed.accepted.sort()).toEqual(reference.accepted.sort());
      expect(resumed.rejected.sort()).toEqual(reference.rejected.sort());
    });
  }
});

describe("partly committed roots", () => {
  it("are remembered across a --limit run that never reaches them (kill -9, limit, full run)", async () => {
    const out = join(dir, "partial");
    const graph = () => fanOutGraph({ records: 200, width: 4, budget: 64, jsonl: true });
    // A crash that leaves roots partly committed: stopped after the third manifest.
    let manifests = 0;
    await expect(
      run(graph(), {
        out,
        checkpointRows: 10,
        fault: (step) => {
          if (step === "manifest" && ++manifests === 3) throw new Error("crash");
        },
      }),
    ).rejects.toThrow("crash");
    const crashed = (await readManifest(out))!;
    expect(Object.keys(crashed.partial).length).toBeGreaterThan(0);
    const watermark = crashed.sources.numbers!.watermark;
    await run(graph(), { out, limit: Math.max(1, watermark) });
    await run(graph(), { out });
    const ids = await expectConsistent(out);
    expect(ids.accepted.length + ids.rejected.length).toBe(200 * 4);
  });
});

describe("sinks", () => {
  it("reject a value no sink can encode as `unencodable` with its field path, and keep the rest", async () => {
    const out = join(dir, "unencodable");
    const graph: BuiltGraph = {
      name: "unencodable",
      sources: [memorySource("n", Array.from({ length: 20 }, (_, n) => ({ n })))],
      operators: [defineMap({ name: "attach", map: (s) => ((s.data.n as number) === 7 ? { data: { ...s.data, meta: { handler: () => 1 } } } : {}) })],
      output: { formats: [jsonlFormat()] },
    };
    const summary = await run(graph, { out });
    expect(summary.accepted).toBe(19);
    const rejects = await readRows(out, { prefix: "rejects" });
    expect(rejects).toHaveLength(1);
    const reject = rejects[0]!.reject as { reason: string; message: string };
    expect(reject.reason).toBe("unencodable");
    expect(reject.message).toMatch(/^data\.meta\.handler \(a function\)/);
    await expectConsistent(out);
  });

  it("check only rows bound for a sink that serialises: a sink that stores objects takes any value", async () => {
    const handler = () => 1;
    const graph = (accepted: MemorySink, rejects: MemorySink): BuiltGraph => ({
      name: "stores-objects",
      sources: [memorySource("n", Array.from({ length: 10 }, (_, n) => ({ n })))],
      operators: [defineMap({ name: "attach", map: (s) => ((s.data.n as number) === 3 ? { data: { ...s.data, handler } } : {}) })],
      sinks: { accepted: [accepted], rejects },
    });
    const keeping = new MemorySink();
    const keptRejects = new MemorySink();
    expect((await run(graph(keeping, keptRejects))).accepted).toBe(10);
    expect(keeping.rows.find((row) => row.data.n === 3)!.data.handler).toBe(handler);
    // A sink that does not say it stores objects is taken for an encoder: the same value is rejected.
    const encoding = Object.assign(new MemorySink(), { storesObjects: false });
    const rejects = new MemorySink();
    const summary = await run(graph(encoding, rejects));
    expect([summary.accepted, summary.rejected]).toEqual([9, 1]);
    expect(((rejects.rows[0] as { reject?: { message: string } }).reject!).message).toMatch(/^data\.handler \(a function\)/);
  });

  it("commit nothing of a batch a sink failed on, and the resume writes each row once", async () => {
    const out = join(dir, "failing-sink");
    let appends = 0;
    const failing = (failAt: number): SinkFormat => {
      const inner = jsonlFormat();
      return {
        ...inner,
        async open(path, kind) {
          const writer = await inner.open(path, kind);
          return {
            ...writer,
            append: async (rows) => {
              if (kind === "accepted" && ++appends === failAt) throw new Error("disk failed");
              await writer.append(rows);
            },
            finish: () => writer.finish(),
            abort: () => writer.abort(),
          };
        },
      };
    };
    const graph = (format: SinkFormat): BuiltGraph => ({ ...fanOutGraph({ records: 100, width: 2, budget: 8, jsonl: true }), output: { formats: [format], shardRows: 25 } });
    // Past the first commits, so the folder holds committed rows and the failed batch comes after them.
    await expect(run(graph(failing(30)), { out, checkpointRows: 10 })).rejects.toThrow("disk failed");
    expect((await readManifest(out))!.shards.length).toBeGreaterThan(0);
    await expectConsistent(out);
    await run(graph(jsonlFormat()), { out, checkpointRows: 10 });
    const ids = await expectConsistent(out);
    expect(ids.accepted.length + ids.rejected.length).toBe(200);
  });
});

describe("identity", () => {
  it("refuses to resume a folder against another endpoint unless allowed, and records the change", async () => {
    const out = join(dir, "identity");
    const graph = (baseURL: string): BuiltGraph => ({ ...fanOutGraph({ records: 10, width: 1, budget: 4 }), identity: { endpoint: { baseURL, model: "m" } } });
    await run(graph("http://a/v1"), { out, limit: 5 });
    await expect(run(graph("http://b/v1"), { out })).rejects.toThrow(
      /was generated with endpoint http:\/\/a\/v1 \/ m; this run would use endpoint http:\/\/b\/v1 \/ m.*--allow-endpoint-change/,
    );
    await run(graph("http://b/v1"), { out, allowIdentityChange: true });
    const manifest = (await readManifest(out))!;
    expect(manifest.identity).toEqual({ endpoint: { baseURL: "http://b/v1", model: "m" } });
    expect(manifest.identityHistory?.map((entry) => entry.identity)).toEqual([{ endpoint: { baseURL: "http://a/v1", model: "m" } }]);
  });
});

describe("a kill -9 of an LLM graph fed slowly from a pipe", () => {
  it("keeps what it finished before its last checkpoint interval", async () => {
    const out = join(dir, "piped");
    const cli = join(import.meta.dirname, "..", "..", "bin", "rxsynth.mjs");
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env.OPENAI_BASE_URL;
    const child = spawn(
      process.execPath,
      [cli, "run", "graphs/distill-rationales.ts", "--set", "input=-", "--out", out, "--checkpoint-seconds", "1", "--quiet"],
      { cwd: join(import.meta.dirname, "..", ".."), env, stdio: ["pipe", "ignore", "pipe"] },
    );
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    for (let n = 0; n < 12; n++) {
      child.stdin.write(`${JSON.stringify({ instruction: `Explain why the number ${n} is interesting in one sentence.` })}\n`);
      await sleep(300);
    }
    // The pipe stays open (no end of input) and 12 rows never fill a sink batch: only the checkpoint
    // interval can commit them. Poll as a kill -9 would find the folder.
    const committed = async () => (await readManifest(out).catch(() => undefined))?.shards.reduce((sum, shard) => sum + shard.rows, 0) ?? 0;
    const deadline = Date.now() + 30_000;
    while ((await committed()) < 12 && Date.now() < deadline) await sleep(250);
    const exited = child.exitCode !== null ? Promise.resolve() : new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGKILL");
    await exited;
    expect(await committed(), stderr).toBe(12);
    await expectConsistent(out);
  }, 60_000);
});

describe("record ids", () => {
  const source = (ids: string[]) => memorySource("people", ids.map((id, n) => ({ id, n })));

  it("a record id repeated within one source is one InputError naming both positions", async () => {
    await expect(run({ name: "ids", sources: [source(["a", "b", "c", "b"])], operators: [] }, { out: join(dir, "ids") })).rejects.toThrow(
      /people.*"b".*1.*3/,
    );
  });

  it("checks a batch at a time as far as --limit reads: a repeat in a later batch fails, one past the limit is not read", async () => {
    const batched = (records: Array<{ id?: string; n: number }>) => memorySource("people", records, { batchSize: 2 });
    const ids = ["a", "b", "c", "d", "e", "b"].map((id, n) => ({ id, n }));
    await expect(run({ name: "ids", sources: [batched(ids)], operators: [] }, { out: join(dir, "ids-batched") })).rejects.toThrow(
      /"b" appears twice in source "people", at position 1 and position 5/,
    );
    const limited = await run({ name: "ids", sources: [batched(ids)], operators: [] }, { out: join(dir, "ids-limited"), limit: 5 });
    expect(limited.status).toBe("limited");
    expect(limited.accepted).toBe(5);
    // A record without an id is <source>:<position>: a later record id naming that position would share its sample id.
    const mixed = [{ id: "x", n: 0 }, { n: 1 }, { n: 2 }, { id: "2", n: 3 }];
    await expect(run({ name: "ids", sources: [batched(mixed)], operators: [] }, { out: join(dir, "ids-mixed") })).rejects.toThrow(
      /"2" appears twice in source "people", at position 2 and position 3/,
    );
  });

  it("catches a repeat split across a resume", async () => {
    const out = join(dir, "ids-resumed");
    const graph = (): BuiltGraph => ({ name: "ids", sources: [source(["a", "b", "c", "a"])], operators: [] });
    await run(graph(), { out, limit: 2 });
    await expect(run(graph(), { out })).rejects.toThrow(/people.*"a".*0.*3/);
  });
});
