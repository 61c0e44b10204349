export * from "./errors.ts";
export * from "./hash.ts";
export * from "./sample.ts";
export * from "./context.ts";
export * from "./metrics.ts";
export * from "./operator.ts";
export * from "./collect.ts";
export type * from "./io/types.ts";
