export { generate, GENERATE_DEFAULTS } from "./generate.ts";
export type { GenerateOptions, GenerateParser, GenerateWrite } from "./generate.ts";
export { llmMap, asker, LLM_MAP_DEFAULTS } from "./llm-map.ts";
export type { LlmMapOptions, AskOptions, AnswerParser, Answer, Asker } from "./llm-map.ts";
export type { SamplingOptions } from "./sampling.ts";
