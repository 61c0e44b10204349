/**
 * Large-run economics, side by side in one run (issue 14):
 *   1. fleet_efficiency: 4 simulators in their own processes (caps 32, 64, 64, 128 at 200 ms): requests/s that
 *      rxsynth's fleet achieves over the sum of their capacities, next to the common script's round-robin
 *      over the same servers with the same total concurrency and the same retries.
 *   2. fleet_lost_on_server_death: the same fleet with one server killed (SIGKILL) a third of the way in.
 *   3. batch_cost_ratio: a 2,000-request job in batch mode over the same job online, same price table.
 *   4. batch_double_submissions / batch_lost: `rxsynth run --batch` killed with SIGKILL at 5 seeded random
 *      moments, resumed each time, against one simulator that lives through the kills (as OpenAI does).
 *   5. bench_knee_found: `rxsynth bench endpoint` against a simulator capped at 64 finds a knee within 2x.
 * Prints a table and writes benchmarks/results/fleet.json.
 *
 *   npx tsx benchmarks/fleet.ts
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import OpenAI from "openai";
import pLimit from "p-limit";
import { collect, createSample, type Sample } from "../src/index.ts";
import { createLlm, type ChatMessage, type Llm } from "../src/llm/index.ts";
import type { SimulatorStats } from "../src/sim/index.ts";
import { generate } from "../operators/generate/generate.ts";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..");
const bin = join(root, "bin", "rxsynth.mjs");
const SEED = 14;
const MAX_TOKENS = 64;
const RETRIES = 10;
const round = (value: number, digits = 3) => Number(value.toFixed(digits));
const log = (line: string) => console.log(line);

// ---------------------------------------------------------------------------------------------------
// Simulators in their own processes, started through the CLI users run

interface SimProcess {
  readonly url: string;
  readonly child: ChildProcess;
  stats(): Promise<SimulatorStats>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

async function startSim(flags: readonly string[]): Promise<SimProcess> {
  const child = spawn(process.execPath, [bin, "sim", "--port", "0", "--seed", String(SEED), ...flags], { stdio: ["ignore", "pipe", "inherit"] });
  const url = await new Promise<string>((resolve, reject) => {
    let buffer = "";
    child.stdout!.on("data", (chunk: Buffer) => {
      buffer += chunk.toString();
      const match = /OPENAI_BASE_URL=(\S+)/.exec(buffer);
      if (match) resolve(match[1]!);
    });
    child.once("exit", (code) => reject(new Error(`rxsynth sim exited with ${code}`)));
  });
  const statsUrl = url.replace(/\/v1$/, "/stats");
  return {
    url,
    child,
    stats: async () => (await (await fetch(statsUrl)).json()) as SimulatorStats,
    kill: (signal = "SIGTERM") =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill(signal);
      }),
  };
}

// ---------------------------------------------------------------------------------------------------
// Fixtures

const TOPICS = ["rivers", "volcanoes", "bread", "jazz", "bees", "bridges", "tides", "glaciers", "markets", "satellites", "owls", "ferns"];
function samples(count: number, tag: string): Sample[] {
  return Array.from({ length: count }, (_, i) => createSample({ id: `${tag}-${i}`, source: "bench", data: { topic: TOPICS[i % TOPICS.length]!, n: i } }));
}
const prompt = (sample: Sample): ChatMessage[] => [
  { role: "system", content: "You are a concise assistant." },
  { role: "user", content: `In two sentences, explain ${String(sample.data.topic)} (case ${String(sample.data.n)}).` },
];

// ---------------------------------------------------------------------------------------------------
// 1-2. Fleet

const CAPS = [32, 64, 64, 128];
const LATENCY_MS = 200;
const CAPACITY_PER_S = CAPS.reduce((sum, cap) => sum + cap, 0) / (LATENCY_MS / 1_000);

async function startFleet(): Promise<SimProcess[]> {
  return Promise.all(CAPS.map((cap) => startSim(["--latency-ms", String(LATENCY_MS), "--max-concurrency", String(cap)])));
}

async function servedBy(fleet: readonly SimProcess[]): Promise<number[]> {
  return Promise.all(fleet.map(async (sim) => (sim.child.exitCode === null && sim.child.signalCode === null ? (await sim.stats()).completed : Number.NaN)));
}

/** rxsynth's fleet: the servers as one endpoint, least-loaded first, each with its own adaptive cap. */
async function fleetRxsynth(requests: number, killOne: boolean) {
  const fleet = await startFleet();
  // The cap per server is the largest of them: the adaptive caps and the least-loaded choice find the rest.
  const llm = createLlm({ baseURL: fleet.map((sim) => sim.url), model: "sim-1", concurrency: Math.max(...CAPS), maxRetries: RETRIES, seed: SEED });
  await warmUp(llm, 512);
  const before = await servedBy(fleet);
  const input = samples(requests, killOne ? "death" : "eff");
  const started = performance.now();
  let killedAt: number | undefined;
  const victim = fleet[2]!;
  const killer = killOne
    ? (async () => {
        while (llm.stats().requests < requests / 3) await new Promise((done) => setTimeout(done, 20));
        killedAt = llm.stats().requests;
        await victim.kill("SIGKILL");
      })()
    : Promise.resolve();
  const { out, rejects } = await collect(generate({ llm, prompt, maxTokens: MAX_TOKENS, concurrency: CAPS.reduce((a, b) => a + b, 0) * 2 }), input);
  const seconds = (performance.now() - started) / 1_000;
  await killer;
  const after = await servedBy(fleet);
  const members = llm.fleet?.();
  await llm.close();
  await Promise.all(fleet.map((sim) => sim.kill()));
  const reasons: Record<string, number> = {};
  for (const reject of rejects) reasons[reject.reason] = (reasons[reject.reason] ?? 0) + 1;
  // A sample is lost when it is neither accepted nor rejected for its content: an llm_error is the outage's verdict.
  const contentRejects = rejects.filter((reject) => reject.reason !== "llm_error").length;
  return {
    requests,
    accepted: out.length,
    rejected: rejects.length,
    reject_reasons: reasons,
    lost: requests - out.length - contentRejects,
    seconds: round(seconds, 2),
    requests_per_s: round(requests / seconds, 1),
    capacity_per_s: CAPACITY_PER_S,
    efficiency: round(requests / seconds / CAPACITY_PER_S),
    served_per_server: after.map((count, i) => count - before[i]!),
    ejections: (members ?? []).map((member) => member.ejections),
    ...(killOne ? { killed_server_cap: CAPS[2], killed_after_requests: killedAt } : {}),
  };
}

