// Claim (issue 12): one run spread over workers through Redis scales with cores, costs little over a
// plain `rxsynth run`, keeps N workers within one provider limit, and loses or repeats nothing when
// workers are SIGKILLed and Redis restarts. Every contender is real processes (`rxsynth run`, `submit`,
// `worker`, `sim`) against a redis-server this script starts on a free port (AOF on, in a temp folder).
//
//   npm run bench -- scale            (or: npx tsx benchmarks/scale.ts; SCALE_BENCH_QUICK=1 for a smoke run)
//
// Keys (benchmarks/results/scale.json):
//   cpu_scaling_2w        wall time of 1 worker / wall time of 2 workers, the curate graph (Gopher rules, exact
//                         dedup, MinHash LSH near-dedup, both indexes shared in Redis) over CPU_DOCS seeded
//                         documents (test/support/corpus.ts, 5 % near-duplicates, 2 % exact copies); target
//                         >= 1.7 on 2 cores.
//   overhead_1w           `rxsynth run` wall time / 1 worker's wall time (submit to complete), same graph and
//                         corpus; target >= 0.8.
//   machine_scaling_2p    `rxsynth run` of the corpus / two plain `rxsynth run`s of half as many documents
//                         side by side (no Redis, no chunks): what this machine gives a second process at
//                         all, the ceiling of cpu_scaling_2w.
//   global_rpm_utilisation  requests answered per minute / what the simulator's limits allow (its RPM, or its
//                         TPM over the tokens a request took, whichever is lower; TPM is set near the
//                         RPM's equivalent), 4 workers, one LLM request per record; target >= 0.95.
//   global_429_rate       429s / requests the simulator received in that run; target <= 0.01.
//   chaos_lost, chaos_duplicated  3 workers, CHAOS_KILLS SIGKILLs at seeded random times (a killed worker
//                         is replaced; chaos_kills says how many happened), one Redis restart: ids missing from / repeated in the union,
//                         against a single-process run; targets 0 and 0.
//   redis_ops_per_sample  Redis commands (INFO commandstats, those run inside scripts included) per document
//                         in the 1-worker run.
//   redis_scripts_per_sample  scripts (EVALSHA) per document in that run: a worker's requests to Redis, each
//                         one round trip at most (auto-pipelining shares round trips).
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { readRows } from "../src/io/read.ts";
import { mulberry32, writeDocuments } from "../test/support/corpus.ts";
import { RedisServer, freePort } from "../test/support/redis-server.ts";
import { writeResults, round } from "./lib/results.ts";

const QUICK = process.env.SCALE_BENCH_QUICK === "1";
const ROOT = resolve(fileURLToPath(new URL("..", import.meta.url)));
const CLI = join(ROOT, "bin/rxsynth.mjs");
const CPU_DOCS = QUICK ? 8_000 : 300_000;
const CHUNK = QUICK ? 2_000 : 10_000;
const LLM_RECORDS = QUICK ? 300 : 3_000;
const RPM = 6_000;
/** The endpoint's concurrency for all workers together: well above what the RPM needs at the simulator's latency (100/s x 50 ms = 5). */
const LLM_CONCURRENCY = 64;
const CHAOS_RECORDS = QUICK ? 3_000 : 16_000;
const CHAOS_KILLS = 5;
const SEED = 12;

const dir = mkdtempSync(join(tmpdir(), "rxsynth-scale-bench-"));
const children = new Set<ChildProcess>();
let redis: RedisServer;
const redisUrl = () => redis.url;

interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stderr: string;
}

function start(command: string, args: readonly string[], env: Record<string, string> = {}): { child: ChildProcess; exit: Promise<Exit> } {
  const child = spawn(command, args, { cwd: ROOT, stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, OPENAI_BASE_URL: "", ...env } });
  children.add(child);
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4_000)));
  const exit = new Promise<Exit>((done) => child.once("exit", (code, signal) => (children.delete(child), done({ code, signal, stderr }))));
  return { child, exit };
}

const rxsynth = (args: readonly string[], env?: Record<string, string>) => start(process.execPath, [CLI, ...args], env);

