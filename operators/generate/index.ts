export { generate, GENERATE_DEFAULTS } from "./generate.ts";
export type { GenerateOptions, GenerateParser, GenerateWrite } from "./generate.ts";
