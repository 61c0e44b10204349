export { createLlm, LLM_DEFAULTS } from "./client.ts";
export type { Llm, LlmOptions, ChatCallOptions, ModelPrice } from "./client.ts";
export { FLEET_DEFAULTS, parseBaseUrls } from "./fleet.ts";
export type { BaseUrls, FleetOptions, FleetServer, FleetMemberView } from "./fleet.ts";
export type {
  ChatMessage,
  ChatRequest,
  ChatResult,
  ChatChoice,
  ChatUsage,
  FinishReason,
  JsonSchemaFormat,
  ResponseFormat,
  LlmStats,
  LlmStatsDelta,
} from "./types.ts";
export { BUILTIN_PRICES, PRICES_AS_OF, PRICE_FORMAT, SIMULATOR_MODEL, describePrice, lookupPrice, parsePriceSetting, resolvePrices } from "./prices.ts";
export type { PriceSettings } from "./prices.ts";
export { countTokens, countMessageTokens, encodingForModel } from "./tokens.ts";
export { extractJson, looksLikeRefusal } from "./parse.ts";
export { reportLlmMetrics, LLM_METRIC_KEYS } from "./metrics.ts";
export { TokenBucket, AdaptiveConcurrency } from "./limiter.ts";
export { retryAfterMs, backoffMs } from "./retry.ts";
export { structuredFormat, describeIssues, readAnswer, isZodSchema, BAD_ANSWER_REASONS } from "./structured.ts";
export type { StructuredFormat, BadAnswer, BadAnswerReason, AnswerReader, ReadAnswer } from "./structured.ts";
export { ResponseCache, defaultCacheDir, CACHE_OFF } from "./cache.ts";
export { requestCostBound } from "./spend.ts";
export type { SpendBound, SpendGate, SpendSettle } from "./spend.ts";
export type { ResponseStore, CachedChoice } from "./cache.ts";
export { createBatchLlm, BATCH_DEFAULTS } from "./batch/index.ts";
export type { BatchLlm, BatchLlmOptions } from "./batch/index.ts";