async function must(run: { exit: Promise<Exit> }, what: string): Promise<void> {
  const exit = await run.exit;
  if (exit.code !== 0) throw new Error(`${what} exited ${exit.code ?? exit.signal}: ${exit.stderr.trim().split("\n").slice(-3).join(" | ")}`);
}

/** Submit, then `workers` workers to the end; wall seconds from submit to the last worker's exit. */
async function scaled(run: string, graph: string, sets: readonly string[], workers: number, env: Record<string, string> = {}, chunk = CHUNK): Promise<number> {
  const started = performance.now();
  await must(rxsynth(["submit", graph, "--redis", redisUrl(), "--run", run, "--out", join(dir, run), "--chunk-size", String(chunk), ...sets], env), `submit ${run}`);
  await Promise.all(Array.from({ length: workers }, (_, i) => must(rxsynth(["worker", "--redis", redisUrl(), "--run", run], env), `worker ${i} of ${run}`)));
  return (performance.now() - started) / 1000;
}

async function single(name: string, graph: string, sets: readonly string[]): Promise<number> {
  const started = performance.now();
  await must(rxsynth(["run", graph, "--out", join(dir, name), "--quiet", ...sets]), `run ${name}`);
  return (performance.now() - started) / 1000;
}

async function ids(folder: string): Promise<string[]> {
  return [...(await readRows(folder, { prefix: "part" })), ...(await readRows(folder, { prefix: "rejects" }))].map((row) => row.id as string);
}

async function cpuPart() {
  const corpus = join(dir, "corpus.jsonl");
  const halves = [join(dir, "corpus-a.jsonl"), join(dir, "corpus-b.jsonl")] as const;
  await writeDocuments(corpus, CPU_DOCS, { seed: SEED });
  await writeDocuments(halves[0], CPU_DOCS / 2, { seed: SEED + 1 });
  await writeDocuments(halves[1], CPU_DOCS / 2, { seed: SEED + 2 });
  const sets = ["--set", `input=${corpus}`];
  // Alternated, each twice, so a slow minute of the shared machine falls on both sides.
  const runs: number[] = [];
  const one: number[] = [];
  const two: number[] = [];
  let opsPerSample = 0;
  let scriptsPerSample = 0;
  for (let round = 0; round < 2; round++) {
    runs.push(await single(`cpu-run-${round}`, "curate", sets));
    const [commandsBefore, scriptsBefore] = [await redis.commands(), await redis.scripts()];
    one.push(await scaled(`cpu-1w-${round}`, "curate", sets, 1));
    opsPerSample = ((await redis.commands()) - commandsBefore) / CPU_DOCS;
    scriptsPerSample = ((await redis.scripts()) - scriptsBefore) / CPU_DOCS;
    two.push(await scaled(`cpu-2w-${round}`, "curate", sets, 2));
  }
  // What this machine gives two processes at all: two plain runs of half the documents side by side, no Redis.
  const sideBySide: number[] = [];
  for (let round = 0; round < 2; round++) {
    const started = performance.now();
    await Promise.all(halves.map((half, i) => single(`half-${i}-${round}`, "curate", ["--set", `input=${half}`])));
    sideBySide.push((performance.now() - started) / 1000);
  }
  const kept = (await readRows(join(dir, "cpu-run-0"), { prefix: "part" })).length;
  const best = (values: number[]) => Math.min(...values);
  return { run_s: best(runs), one_worker_s: best(one), two_workers_s: best(two), two_plain_halves_s: best(sideBySide), opsPerSample, scriptsPerSample, kept, runs, one, two, sideBySide };
}

