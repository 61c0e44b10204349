// Filters: one concept a file. Add a line per new filter file.
export * from "./text-fields.ts";
export * from "./text-stats.ts";
export * from "./presets.ts";
export * from "./heuristics.ts";
export * from "./refusal.ts";
export * from "./format.ts";
export * from "./judge.ts";
