// Scale-out over Redis with real processes: workers started as `rxsynth worker`, one killed with SIGKILL
// mid-run and one started late, Redis itself restarted once (AOF on). The union of what the workers
// committed must be the single-process run's output, every id exactly once. The tests run their own
// redis-server on a free port with its AOF in a temp folder; the machine's 6379 is left alone.
import { existsSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";
import { readRows } from "../../src/io/read.ts";
import { freePort, skipRedis } from "../support/redis-server.ts";
import { ROOT, scaleCluster } from "../support/scale-cluster.ts";

const GRAPH = join(ROOT, "test/fixtures/scale-graph.ts");
const LLM_GRAPH = join(ROOT, "test/fixtures/scale-llm-graph.ts");
const JSONL_GRAPH = join(ROOT, "test/fixtures/scale-jsonl-graph.ts");
const cluster = scaleCluster("rxsynth-scale-");
const { cli, dir } = cluster;
const url = () => cluster.redis.url;

const idsOf = (rows: Record<string, unknown>[]) => rows.map((row) => row.id as string);
const idsOfFolder = async (folder: string) => [...idsOf(await readRows(folder, { prefix: "part" })), ...idsOf(await readRows(folder, { prefix: "rejects" }))];

describe.skipIf(skipRedis)("rxsynth submit / worker / status", () => {
  it("three workers, one killed mid-run and one started late, Redis restarted: the single-process output, every id once", async () => {
    const single = join(dir, "single");
    const alone = await cli(["run", GRAPH, "--out", single, "--quiet"]).exit;
    expect(alone.code, alone.stderr).toBe(0);
    const expectedAccepted = idsOf(await readRows(single, { prefix: "part" })).sort();
    const expectedRejected = idsOf(await readRows(single, { prefix: "rejects" })).sort();

    const out = join(dir, "scaled");
    const submit = await cli(["submit", GRAPH, "--redis", url(), "--run", "kill-test", "--out", out, "--chunk-size", "128", "--reclaim-seconds", "1"]).exit;
    expect(submit.code, submit.stderr).toBe(0);
    const worker = () => cli(["worker", "--redis", url(), "--run", "kill-test"]);
    const first = worker();
    // Killed inside its first chunk, between writing shards and committing them: the chunk is held and
    // not acknowledged, whatever the timing.
    const doomed = cli(["worker", "--redis", url(), "--run", "kill-test"], { RXSYNTH_FAULT: "shards:1" });
    await waitFor(() => existsSync(join(out, "chunks")), 20_000);
    expect((await doomed.exit).signal).toBe("SIGKILL");
    await cluster.redis.stop();
    await new Promise((done) => setTimeout(done, 500));
    await cluster.redis.restart();
    const late = worker();
    const exits = await Promise.all([first.exit, late.exit]);
    for (const exit of exits) expect(exit.code, exit.stderr).toBe(0);

    const accepted = idsOf(await readRows(out, { prefix: "part" }));
    const rejected = idsOf(await readRows(out, { prefix: "rejects" }));
    expect(new Set(accepted).size).toBe(accepted.length);
    expect(new Set(rejected).size).toBe(rejected.length);
    expect(accepted.sort()).toEqual(expectedAccepted);
    expect(rejected.sort()).toEqual(expectedRejected);

    const status = cli(["status", "--redis", url(), "--run", "kill-test", "--json"]);
    let json = "";
    status.child.stdout!.on("data", (chunk: Buffer) => (json += chunk.toString()));
    expect((await status.exit).code).toBe(0);
    const report = JSON.parse(json) as { state: string; totals: Record<string, number>; reclaimed: number };
    expect(report.state).toBe("complete");
    expect(report.totals.accepted).toBe(expectedAccepted.length);
    expect(report.totals.rejected).toBe(expectedRejected.length);
    expect(report.reclaimed).toBeGreaterThanOrEqual(1);
  }, 180_000);

  it("Redis down for seconds mid-run: the worker says so in one line, waits, and finishes the single-process output when it is back", async () => {
    const options = ["--set", "records=1200", "--set", "delayMs=3"];
    const single = join(dir, "outage-single");
    expect((await cli(["run", GRAPH, "--out", single, "--quiet", ...options]).exit).code).toBe(0);
    const out = join(dir, "outage");
    expect((await cli(["submit", GRAPH, "--redis", url(), "--run", "outage-test", "--out", out, "--chunk-size", "100", "--reclaim-seconds", "30", ...options]).exit).code).toBe(0);
    const worker = cli(["worker", "--redis", url(), "--run", "outage-test"]);
    await waitFor(() => existsSync(join(out, "chunks")), 20_000);
    await cluster.redis.stop();
    // Longer than the worker's heartbeat and its next chunk's start: it must ask Redis several times while it is gone.
    await new Promise((done) => setTimeout(done, 3_000));
    expect(worker.child.exitCode).toBeNull();
    await cluster.redis.restart();
    const exit = await worker.exit;
    expect(exit.code, exit.stderr).toBe(0);
    expect(exit.stderr.split("\n").filter((line) => /waiting for it to come back/.test(line))).toHaveLength(1);
    expect(exit.stderr).toMatch(/redis redis:\/\/127\.0\.0\.1:\d+: back/);
    const ids = await idsOfFolder(out);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.sort()).toEqual((await idsOfFolder(single)).sort());
  }, 120_000);

  it("a worker stalled past the reclaim time and then resumed writes nothing more of the chunk another worker took over", async () => {
    const options = ["--set", "records=200", "--set", "delayMs=100"];
    const single = join(dir, "stall-single");
    expect((await cli(["run", GRAPH, "--out", single, "--quiet", ...options]).exit).code).toBe(0);
    const out = join(dir, "stall");
    const submitted = await cli(["submit", GRAPH, "--redis", url(), "--run", "stall-test", "--out", out, "--chunk-size", "200", "--reclaim-seconds", "2", "--max-attempts", "2", ...options]).exit;
    expect(submitted.code, submitted.stderr).toBe(0);
    const stalled = cli(["worker", "--redis", url(), "--run", "stall-test"]);
    await waitFor(() => existsSync(join(out, "chunks")), 20_000);
    await new Promise((done) => setTimeout(done, 1_500));
    // Frozen mid-chunk (a long GC pause, a suspended VM): silent past the reclaim time.
    stalled.child.kill("SIGSTOP");
    await new Promise((done) => setTimeout(done, 2_500));
    // Another worker takes the chunk over and finishes the run while the first is still frozen.
    const takerExit = await cli(["worker", "--redis", url(), "--run", "stall-test"]).exit;
    expect(takerExit.code, takerExit.stderr).toBe(0);
    const committed = folderState(join(out, "chunks"));
    stalled.child.kill("SIGCONT");
    const stalledExit = await stalled.exit;
    expect(stalledExit.code, stalledExit.stderr).toBe(0);
    expect(stalledExit.stderr).toMatch(/was taken over by another worker/);
    // Woken up, it wrote nothing the other committed: no shard, no manifest, no state file changed.
    expect(folderState(join(out, "chunks"))).toEqual(committed);
    const ids = await idsOfFolder(out);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.sort()).toEqual((await idsOfFolder(single)).sort());
  }, 120_000);

  it("a chunk that fails every try goes to the dead letters with its reason; the rest completes and submit --wait exits 1", async () => {
    const out = join(dir, "poison");
    const args = ["--set", "records=600", "--set", "poisonFrom=300", "--set", "poisonTo=301", "--set", "delayMs=0", "--chunk-size", "100", "--max-attempts", "2"];
    const submitArgs = ["submit", GRAPH, "--redis", url(), "--run", "poison-test", "--out", out, ...args];
    expect((await cli(submitArgs).exit).code).toBe(0);
    // Submitting the same run again changes nothing; with --wait it follows the run to its end.
    const waiting = cli([...submitArgs, "--wait"]);
    const exits = await Promise.all([cli(["worker", "--redis", url(), "--run", "poison-test"]).exit, cli(["worker", "--redis", url(), "--run", "poison-test"]).exit]);
    for (const exit of exits) expect(exit.code, exit.stderr).toBe(1);
    const submitted = await waiting.exit;
    expect(submitted.code).toBe(1);
    expect(submitted.stderr).toMatch(/run poison-test failed: 1 chunk\(s\) failed 2 times and went to the dead letters/);
    const status = cli(["status", "--redis", url(), "--run", "poison-test"]);
    let text = "";
    status.child.stdout!.on("data", (chunk: Buffer) => (text += chunk.toString()));
    await status.exit;
    expect(text).toMatch(/dead letter numbers\[300, 400\): .*record 300 is poison/);
    // The other five chunks are whole: 500 records, each in two halves, minus the sevens' second halves.
    const rows = [...(await readRows(out, { prefix: "part" })), ...(await readRows(out, { prefix: "rejects" }))];
    expect(rows.length).toBe(1000);
    expect(rows.map((row) => (row.data as { n: number }).n).filter((n) => n >= 300 && n < 400)).toEqual([]);
  }, 120_000);

  it("three workers against one endpoint stay within its RPM and its concurrency together: one budget in Redis, not one each", async () => {
    const simPort = await freePort();
    const RPM = 3_000;
    const simulator = cli(["sim", "--port", String(simPort), "--rpm", String(RPM), "--latency-ms", "20", "--max-concurrency", "64"]);
    const endpoint = `http://127.0.0.1:${simPort}/v1`;
    for (let i = 0; i < 100 && !(await fetch(`${endpoint.replace("/v1", "")}/health`).then((r) => r.ok, () => false)); i++) await new Promise((done) => setTimeout(done, 100));
    try {
      const env = { OPENAI_BASE_URL: endpoint, OPENAI_API_KEY: "test", RXSYNTH_MODEL: "sim-1", RXSYNTH_ENDPOINT_FAMILY: "unknown" };
      const out = join(dir, "limited");
      expect((await cli(["submit", LLM_GRAPH, "--redis", url(), "--run", "limit-test", "--out", out, "--chunk-size", "25", "--set", "records=400"], env).exit).code).toBe(0);
      const exits = await Promise.all([1, 2, 3].map(() => cli(["worker", "--redis", url(), "--run", "limit-test"], env).exit));
      for (const exit of exits) expect(exit.code, exit.stderr).toBe(0);
      const stats = (await (await fetch(`${endpoint.replace("/v1", "")}/stats`)).json()) as { requests: number; completed: number; rateLimited: number; peakConcurrency: number };
      expect(stats.completed).toBe(400);
      // The graph's concurrency (8) is the endpoint's: three workers together, not 8 each.
      expect(stats.peakConcurrency).toBeLessThanOrEqual(8);
      // Each worker alone would take the whole limit: three times it, and the simulator's 429 for the rest.
      expect(stats.rateLimited / stats.requests).toBeLessThanOrEqual(0.01);
      expect((await readRows(out, { prefix: "part" })).length).toBe(400);
    } finally {
      simulator.child.kill("SIGTERM");
      await simulator.exit;
    }
  }, 120_000);

  it("a worker joining a rate-limited run meters its first requests by the limits the others learned, not unmetered into 429s", async () => {
    const simPort = await freePort();
    const simulator = cli(["sim", "--port", String(simPort), "--rpm", "240", "--latency-ms", "20", "--max-concurrency", "64"]);
    const base = `http://127.0.0.1:${simPort}`;
    for (let i = 0; i < 100 && !(await fetch(`${base}/health`).then((r) => r.ok, () => false)); i++) await new Promise((done) => setTimeout(done, 100));
    const stats = async () => (await (await fetch(`${base}/stats`)).json()) as { requests: number; completed: number; rateLimited: number };
    try {
      // No limit configured: every worker learns it from the simulator's x-ratelimit-* headers.
      const env = { OPENAI_BASE_URL: `${base}/v1`, OPENAI_API_KEY: "test", RXSYNTH_MODEL: "sim-1", RXSYNTH_ENDPOINT_FAMILY: "unknown" };
      const out = join(dir, "learned");
      expect((await cli(["submit", LLM_GRAPH, "--redis", url(), "--run", "learned", "--out", out, "--chunk-size", "10", "--set", "records=80", "--set", "concurrency=4"], env).exit).code).toBe(0);
      const first = cli(["worker", "--redis", url(), "--run", "learned"], env);
      // The first worker has drained the simulator's burst and runs at its limit when the others join.
      await waitForAsync(async () => (await stats()).completed >= 12, 30_000);
      // The first worker's own first contact may meet a 429 or two before any header taught it the limit.
      const atJoin = await stats();
      const late = [1, 2, 3, 4].map(() => cli(["worker", "--redis", url(), "--run", "learned"], env));
      for (const exit of await Promise.all([first.exit, ...late.map((worker) => worker.exit)])) expect(exit.code, exit.stderr).toBe(0);
      const final = await stats();
      expect(final.completed).toBe(80);
      expect({ atJoin: atJoin.rateLimited, after: final.rateLimited - atJoin.rateLimited }).toEqual({ atJoin: atJoin.rateLimited, after: 0 });
    } finally {
      simulator.child.kill("SIGTERM");
      await simulator.exit;
    }
  }, 120_000);

  it("exact dedup shared by the workers keeps as many samples as one process, and no text twice", async () => {
    const options = ["--set", "records=1200", "--set", "distinct=300", "--set", "delayMs=1"];
    const single = join(dir, "dedup-single");
    expect((await cli(["run", GRAPH, "--out", single, "--quiet", ...options]).exit).code).toBe(0);
    const out = join(dir, "dedup-scaled");
    expect((await cli(["submit", GRAPH, "--redis", url(), "--run", "dedup-test", "--out", out, "--chunk-size", "100", ...options]).exit).code).toBe(0);
    const exits = await Promise.all([1, 2, 3].map(() => cli(["worker", "--redis", url(), "--run", "dedup-test"]).exit));
    for (const exit of exits) expect(exit.code, exit.stderr).toBe(0);
    const kept = await readRows(out, { prefix: "part" });
    const keys = kept.map((row) => `${(row.data as { text: string }).text}/${(row.data as { half: number }).half}`);
    expect(new Set(keys).size).toBe(keys.length);
    expect(kept.length).toBe((await readRows(single, { prefix: "part" })).length);
    const rejected = await readRows(out, { prefix: "rejects" });
    expect(rejected.length).toBe((await readRows(single, { prefix: "rejects" })).length);
    // A duplicate names the sample kept in its place, wherever that one was committed.
    const ids = new Set(kept.map((row) => row.id as string));
    const duplicates = rejected.filter((row) => (row.reject as { reason: string }).reason === "exact_duplicate");
    expect(duplicates.length).toBeGreaterThan(0);
    expect(duplicates.every((row) => ids.has((row.reject as { duplicateOf: string }).duplicateOf))).toBe(true);
  }, 120_000);

  it.each([false, true])("a JSONL file with blank and malformed lines, its size %s hidden: the single-process ids, every one once", async (hideSize) => {
    const file = join(dir, `lines-${hideSize}.jsonl`);
    const lines = Array.from({ length: 1_000 }, (_, n) => (n % 97 === 50 ? "" : n === 333 ? "{broken" : JSON.stringify({ n, ...(n % 5 === 0 ? { id: `own-${n}` } : {}) })));
    writeFileSync(file, `${lines.join("\n")}\n\n\n`);
    const options = ["--set", `file=${file}`, "--set", `hideSize=${hideSize}`];
    const single = join(dir, `jsonl-single-${hideSize}`);
    expect((await cli(["run", JSONL_GRAPH, "--out", single, "--quiet", ...options]).exit).code).toBe(0);
    const out = join(dir, `jsonl-scaled-${hideSize}`);
    const run = `jsonl-${hideSize}`;
    expect((await cli(["submit", JSONL_GRAPH, "--redis", url(), "--run", run, "--out", out, "--chunk-size", "100", "--max-queued", "3", ...options]).exit).code).toBe(0);
    const exits = await Promise.all([1, 2].map(() => cli(["worker", "--redis", url(), "--run", run]).exit));
    for (const exit of exits) expect(exit.code, exit.stderr).toBe(0);
    const got = await idsOfFolder(out);
    expect(new Set(got).size).toBe(got.length);
    expect(got.sort()).toEqual((await idsOfFolder(single)).sort());
  }, 120_000);

  it("a worker killed after a chunk's commit and before its acknowledgement costs no try: the chunk is done", async () => {
    const out = join(dir, "commit-then-kill");
    const args = ["--set", "records=600", "--set", "delayMs=0", "--chunk-size", "128", "--max-attempts", "1", "--reclaim-seconds", "1"];
    expect((await cli(["submit", GRAPH, "--redis", url(), "--run", "commit-kill", "--out", out, ...args]).exit).code).toBe(0);
    const killed = await cli(["worker", "--redis", url(), "--run", "commit-kill"], { RXSYNTH_FAULT: "manifest:1" }).exit;
    expect(killed.signal).toBe("SIGKILL");
    const rest = await cli(["worker", "--redis", url(), "--run", "commit-kill"]).exit;
    expect(rest.code, rest.stderr).toBe(0);
    // The chunk found committed counts in the totals per operator too, from its manifest.
    const status = await cli(["status", "--redis", url(), "--run", "commit-kill", "--json"]).exit;
    const totals = (JSON.parse(status.stdout) as { totals: Record<string, number> }).totals;
    expect(totals["op:pair:in"]).toBe(600);
    expect(totals["op:pair:out"]).toBe(1200);
    const single = join(dir, "commit-kill-single");
    expect((await cli(["run", GRAPH, "--out", single, "--quiet", "--set", "records=600", "--set", "delayMs=0"]).exit).code).toBe(0);
    expect((await idsOfFolder(out)).sort()).toEqual((await idsOfFolder(single)).sort());
  }, 120_000);

  it("a --follow worker started before its run is submitted says so once, waits, then works the run", async () => {
    const out = join(dir, "early");
    const early = cli(["worker", "--redis", url(), "--run", "early", "--follow"]);
    let stderr = "";
    early.child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    await waitFor(() => stderr.includes('no run "early" on this Redis yet'), 20_000);
    const submit = await cli(["submit", GRAPH, "--redis", url(), "--run", "early", "--out", out, "--set", "records=300", "--set", "delayMs=0", "--chunk-size", "100", "--wait"]).exit;
    expect(submit.code, submit.stderr).toBe(0);
    early.child.kill("SIGTERM");
    const exit = await early.exit;
    expect(exit.code, exit.stderr).toBe(130);
    expect(exit.stderr.match(/no run "early" on this Redis yet/g)).toHaveLength(1);
    expect(exit.stderr).toMatch(/: 3 work items/);
    const single = join(dir, "early-single");
    expect((await cli(["run", GRAPH, "--out", single, "--quiet", "--set", "records=300", "--set", "delayMs=0"]).exit).code).toBe(0);
    expect((await idsOfFolder(out)).sort()).toEqual((await idsOfFolder(single)).sort());
  }, 120_000);

  it("refuses a graph that keeps state across samples, which workers do not share yet", async () => {
    const exit = await cli(["submit", "mix", "--redis", url(), "--run", "refused", "--out", join(dir, "refused")]).exit;
    expect(exit.code).not.toBe(0);
    expect(exit.stderr.trim().split("\n").at(-1)).toMatch(/graph "mix" does not declare itself chunkable: .*run it with `rxsynth run`/);
  }, 60_000);

  it("a Redis that cannot be reached is one line naming the URL", async () => {
    const closed = await freePort();
    const exit = await cli(["worker", "--redis", `redis://127.0.0.1:${closed}`, "--run", "nothing"]).exit;
    expect(exit.code).not.toBe(0);
    expect(exit.stderr.trim().split("\n").at(-1)).toMatch(new RegExp(`cannot reach Redis at redis://127.0.0.1:${closed}: .*is redis-server running, and is --redis right\\?`));
  }, 30_000);
});

/** Every file under `folder` but temporary ones, with its size and modification time. */
function folderState(folder: string): Record<string, string> {
  const state: Record<string, string> = {};
  for (const entry of readdirSync(folder, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || entry.name.endsWith(".tmp")) continue;
    const path = join(entry.parentPath, entry.name);
    const { size, mtimeMs } = statSync(path);
    state[relative(folder, path)] = `${size} ${mtimeMs}`;
  }
  return state;
}

async function waitForAsync(condition: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const started = Date.now();
  while (!(await condition())) {
    if (Date.now() - started > timeoutMs) throw new Error("timed out waiting");
    await new Promise((done) => setTimeout(done, 50));
  }
}

async function waitFor(condition: () => boolean, timeoutMs: number): Promise<void> {
  const started = Date.now();
  while (!condition()) {
    if (Date.now() - started > timeoutMs) throw new Error("timed out waiting");
    await new Promise((done) => setTimeout(done, 20));
  }
}