async function llmPart() {
  const port = await freePort();
  // TPM set so that it binds as often as the RPM: a request is about 25 prompt + 60 answer tokens.
  const tpm = RPM * 85;
  const sim = start(process.execPath, [CLI, "sim", "--port", String(port), "--rpm", String(RPM), "--tpm", String(tpm), "--latency-ms", "50", "--max-concurrency", "256"]);
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100 && !(await fetch(`${base}/health`).then((r) => r.ok, () => false)); i++) await new Promise((done) => setTimeout(done, 100));
  try {
    const env = { OPENAI_BASE_URL: `${base}/v1`, OPENAI_API_KEY: "bench", RXSYNTH_MODEL: "sim-1", RXSYNTH_ENDPOINT_FAMILY: "unknown" };
    const graph = join(ROOT, "test/fixtures/scale-llm-graph.ts");
    const before = (await (await fetch(`${base}/stats`)).json()) as { requests: number; completed: number; rateLimited: number; promptTokens: number; completionTokens: number; peakConcurrency: number };
    // Seconds counted from the first worker's start, after submit: the window in which requests flow.
    await must(rxsynth(["submit", graph, "--redis", redisUrl(), "--run", "llm-4w", "--out", join(dir, "llm-4w"), "--chunk-size", "50", "--set", `records=${LLM_RECORDS}`, "--set", `concurrency=${LLM_CONCURRENCY}`], env), "submit llm-4w");
    // The window is from the first answer to the last, polled from the simulator: worker start-up (seconds
    // of module loading on a busy machine) is not the limiter's to use.
    let first: number | undefined;
    let last = performance.now();
    let done = false;
    const poll = (async () => {
      while (!done) {
        const now = (await (await fetch(`${base}/stats`)).json()) as typeof before;
        if (now.completed > before.completed) first ??= performance.now();
        if (now.completed >= before.completed + LLM_RECORDS) {
          last = performance.now();
          return;
        }
        await new Promise((wait) => setTimeout(wait, 100));
      }
    })();
    await Promise.all([1, 2, 3, 4].map((i) => must(rxsynth(["worker", "--redis", redisUrl(), "--run", "llm-4w"], env), `llm worker ${i}`)));
    done = true;
    await poll;
    const seconds = (last - (first ?? last)) / 1000;
    const after = (await (await fetch(`${base}/stats`)).json()) as typeof before;
    const completed = after.completed - before.completed;
    const requests = after.requests - before.requests;
    const tokensPerRequest = (after.promptTokens - before.promptTokens + after.completionTokens - before.completionTokens) / Math.max(1, completed);
    // Whichever limit binds: RPM, or TPM over the tokens a request really took.
    const allowedPerMinute = Math.min(RPM, tpm / tokensPerRequest);
    // The simulator's peak is over its life, and this is its only run: the most requests in flight from all workers at once.
    return { completed, requests, rateLimited: after.rateLimited - before.rateLimited, seconds, perMinute: completed / (seconds / 60), tokensPerRequest, allowedPerMinute, peakConcurrency: after.peakConcurrency, concurrency: LLM_CONCURRENCY };
  } finally {
    sim.child.kill("SIGTERM");
    await sim.exit;
  }
}

async function chaosPart() {
  const sets = ["--set", `records=${CHAOS_RECORDS}`, "--set", "delayMs=4"];
  const graph = join(ROOT, "test/fixtures/scale-graph.ts");
  await single("chaos-single", graph, sets);
  const expected = new Set(await ids(join(dir, "chaos-single")));
  const run = "chaos";
  await must(rxsynth(["submit", graph, "--redis", redisUrl(), "--run", run, "--out", join(dir, run), "--chunk-size", "100", "--reclaim-seconds", "1", ...sets]), "submit chaos");
  const random = mulberry32(SEED);
  const workers = new Set<ReturnType<typeof rxsynth>>();
  const spawnWorker = () => {
    const worker = rxsynth(["worker", "--redis", redisUrl(), "--run", run]);
    workers.add(worker);
    void worker.exit.then(() => workers.delete(worker));
  };
  for (let i = 0; i < 3; i++) spawnWorker();
  let kills = 0;
  for (let k = 0; k < CHAOS_KILLS; k++) {
    await new Promise((done) => setTimeout(done, 600 + random() * 1_200));
    const alive = [...workers].filter((worker) => worker.child.exitCode === null);
    if (alive.length === 0) break;
    const victim = alive[Math.floor(random() * alive.length)]!;
    victim.child.kill("SIGKILL");
    await victim.exit;
    kills++;
    spawnWorker();
    if (k === 2) {
      await redis.stop();
      await new Promise((done) => setTimeout(done, 300));
      await redis.restart();
    }
  }
  while (workers.size > 0) await Promise.all([...workers].map((worker) => worker.exit));
  // Whatever the kills left (every worker may have exited), one more worker finishes the run.
  await must(rxsynth(["worker", "--redis", redisUrl(), "--run", run]), "closing worker");
  const got = await ids(join(dir, run));
  const seen = new Set<string>();
  let duplicated = 0;
  for (const id of got) {
    if (seen.has(id)) duplicated++;
    seen.add(id);
  }
  const lost = [...expected].filter((id) => !seen.has(id)).length;
  return { kills, lost, duplicated, expected: expected.size, rows: got.length };
}

