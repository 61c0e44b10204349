import { z } from "zod";
import { ConfigError, defineFilter, drop, type Operator } from "../../src/index.ts";

export interface FormatFilterOptions {
  /** Operator name in metrics and rejects. Default "format_filter". */
  readonly name?: string;
  /** A zod schema over `sample.data`. Its JSON Schema goes into params, so editing it changes provenance. */
  readonly schema: z.ZodType;
}

/** Where and why `data` failed: "instances.0.output: expected string, received number" (+ how many more). */
export function describeIssues(issues: readonly z.core.$ZodIssue[]): string {
  const [first] = issues;
  if (!first) return "invalid";
  const path = first.path.length === 0 ? "<root>" : first.path.map(String).join(".");
  const message = first.message.replace(/^Invalid input: /, "");
  return issues.length > 1 ? `${path}: ${message} (+${issues.length - 1} more)` : `${path}: ${message}`;
}

function schemaParam(schema: z.ZodType): unknown {
  try {
    return z.toJSONSchema(schema, { unrepresentable: "any", io: "input" });
  } catch {
    // Schemas JSON Schema cannot express (cycles through getters, custom types) are identified by kind only.
    return { zod: schema.def.type };
  }
}

/**
 * Drops samples whose data does not match a schema (a generator that returned the wrong shape, a missing
 * field). The sample passes unchanged: validation only, no coercion.
 *
 * Reads: the fields the schema names. Writes: nothing.
 * Drop reasons: `schema_mismatch`, with `message` naming the first failing path.
 *
 * @example
 * formatFilter({ schema: z.object({ instruction: z.string(), instances: z.array(z.object({ output: z.string() })) }) })
 * // rejects { instances: [{ output: 3 }] } with "instruction: expected string, received undefined (+1 more)"
 */
export function formatFilter(options: FormatFilterOptions): Operator {
  const { schema, name = "format_filter" } = options;
  if (!(schema instanceof z.ZodType)) throw new ConfigError("formatFilter: schema must be a zod schema (import { z } from \"zod\")");
  const reads = schema instanceof z.ZodObject ? Object.keys(schema.shape) : [];
  return defineFilter({
    name,
    version: "1",
    params: { schema: schemaParam(schema) },
    reads,
    test(sample) {
      const result = schema.safeParse(sample.data);
      return result.success ? true : drop("schema_mismatch", { message: describeIssues(result.error.issues) });
    },
  });
}
