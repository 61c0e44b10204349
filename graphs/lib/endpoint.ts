import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { GraphEnvironment } from "../../src/index.ts";
import { stableHash } from "../../src/hash.ts";
import {
  PRICES_AS_OF,
  SIMULATOR_MODEL,
  FLEET_DEFAULTS,
  createLlm,
  defaultCacheDir,
  parseBaseUrls,
  describePrice,
  lookupPrice,
  resolvePrices,
  type Llm,
  type ModelPrice,
} from "../../src/llm/index.ts";
import { startSimulator, type SimulatorOptions } from "../../src/sim/index.ts";
import { batchOrOnline } from "../../src/llm/batch/index.ts";

export interface EndpointOptions {
  /** Model to call on a real endpoint; default RXSYNTH_MODEL, else gpt-4o-mini. */
  readonly model?: string;
  /** Most requests in flight (to each server, when OPENAI_BASE_URL lists a fleet). Default 32. */
  readonly concurrency?: number;
  readonly seed?: number;
  /**
   * Price of the model, over the built-in table (PRICES_AS_OF): "input=<usd>,output=<usd>[,cached=<usd>]"
   * per 1M tokens, or JSON by model name; RXSYNTH_PRICE wins over it. "" or unset: the table.
   */
  readonly price?: string;
  /** Simulator settings used when no endpoint is configured (tests pass faults or latency here). */
  readonly simulator?: SimulatorOptions;
}

export interface Endpoint {
  readonly llm: Llm;
  /** True when the answers come from the built-in simulator, not a model. */
  readonly simulated: boolean;
  dispose(): Promise<void>;
}

/** Where the model's price comes from, said once when the endpoint opens. */
function priceNote(model: string, overrides: Readonly<Record<string, ModelPrice>>): string {
  const own = lookupPrice(model, overrides);
  if (own) return `price ${describePrice(own)}, from ${process.env.RXSYNTH_PRICE ? "RXSYNTH_PRICE" : "the price option"}`;
  const listed = lookupPrice(model);
  if (listed) return `price ${describePrice(listed)}, list price as of ${PRICES_AS_OF} (RXSYNTH_PRICE overrides)`;
  return `no known price, so cost unknown: set RXSYNTH_PRICE="input=<usd>,output=<usd>" (per 1M tokens)`;
}

/** File in the run folder that says which response cache the run used (not part of the run's identity). */
export const CACHE_RECORD_FILE = "cache.json";

/**
 * The response cache of a run: the user's cache folder (RXSYNTH_CACHE_DIR, else ~/.cache/rxsynth/llm),
 * shared by every run, so a new output folder reuses the answers already paid for; none with --no-cache
 * or RXSYNTH_CACHE_DIR=off. Said in one line and recorded in the run folder's cache.json.
 */
async function runCache(env: GraphEnvironment): Promise<string | false> {
  const path = env.cache === false ? false : defaultCacheDir();
  if (env.out) {
    await mkdir(env.out, { recursive: true });
    const file = join(env.out, CACHE_RECORD_FILE);
    // A rerun of a finished folder must change no file: the record is rewritten only when the path changes.
    const recorded = await readFile(file, "utf8").then((text) => (JSON.parse(text) as { path?: unknown }).path, () => undefined);
    if (recorded !== (path || null)) await writeFile(file, `${JSON.stringify({ path: path || null, at: new Date().toISOString() }, null, 2)}\n`);
  }
  env.log(path ? `response cache: ${path} (shared by runs; --no-cache bypasses it, \`rxsynth cache info\` sizes it)` : "response cache: off (every request is sent)");
  return path;
}

/**
 * The LLM a ready graph talks to: OPENAI_BASE_URL (with OPENAI_API_KEY) when set, otherwise the built-in
 * OpenAI-compatible simulator started in-process, so every graph runs offline. Responses are cached in
 * the user's cache folder (see runCache), keyed by endpoint and request, so rerunning, resuming or
 * re-filtering a graph into a new folder sends no request twice.
 */
