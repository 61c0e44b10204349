import { join } from "node:path";
import type { GraphEnvironment } from "../../src/index.ts";
import { createLlm, type Llm } from "../../src/llm/index.ts";
import { startSimulator, type SimulatorOptions } from "../../src/sim/index.ts";

export interface EndpointOptions {
  /** Model to call on a real endpoint; default RXSYNTH_MODEL, else gpt-4o-mini. */
  readonly model?: string;
  /** Most requests in flight. Default 32. */
  readonly concurrency?: number;
  readonly seed?: number;
  /** Simulator settings used when no endpoint is configured (tests pass faults or latency here). */
  readonly simulator?: SimulatorOptions;
}

export interface Endpoint {
  readonly llm: Llm;
  /** True when the answers come from the built-in simulator, not a model. */
  readonly simulated: boolean;
  dispose(): Promise<void>;
}

/**
 * The LLM a ready graph talks to: OPENAI_BASE_URL (with OPENAI_API_KEY) when set, otherwise the built-in
 * OpenAI-compatible simulator started in-process, so every graph runs offline. Responses are cached in
 * the run's output folder, so rerunning or resuming a graph sends no request twice.
 */
export async function openEndpoint(env: GraphEnvironment, options: EndpointOptions = {}): Promise<Endpoint> {
  const cache = env.out ? join(env.out, "llm-cache") : false;
  const concurrency = options.concurrency ?? 32;
  const baseURL = process.env.OPENAI_BASE_URL;
  if (baseURL) {
    const llm = createLlm({ model: options.model ?? process.env.RXSYNTH_MODEL ?? "gpt-4o-mini", baseURL, concurrency, cache, seed: options.seed, log: env.log });
    env.log(`LLM endpoint: ${baseURL} (model ${llm.model})`);
    return { llm, simulated: false, dispose: () => llm.close() };
  }
  const simulator = await startSimulator({ port: 0, latencyMs: 5, seed: options.seed, ...options.simulator });
  const llm = createLlm({ model: "rxsynth-sim", baseURL: simulator.url, concurrency, cache, seed: options.seed, log: env.log });
  env.log(`no OPENAI_BASE_URL set: using the built-in simulator at ${simulator.url} (placeholder answers; set OPENAI_BASE_URL and OPENAI_API_KEY for a real model)`);
  return {
    llm,
    simulated: true,
    async dispose() {
      await llm.close();
      await simulator.close();
    },
  };
}