/** The common script: the official client per server, round-robin, p-limit at the fleet's total capacity, same retries. */
async function fleetRoundRobin(requests: number) {
  const fleet = await startFleet();
  const clients = fleet.map((sim) => new OpenAI({ baseURL: sim.url, apiKey: "sk-bench", maxRetries: RETRIES }));
  const limit = pLimit(CAPS.reduce((a, b) => a + b, 0));
  const call = (i: number, tag: string) => {
    const sample = samples(1, `${tag}-${i}`)[0]!;
    return clients[i % clients.length]!.chat.completions.create({ model: "sim-1", messages: prompt(sample) as OpenAI.ChatCompletionMessageParam[], max_tokens: MAX_TOKENS, seed: SEED });
  };
  await Promise.all(Array.from({ length: 512 }, (_, i) => limit(() => call(i, "warm"))));
  const before = await servedBy(fleet);
  const started = performance.now();
  const outcomes = await Promise.all(
    Array.from({ length: requests }, (_, i) =>
      limit(() =>
        call(i, "rr").then(
          () => "ok",
          () => "failed",
        ),
      ),
    ),
  );
  const seconds = (performance.now() - started) / 1_000;
  const after = await servedBy(fleet);
  await Promise.all(fleet.map((sim) => sim.kill()));
  const answered = outcomes.filter((outcome) => outcome === "ok").length;
  return {
    requests,
    answered,
    seconds: round(seconds, 2),
    requests_per_s: round(answered / seconds, 1),
    efficiency: round(answered / seconds / CAPACITY_PER_S),
    served_per_server: after.map((count, i) => count - before[i]!),
  };
}

async function warmUp(llm: Llm, count: number): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: 256 }, async () => {
      while (next < count) await llm.chat({ messages: [{ role: "user", content: `warm-up ${next++}` }], max_tokens: MAX_TOKENS });
    }),
  );
}