export async function openEndpoint(env: GraphEnvironment, options: EndpointOptions = {}): Promise<Endpoint> {
  const concurrency = options.concurrency ?? 32;
  const baseURL = process.env.OPENAI_BASE_URL;
  if (baseURL) {
    const model = options.model ?? process.env.RXSYNTH_MODEL ?? "gpt-4o-mini";
    const prices = resolvePrices({ model, option: options.price });
    const servers = parseBaseUrls(baseURL, "OPENAI_BASE_URL").map((server) => server.url);
    // A fleet (several base URLs) is one endpoint named by RXSYNTH_FLEET_NAME, not by its list of servers:
    // a resumed run with a ninth server is the same run, and the answers already cached still count. One
    // server with RXSYNTH_FLEET_NAME set is a fleet of one, so a run started on it can grow into a fleet.
    const named = process.env.RXSYNTH_FLEET_NAME?.trim() || undefined;
    const fleetName = servers.length > 1 || named !== undefined ? (named ?? FLEET_DEFAULTS.name) : undefined;
    const endpointName = fleetName !== undefined ? `fleet:${fleetName}` : servers[0]!;
    const cache = await runCache(env);
    // Workers of a scaled-out run draw on one RPM/TPM budget for the endpoint, not one each.
    const endpointKey = `${endpointName.replace(/\/+$/, "")} ${model}`;
    const buckets = env.shared?.rateBuckets(endpointKey);
    // ... and on one concurrency: `concurrency` is the endpoint's (each server's, in a fleet), whatever the number of workers.
    const shared = env.shared;
    const slots = fleetName === undefined ? shared?.concurrency(endpointKey, concurrency) : undefined;
    const serverSlots = shared && fleetName !== undefined ? (url: string) => shared.concurrency(`${url.replace(/\/+$/, "")} ${model}`, concurrency) : undefined;
    // ... and a worker that joins late meters its first requests by the limits the others learned.
    const learnedLimits = env.shared?.learnedLimits(endpointKey);
    const llm = batchOrOnline(env)({
      model,
      baseURL,
      concurrency,
      cache,
      seed: options.seed,
      prices,
      log: env.log,
      buckets,
      slots,
      serverSlots,
      learnedLimits,
      spend: env.costGate,
      ...(fleetName !== undefined ? { fleet: { name: fleetName } } : {}),
    });
    env.identify?.("endpoint", { baseURL: endpointName, model });
    const where = fleetName !== undefined ? `fleet "${fleetName}" of ${servers.length} server${servers.length === 1 ? "" : "s"} (${servers.join(", ")}; ${concurrency} in flight each)` : baseURL;
    env.log(`LLM endpoint: ${where} (model ${llm.model}; ${priceNote(model, prices)})`);
    return { llm, simulated: false, dispose: releaseOnce(env, () => llm.close()) };
  }
  // Checked here too, so a malformed setting fails on the simulator as it would on a real endpoint.
  resolvePrices({ model: SIMULATOR_MODEL, option: options.price });
  const simulatorOptions: SimulatorOptions = { port: 0, latencyMs: 5, seed: options.seed, ...options.simulator };
  const cache = await runCache(env);
  const simulator = await startSimulator(simulatorOptions);
  const closeSimulator = releaseOnce(env, () => simulator.close());
  // Its port changes every run; its answers depend on its seed and the content faults it injects.
  const endpointId = `builtin-simulator:${stableHash({ seed: simulatorOptions.seed ?? 0, faults: simulatorOptions.faults ?? {} })}`;
  const llm = batchOrOnline(env)({ model: SIMULATOR_MODEL, baseURL: simulator.url, endpointId, concurrency, cache, seed: options.seed, simulator: true, log: env.log });
  // The simulator's port changes every run; what answers is the same simulator with the same seed.
  env.identify?.("endpoint", { baseURL: "builtin-simulator", model: SIMULATOR_MODEL });
  env.log(`no OPENAI_BASE_URL set: using the built-in simulator at ${simulator.url} (placeholder answers; set OPENAI_BASE_URL and OPENAI_API_KEY for a real model)`);
  return {
    llm,
    simulated: true,
    dispose: releaseOnce(env, async () => {
      await llm.close();
      await closeSimulator();
    }),
  };
}

/**
 * A release that runs at most once, registered with the graph's environment so it runs even when the
 * graph's build fails after this point (a started simulator otherwise keeps the process alive).
 */
function releaseOnce(env: GraphEnvironment, release: () => Promise<void>): () => Promise<void> {
  let done: Promise<void> | undefined;
  const once = () => (done ??= release());
  env.onDispose?.(once);
  return once;
}
