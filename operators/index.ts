// The operator library, one concept a file; users import from "rxsynth/operators".
export { z } from "zod";
export * from "./filter/index.ts";
export { executeFilter, type ExecuteFilterOptions } from "./filter/execute.ts";
export * from "./generate/index.ts";
export * from "./generate/template-records.ts";
export * from "./dedup/exact-dedup.ts";
export * from "./dedup/near-dedup.ts";
export * from "./dedup/cluster-duplicates.ts";
export * from "./dedup/minhash.ts";
export * from "./dedup/lsh.ts";
export * from "./diversity/diversity-tracker.ts";
export * from "./diversity/rouge-filter.ts";
export * from "./diversity/rouge.ts";
