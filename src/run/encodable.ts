import { inspect } from "node:util";
import type { Sample } from "../sample.ts";

/**
 * Where a sample holds a value no sink can write (a function, a symbol, a cycle, a class instance such
 * as a Map), as a field path like `data.meta.handler`; undefined when every value is plain data.
 * Checked before a row reaches a sink, so one bad value rejects one sample instead of failing a batch
 * (and, with it, the run). Cost: one walk over values the sink is about to serialise anyway.
 */
export function unencodablePath(sample: Sample): string | undefined {
  for (const field of CHECKED_FIELDS) {
    const issue = issueIn(sample[field], 0);
    if (issue) return `${field}${issue.path.reverse().join("")} (${issue.what})`;
  }
  return undefined;
}

/** A module constant, so the per-row walk allocates nothing. */
const CHECKED_FIELDS = ["data", "scores", "provenance"] as const;

/** Deeper than any data a sink writes; past it the value is taken for a reference cycle. */
const MAX_DEPTH = 64;

interface Issue {
  readonly what: string;
  /** Path segments, innermost first (built only on the way out of a failure: nothing allocated otherwise). */
  readonly path: string[];
}

// A depth bound instead of a set of visited objects, and no path strings until something is wrong:
// the walk allocates nothing per sample on the hot path.
function issueIn(value: unknown, depth: number): Issue | undefined {
  switch (typeof value) {
    case "string":
    case "number":
    case "boolean":
    case "bigint":
    case "undefined":
      return undefined;
    case "function":
      return { what: "a function", path: [] };
    case "symbol":
      return { what: "a symbol", path: [] };
  }
  if (value === null) return undefined;
  if (depth >= MAX_DEPTH) return { what: `nested deeper than ${MAX_DEPTH} levels: a reference cycle?`, path: [] };
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = issueIn(value[i], depth + 1);
      if (found) {
        found.path.push(`[${i}]`);
        return found;
      }
    }
    return undefined;
  }
  if (ArrayBuffer.isView(value)) return undefined;
  const prototype = Object.getPrototypeOf(value) as unknown;
  if (prototype !== Object.prototype && prototype !== null) {
    return { what: `a ${(value as object).constructor?.name ?? "class"} instance, not plain data`, path: [] };
  }
  for (const key in value as Record<string, unknown>) {
    const found = issueIn((value as Record<string, unknown>)[key], depth + 1);
    if (found) {
      found.path.push(`.${key}`);
      return found;
    }
  }
  return undefined;
}

/** A readable, bounded rendering of a value that cannot be encoded, kept as the reject's raw text. */
export function describeUnencodable(value: unknown): string {
  return inspect(value, { depth: 4, breakLength: Infinity, maxStringLength: 2000 }).slice(0, 4000);
}