async function main() {
  redis = await RedisServer.start(dir);
  try {
    const cpu = await cpuPart();
    console.log(`cpu (curate over ${CPU_DOCS} documents, ${cpu.kept} kept): run ${cpu.run_s.toFixed(1)} s, 1 worker ${cpu.one_worker_s.toFixed(1)} s, 2 workers ${cpu.two_workers_s.toFixed(1)} s, two plain half runs side by side ${cpu.two_plain_halves_s.toFixed(1)} s`);
    const llm = await llmPart();
    console.log(`llm: ${llm.completed} answered in ${llm.seconds.toFixed(1)} s (${Math.round(llm.perMinute)}/min of ${RPM}), ${llm.rateLimited} 429s of ${llm.requests} requests`);
    const chaos = await chaosPart();
    console.log(`chaos: ${chaos.kills} kills, ${chaos.lost} lost, ${chaos.duplicated} duplicated of ${chaos.expected}`);
    const result = {
      cpu_scaling_2w: round(cpu.one_worker_s / cpu.two_workers_s),
      overhead_1w: round(cpu.run_s / cpu.one_worker_s),
      // The ceiling cpu_scaling_2w is measured against: one plain run / two plain half runs side by side.
      machine_scaling_2p: round(cpu.run_s / cpu.two_plain_halves_s),
      global_rpm_utilisation: round(llm.perMinute / llm.allowedPerMinute),
      global_429_rate: round(llm.rateLimited / llm.requests, 4),
      chaos_lost: chaos.lost,
      chaos_duplicated: chaos.duplicated,
      chaos_kills: chaos.kills,
      redis_ops_per_sample: round(cpu.opsPerSample, 4),
      redis_scripts_per_sample: round(cpu.scriptsPerSample, 4),
      details: { cpu, llm, chaos, cpu_docs: CPU_DOCS, chunk_size: CHUNK, llm_records: LLM_RECORDS, rpm: RPM, chaos_records: CHAOS_RECORDS },
      node: process.version,
      cpus: cpus().length,
      load_average_1m: round(loadavg()[0]!),
      measured_at: new Date().toISOString(),
    };
    const targets = [
      ["cpu_scaling_2w >= 1.7", result.cpu_scaling_2w >= 1.7],
      ["overhead_1w >= 0.8", result.overhead_1w >= 0.8],
      ["global_rpm_utilisation >= 0.95", result.global_rpm_utilisation >= 0.95],
      ["global_429_rate <= 0.01", result.global_429_rate <= 0.01],
      ["chaos_lost = 0", result.chaos_lost === 0],
      ["chaos_duplicated = 0", result.chaos_duplicated === 0],
      [`chaos_kills = ${CHAOS_KILLS}`, result.chaos_kills === CHAOS_KILLS],
      [`llm peak concurrency <= ${LLM_CONCURRENCY}`, llm.peakConcurrency <= LLM_CONCURRENCY],
    ] as const;
    console.table(Object.fromEntries(targets.map(([name, met]) => [name, met ? "met" : "MISS"])));
    console.table({ ...result, details: undefined });
    if (QUICK) {
      console.log("quick run: benchmarks/results/scale.json not written");
      return;
    }
    await writeResults("scale", result);
  } finally {
    for (const child of children) child.kill("SIGKILL");
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
