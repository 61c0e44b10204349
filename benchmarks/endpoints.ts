// Claim: the ready graphs run unchanged against every family of OpenAI-compatible server the simulator
// plays (src/sim/profiles.ts): each accepts rows, none rejects a sample for an endpoint reason a correct
// client would have avoided, no row carries the model's chain of thought, and a wrong model name stops
// the run within a few requests instead of rejecting every sample.
// Targets: accepted > 0, wrong_rejects = 0 and reasoning_leaked = 0 for every profile; circuit_breaker_requests <= 10.
//
//   npm run bench -- endpoints
//   npx tsx benchmarks/endpoints.ts
//
// For each profile (openai, openai-reasoning, azure, vllm, sglang, ollama, llamacpp, groq, together, and
// "ignores-json-schema": the openai profile accepting json_schema and ignoring it) one simulator
// is started in this process (seed SEED, latency 5 ms, no injected faults, models [MODEL] so the
// strict-model profiles serve the graphs' model), and both graphs are pointed at it the way a user points
// them at a real endpoint (OPENAI_BASE_URL, RXSYNTH_MODEL=MODEL, a dummy OPENAI_API_KEY), each into a new
// temp folder with the response cache off (the `--no-cache` of `rxsynth run`, env.cache false):
//   graphs/quickstart.ts          (target QUICKSTART_TARGET; structured classification and instances)
//   graphs/qa-from-documents.ts   (defaults: zod-schema QA pairs via asker, a rubric judge; json_schema)
// Accepted rows and rejects are read back from the Parquet shards (readRows, prefix part / rejects).
//
// Per profile, over both graphs (benchmarks/results/endpoints.json, `profiles.<name>`):
//   accepted             rows in the part shards
//   wrong_rejects        rejects a correct client would have avoided, by this rule:
//                        (a) any reject whose raw text, message or data holds the chain of thought
//                            (CHAIN_OF_THOUGHT_MARKERS: the simulator's chainOfThought opening, its decoy
//                            draft, <think>, </think>), whatever its reason;
//                        (b) llm_error, incomplete, empty, truncated (judge_* variants included): with no
//                            injected faults the simulator never fails a request it can serve, never
//                            leaves an answer unfinished, empty or cut (no graph here sets max_tokens), so
//                            each is the client sending what the profile refuses, reading a field the
//                            profile does not fill, or letting reasoning eat the cap;
//                        (c) refusal / judge_refusal from an LLM call (not a refusal filter) while the
//                            simulator sent no refusal (its stats().refusals = 0).
//                        unparseable / schema_mismatch without the chain of thought are not counted (the
//                        simulator's JSON may miss a graph's own constraints); they are in `reject_reasons`.
//   reasoning_leaked     accepted rows with a marker in any string of their data (nested values included)
//   requests_per_sample  simulator stats().requests / (accepted + rejected)
//   also: rejected, requests, reject_reasons (operator:reason), wrong_reject_reasons, wrong_reject_sample
//   (graph, operator, reason, message, raw), reasoning_in_steps (accepted rows whose provenance keeps the
//   reasoning apart), adaptations (the client's "llm: ..." lines), run_errors, per-graph detail.
// Top level:
//   circuit_breaker_requests  requests the vllm simulator received before a run with a model name not in
//                             its models list stopped, the larger of the two graphs'; with the error's
//                             one-line message and whether the run stopped with an error at all.
// Every graph run is bounded by RUN_TIMEOUT_MS (an abort signal); RXSYNTH_OUTAGE_SECONDS is set to 20 so an
// unforeseen outage stops a run instead of holding it 300 s. Writes benchmarks/results/endpoints.json.
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { buildGraph, errorMessage, readRows, run, type GraphDefinition, type GraphOptionValues } from "../src/index.ts";
import { SIM_PROFILES, startSimulator, type SimProfileName, type Simulator } from "../src/sim/index.ts";
import quickstart from "../graphs/quickstart.ts";
import qaFromDocuments from "../graphs/qa-from-documents.ts";

