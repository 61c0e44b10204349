import { inspect } from "node:util";
import type { Sample } from "../sample.ts";

/**
 * Where a sample holds a value no sink can write (a function, a symbol, a cycle, a class instance such
 * as a Map), as a field path like `data.meta.handler`; undefined when every value is plain data.
 * Checked before a row reaches a sink, so one bad value rejects one sample instead of failing a batch
 * (and, with it, the run). Cost: one walk over values the sink is about to serialise anyway.
 */
export function unencodablePath(sample: Sample): string | undefined {
  const seen = new Set<object>();
  const walk = (value: unknown, path: string): string | undefined => {
    switch (typeof value) {
      case "string":
      case "number":
      case "boolean":
      case "bigint":
      case "undefined":
        return undefined;
      case "function":
        return `${path} (a function)`;
      case "symbol":
        return `${path} (a symbol)`;
    }
    if (value === null) return undefined;
    const object = value as object;
    if (ArrayBuffer.isView(object)) return undefined;
    if (seen.has(object)) return `${path} (a reference cycle)`;
    const prototype = Object.getPrototypeOf(object) as unknown;
    const isArray = Array.isArray(object);
    if (!isArray && prototype !== Object.prototype && prototype !== null) {
      return `${path} (a ${object.constructor?.name ?? "class"} instance, not plain data)`;
    }
    seen.add(object);
    if (isArray) {
      for (let i = 0; i < (object as unknown[]).length; i++) {
        const found = walk((object as unknown[])[i], `${path}[${i}]`);
        if (found) return found;
      }
    } else {
      for (const [key, child] of Object.entries(object)) {
        const found = walk(child, `${path}.${key}`);
        if (found) return found;
      }
    }
    seen.delete(object);
    return undefined;
  };
  return walk(sample.data, "data") ?? walk(sample.scores, "scores") ?? walk(sample.provenance, "provenance");
}

/** A readable, bounded rendering of a value that cannot be encoded, kept as the reject's raw text. */
export function describeUnencodable(value: unknown): string {
  return inspect(value, { depth: 4, breakLength: Infinity, maxStringLength: 2000 }).slice(0, 4000);
}