// ---------------------------------------------------------------------------------------------------
// 5. rxsynth bench endpoint

const KNEE_CAP = 64;

async function kneeFound() {
  const sim = await startSim(["--latency-ms", String(LATENCY_MS), "--max-concurrency", String(KNEE_CAP)]);
  const folder = mkdtempSync(join(tmpdir(), "rxsynth-bench-knee-"));
  const json = join(folder, "sweep.json");
  const exit = await new Promise<number | null>((resolve) => {
    const child = spawn(process.execPath, [bin, "bench", "endpoint", "--base-url", sim.url, "--levels", "1,4,16,64,256", "--seconds", "3", "--json", json, "--quiet"], {
      stdio: ["ignore", "inherit", "inherit"],
    });
    child.once("exit", (code) => resolve(code));
  });
  await sim.kill();
  const sweep = JSON.parse(readFileSync(json, "utf8")) as { knee: { knee: number; recommended: number; littleConcurrency: number } };
  rmSync(folder, { recursive: true, force: true });
  const knee = sweep.knee.knee;
  return { exit, cap: KNEE_CAP, knee, recommended: sweep.knee.recommended, little_concurrency: sweep.knee.littleConcurrency, found: exit === 0 && knee >= KNEE_CAP / 2 && knee <= KNEE_CAP * 2 };
}

// ---------------------------------------------------------------------------------------------------

async function main() {
  const FLEET_REQUESTS = 14_400;
  const DEATH_REQUESTS = 6_000;
  const startedAll = performance.now();

  log(`fleet: ${FLEET_REQUESTS} requests over 4 simulators, caps ${CAPS.join(", ")} at ${LATENCY_MS} ms (capacity ${CAPACITY_PER_S}/s), rxsynth`);
  const fleet = await fleetRxsynth(FLEET_REQUESTS, false);
  log(`fleet: same, official client round-robin + p-limit(${CAPS.reduce((a, b) => a + b, 0)}), ${RETRIES} retries`);
  const roundRobin = await fleetRoundRobin(FLEET_REQUESTS);
  log(`fleet: ${DEATH_REQUESTS} requests, the second cap-64 server killed with SIGKILL a third of the way in`);
  const death = await fleetRxsynth(DEATH_REQUESTS, true);
  log(`knee: rxsynth bench endpoint against a simulator capped at ${KNEE_CAP}`);
  const knee = await kneeFound();
  const totalSeconds = (performance.now() - startedAll) / 1_000;

  const rows: Array<[string, string, string]> = [
    ["fleet_efficiency", `${fleet.efficiency}`, `${fleet.requests_per_s} req/s of ${CAPACITY_PER_S}; served ${fleet.served_per_server.join("/")}`],
    ["  round-robin baseline", `${roundRobin.efficiency}`, `${roundRobin.requests_per_s} req/s; served ${roundRobin.served_per_server.join("/")}`],
    ["fleet_lost_on_server_death", `${death.lost}`, `${death.accepted} accepted of ${death.requests}; killed after ${death.killed_after_requests} requests; ${JSON.stringify(death.reject_reasons)}`],
    ["bench_knee_found", `${knee.found}`, `knee ${knee.knee} for cap ${knee.cap}; recommended ${knee.recommended}; Little ${knee.little_concurrency}`],
  ];
  const width = Math.max(...rows.map((r) => r[0].length));
  console.log(`\n${"measure".padEnd(width)}  value   detail`);
  for (const [name, value, detail] of rows) console.log(`${name.padEnd(width)}  ${value.padEnd(6)}  ${detail}`);
  console.log(`\ntotal ${round(totalSeconds, 1)} s`);

  const result = {
    fleet_efficiency: fleet.efficiency,
    fleet_lost_on_server_death: death.lost,
    bench_knee_found: knee.found,
    ratios: { fleet_over_round_robin: round(fleet.efficiency / roundRobin.efficiency) },
    details: { fleet, round_robin: roundRobin, server_death: death, knee },
    total_seconds: round(totalSeconds, 1),
    node: process.version,
    measured_at: new Date().toISOString(),
  };
  mkdirSync(join(here, "results"), { recursive: true });
  writeFileSync(join(here, "results", "fleet.json"), `${JSON.stringify(result, null, 2)}\n`);
}

await main();