const SEED = 20251207;
const MODEL = "gpt-4o-mini";
const BAD_MODEL = "gpt-4o-mini-typo";
const QUICKSTART_TARGET = 50;
const LATENCY_MS = 5;
const RUN_TIMEOUT_MS = 90_000;
const CHAIN_OF_THOUGHT_MARKERS = ["Let me think about this step by step", 'A first draft would be {"draft": true}', "<think>", "</think>"];
/** Reasons of a bad LLM answer or call (readAnswer's, and llm_error); judges prefix them with judge_. */
const ALWAYS_WRONG = new Set(["llm_error", "incomplete", "empty", "truncated"]);

interface GraphCase {
  readonly label: string;
  readonly definition: GraphDefinition;
  readonly overrides: GraphOptionValues;
}
const GRAPHS: readonly GraphCase[] = [
  { label: "quickstart", definition: quickstart as unknown as GraphDefinition, overrides: { target: QUICKSTART_TARGET } },
  { label: "qa-from-documents", definition: qaFromDocuments as unknown as GraphDefinition, overrides: {} },
];

type Row = {
  id?: unknown;
  data?: Record<string, unknown>;
  provenance?: { steps?: Array<Record<string, unknown>> };
  reject?: { operator?: unknown; reason?: unknown; message?: unknown; raw?: unknown };
};

const round = (value: number, digits = 3) => Number(value.toFixed(digits));
const oneLine = (text: string, max = 300) => {
  const line = text.replace(/\s+/g, " ").trim();
  return line.length > max ? `${line.slice(0, max)}...` : line;
};

/** Every string inside a value (objects and arrays walked). */
function strings(value: unknown, out: string[] = []): string[] {
  if (typeof value === "string") out.push(value);
  else if (Array.isArray(value)) for (const item of value) strings(item, out);
  else if (value !== null && typeof value === "object") for (const item of Object.values(value)) strings(item, out);
  return out;
}
const hasChainOfThought = (value: unknown) => strings(value).some((s) => CHAIN_OF_THOUGHT_MARKERS.some((marker) => s.includes(marker)));

/** Why a reject counts as wrong (see the header), or undefined when it does not. */
function wrongBecause(row: Row, simulatorRefusals: number): string | undefined {
  const reject = row.reject ?? {};
  const reason = String(reject.reason ?? "").replace(/^judge_/, "");
  const operator = String(reject.operator ?? "");
  if (hasChainOfThought([reject.raw, reject.message, row.data])) return "chain_of_thought";
  if (ALWAYS_WRONG.has(reason)) return reason;
  if (reason === "refusal" && !/refusal/.test(operator) && simulatorRefusals === 0) return "refusal";
  return undefined;
}

interface GraphResult {
  graph: string;
  status: string;
  accepted: number;
  rejected: number;
  requests: number;
  seconds: number;
  reject_reasons: Record<string, number>;
  wrong_rejects: number;
  wrong_reject_reasons: Record<string, number>;
  wrong_reject_sample?: { graph: string; operator: string; reason: string; message: string; raw: string; id: string };
  reasoning_leaked: number;
  leaked_sample?: { graph: string; id: string; data: string };
  reasoning_in_steps: number;
  adaptations: string[];
  error?: string;
}

const ENV_KEYS = ["OPENAI_BASE_URL", "OPENAI_API_KEY", "RXSYNTH_MODEL", "RXSYNTH_PRICE", "RXSYNTH_OUTAGE_SECONDS"] as const;
const savedEnv = Object.fromEntries(ENV_KEYS.map((key) => [key, process.env[key]]));
function pointAt(sim: Simulator, model: string): void {
  process.env.OPENAI_BASE_URL = sim.url;
  process.env.RXSYNTH_MODEL = model;
  process.env.OPENAI_API_KEY = "sk-bench-endpoints";
  process.env.RXSYNTH_OUTAGE_SECONDS = "20";
  delete process.env.RXSYNTH_PRICE;
}
function restoreEnv(): void {
  for (const key of ENV_KEYS) {
    if (savedEnv[key] === undefined) delete process.env[key];
    else process.env[key] = savedEnv[key];
  }
}

