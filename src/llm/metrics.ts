import type { Metrics } from "../metrics.ts";
import type { LlmStats, LlmStatsDelta } from "./types.ts";

/** The run totals an LLM call reports into (`context.metrics.add(key, n)`), by client stat. */
export const LLM_METRIC_KEYS = {
  requests: "llm.requests",
  retries: "llm.retries",
  cacheHits: "llm.cache_hits",
  promptTokens: "llm.prompt_tokens",
  completionTokens: "llm.completion_tokens",
  costUsd: "llm.cost_usd",
  unpricedTokens: "llm.unpriced_tokens",
  simulatedTokens: "llm.simulated_tokens",
  rateLimited: "llm.rate_limited",
  coalesced: "llm.coalesced",
  failures: "llm.failures",
} as const satisfies Record<keyof LlmStats, string>;

/** The run histogram an answered request's wall time is observed into (seconds). */
export const LLM_LATENCY_HISTOGRAM = "llm.latency_seconds";

/** Adds a change of the client's totals to the run's metrics; pass it as `meter` to `llm.chat`. */
export function reportLlmMetrics(metrics: Pick<Metrics, "add" | "observe">, delta: LlmStatsDelta): void {
  for (const [key, value] of Object.entries(delta) as Array<[keyof LlmStatsDelta, number | undefined]>) {
    if (key === "latencySeconds") {
      if (value !== undefined) metrics.observe(LLM_LATENCY_HISTOGRAM, value);
    } else if (value) {
      metrics.add(LLM_METRIC_KEYS[key], value);
    }
  }
}