/** Builds and runs one graph against `sim` into a new folder, cache off; reads back what it wrote. */
async function runOne(dir: string, sim: Simulator, c: GraphCase, model: string) {
  const out = await mkdtemp(join(dir, `${c.label}-`));
  const logs: string[] = [];
  const log = (line: string) => logs.push(line);
  const before = sim.stats();
  const started = performance.now();
  let status = "error";
  let error: unknown;
  try {
    const graph = await buildGraph(c.definition, c.overrides, { log, out, cache: false });
    const summary = await run(graph, { out, log, signal: AbortSignal.timeout(RUN_TIMEOUT_MS) });
    status = summary.status;
  } catch (caught) {
    error = caught;
  }
  const seconds = (performance.now() - started) / 1_000;
  const after = sim.stats();
  // What was committed, also after a failed run (shards written before it stopped).
  const read = (prefix: string) => readRows(out, { prefix }).catch(() => [] as Record<string, unknown>[]);
  const rows = (await read("part")) as Row[];
  const rejects = (await read("rejects")) as Row[];
  return { out, logs, status, error, seconds, rows, rejects, requests: after.requests - before.requests, refusals: after.refusals - before.refusals };
}

/** Every family the simulator plays, and a server that accepts json_schema and ignores it. */
const SERVERS: readonly { readonly name: string; readonly profile: SimProfileName; readonly ignoreJsonSchema?: boolean }[] = [
  ...SIM_PROFILES.map((profile) => ({ name: profile, profile })),
  { name: "ignores-json-schema", profile: "openai", ignoreJsonSchema: true },
];

async function profileRun(dir: string, server: (typeof SERVERS)[number]): Promise<GraphResult[]> {
  const sim = await startSimulator({ profile: server.profile, ignoreJsonSchema: server.ignoreJsonSchema, models: [MODEL], seed: SEED, latencyMs: LATENCY_MS });
  pointAt(sim, MODEL);
  const results: GraphResult[] = [];
  try {
    for (const c of GRAPHS) {
      const r = await runOne(dir, sim, c, MODEL);
      const reasons: Record<string, number> = {};
      const wrongReasons: Record<string, number> = {};
      let wrongSample: GraphResult["wrong_reject_sample"];
      for (const row of r.rejects) {
        const key = `${String(row.reject?.operator)}:${String(row.reject?.reason)}`;
        reasons[key] = (reasons[key] ?? 0) + 1;
        const why = wrongBecause(row, r.refusals);
        if (!why) continue;
        const label = `${key}${why === "chain_of_thought" ? " (chain of thought)" : ""}`;
        wrongReasons[label] = (wrongReasons[label] ?? 0) + 1;
        wrongSample ??= {
          graph: c.label,
          operator: String(row.reject?.operator),
          reason: String(row.reject?.reason),
          message: oneLine(String(row.reject?.message ?? "")),
          raw: oneLine(String(row.reject?.raw ?? ""), 200),
          id: String(row.id),
        };
      }
      const leaked = r.rows.filter((row) => hasChainOfThought(row.data));
      const inSteps = r.rows.filter((row) => (row.provenance?.steps ?? []).some((step) => typeof step.reasoning === "string" && step.reasoning.length > 0)).length;
      results.push({
        graph: c.label,
        status: r.status,
        accepted: r.rows.length,
        rejected: r.rejects.length,
        requests: r.requests,
        seconds: round(r.seconds, 2),
        reject_reasons: reasons,
        wrong_rejects: Object.values(wrongReasons).reduce((a, b) => a + b, 0),
        wrong_reject_reasons: wrongReasons,
        ...(wrongSample ? { wrong_reject_sample: wrongSample } : {}),
        reasoning_leaked: leaked.length,
        ...(leaked[0] ? { leaked_sample: { graph: c.label, id: String(leaked[0].id), data: oneLine(JSON.stringify(leaked[0].data), 300) } } : {}),
        reasoning_in_steps: inSteps,
        adaptations: [...new Set(r.logs.filter((line) => line.startsWith("llm: ")).map((line) => line.replace(/127\.0\.0\.1:\d+/g, "sim")))],
        ...(r.error !== undefined ? { error: oneLine(errorMessage(r.error), 600) } : {}),
      });
      await rm(r.out, { recursive: true, force: true });
    }
  } finally {
    await sim.close();
    restoreEnv();
  }
  return results;
}

/** A strict profile (vllm) that does not serve BAD_MODEL: requests until the run stops. */
async function circuitBreaker(dir: string, c: GraphCase) {
  const sim = await startSimulator({ profile: "vllm", models: [MODEL], seed: SEED, latencyMs: LATENCY_MS });
  pointAt(sim, BAD_MODEL);
  try {
    const r = await runOne(dir, sim, c, BAD_MODEL);
    await rm(r.out, { recursive: true, force: true });
    return {
      graph: c.label,
      requests: r.requests,
      stopped_with_error: r.error !== undefined,
      error_type: r.error instanceof Error ? r.error.constructor.name : r.error === undefined ? null : typeof r.error,
      message: r.error === undefined ? `no error: run ended ${r.status} with ${r.rows.length} accepted, ${r.rejects.length} rejected` : oneLine(errorMessage(r.error), 400),
      seconds: round(r.seconds, 2),
    };
  } finally {
    await sim.close();
    restoreEnv();
  }
}

function sumReasons(parts: ReadonlyArray<Record<string, number>>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const part of parts) for (const [key, n] of Object.entries(part)) out[key] = (out[key] ?? 0) + n;
  return out;
}

async function main() {
  const dir = await mkdtemp(join(tmpdir(), "rxsynth-endpoints-bench-"));
  const startedAll = performance.now();
  const profiles: Record<string, Record<string, unknown>> = {};
  const table: Record<string, Record<string, string | number>> = {};
  try {
    for (const server of SERVERS) {
      const profile = server.name;
      const started = performance.now();
      const graphs = await profileRun(dir, server);
      const accepted = graphs.reduce((a, g) => a + g.accepted, 0);
      const rejected = graphs.reduce((a, g) => a + g.rejected, 0);
      const requests = graphs.reduce((a, g) => a + g.requests, 0);
      const wrong = graphs.reduce((a, g) => a + g.wrong_rejects, 0);
      const leaked = graphs.reduce((a, g) => a + g.reasoning_leaked, 0);
      const wrongReasons = sumReasons(graphs.map((g) => g.wrong_reject_reasons));
      const errors = graphs.filter((g) => g.error).map((g) => `${g.graph}: ${g.error}`);
      profiles[profile] = {
        accepted,
        wrong_rejects: wrong,
        reasoning_leaked: leaked,
        requests_per_sample: accepted + rejected > 0 ? round(requests / (accepted + rejected)) : null,
        rejected,
        requests,
        wrong_reject_reasons: wrongReasons,
        ...(graphs.find((g) => g.wrong_reject_sample) ? { wrong_reject_sample: graphs.find((g) => g.wrong_reject_sample)!.wrong_reject_sample } : {}),
        ...(graphs.find((g) => g.leaked_sample) ? { leaked_sample: graphs.find((g) => g.leaked_sample)!.leaked_sample } : {}),
        reject_reasons: sumReasons(graphs.map((g) => g.reject_reasons)),
        reasoning_in_steps: graphs.reduce((a, g) => a + g.reasoning_in_steps, 0),
        adaptations: [...new Set(graphs.flatMap((g) => g.adaptations))],
        run_errors: errors,
        graphs: Object.fromEntries(graphs.map((g) => [g.graph, g])),
        seconds: round((performance.now() - started) / 1_000, 2),
      };
      const q = graphs[0]!;
      const d = graphs[1]!;
      table[profile] = {
        accepted: `${accepted} (${q.accepted}+${d.accepted})`,
        wrong_rejects: wrong,
        reasoning_leaked: leaked,
        requests_per_sample: accepted + rejected > 0 ? round(requests / (accepted + rejected)) : "n/a",
        rejected,
        requests,
        in_steps: profiles[profile]!.reasoning_in_steps as number,
        status: graphs.map((g) => g.status).join("/"),
        s: round((performance.now() - started) / 1_000, 1),
      };
      console.log(`${profile}: ${accepted} accepted, ${wrong} wrong rejects, ${leaked} leaked, ${requests} requests, ${table[profile]!.s} s`);
    }

    console.log(`circuit breaker: vllm serving [${MODEL}], graphs asking for ${BAD_MODEL}`);
    const breakers = [];
    for (const c of GRAPHS) breakers.push(await circuitBreaker(dir, c));
    const circuitBreakerRequests = Math.max(...breakers.map((b) => b.requests));
    const totalSeconds = (performance.now() - startedAll) / 1_000;

    console.log("\nper profile (accepted = quickstart + qa-from-documents; status of each run)");
    console.table(table);
    console.table(Object.fromEntries(breakers.map((b) => [b.graph, { requests: b.requests, stopped_with_error: b.stopped_with_error, seconds: b.seconds }])));
    for (const b of breakers) console.log(`circuit breaker (${b.graph}): ${b.message}`);

    const misses: string[] = [];
    for (const [name, p] of Object.entries(profiles)) {
      if (!((p.accepted as number) > 0)) misses.push(`${name}: accepted ${String(p.accepted)}`);
      if (p.wrong_rejects !== 0) misses.push(`${name}: wrong_rejects ${String(p.wrong_rejects)} ${JSON.stringify(p.wrong_reject_reasons)}; e.g. ${JSON.stringify(p.wrong_reject_sample)}`);
      if (p.reasoning_leaked !== 0) misses.push(`${name}: reasoning_leaked ${String(p.reasoning_leaked)}; e.g. ${JSON.stringify(p.leaked_sample)}`);
      for (const e of p.run_errors as string[]) misses.push(`${name}: run error ${e}`);
    }
    if (!(circuitBreakerRequests <= 10)) misses.push(`circuit_breaker_requests ${circuitBreakerRequests}`);
    for (const b of breakers) if (!b.stopped_with_error) misses.push(`circuit breaker (${b.graph}): the run did not stop: ${b.message}`);
    // Not a target (accepted is per profile), but worth a line: a graph that accepted nothing on a profile.
    const warnings: string[] = [];
    for (const [name, p] of Object.entries(profiles)) {
      for (const g of Object.values(p.graphs as Record<string, GraphResult>)) if (g.accepted === 0) warnings.push(`${name}: ${g.graph} accepted 0 rows (${JSON.stringify(g.reject_reasons)})`);
    }
    for (const miss of misses) console.log(`MISS ${miss}`);
    for (const warning of warnings) console.log(`WARN ${warning}`);
    console.log(`\n${misses.length === 0 ? "all targets met" : `${misses.length} target misses`}; total ${round(totalSeconds, 1)} s`);

    const result = {
      profiles,
      circuit_breaker_requests: circuitBreakerRequests,
      circuit_breaker: breakers,
      targets_met: misses.length === 0,
      misses,
      warnings,
      settings: { seed: SEED, model: MODEL, bad_model: BAD_MODEL, quickstart_target: QUICKSTART_TARGET, latency_ms: LATENCY_MS, faults: "none", cache: "off" },
      notes: [
        "one in-process simulator per profile, shared by both graphs' runs; requests counted from its stats() before and after each run",
        "wrong_rejects: chain of thought in a reject's raw/message/data (any reason); llm_error, incomplete, empty, truncated (judge_ prefix stripped) always, as the simulator injects no faults; refusal from an LLM call while the simulator sent none",
        "reasoning_leaked: accepted rows with 'Let me think about this step by step', the decoy draft, <think> or </think> in any string of their data; reasoning_in_steps counts rows whose provenance steps keep it apart",
        "circuit_breaker_requests: the larger of the two graphs' request counts against vllm with a model name not in its models list",
      ],
      total_seconds: round(totalSeconds, 1),
      node: process.version,
      measured_at: new Date().toISOString(),
    };
    const results = fileURLToPath(new URL("./results/", import.meta.url));
    await mkdir(results, { recursive: true });
    await writeFile(`${results}endpoints.json`, `${JSON.stringify(result, null, 2)}\n`);
    console.log("wrote benchmarks/results/endpoints.json");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
