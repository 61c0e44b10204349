import { describe, expect, it } from "vitest";
import { z } from "zod";
import { collect, ConfigError, createSample } from "../../../src/index.ts";
import { formatFilter } from "../../../operators/filter/index.ts";

const Task = z.object({
  instruction: z.string().min(1),
  instances: z.array(z.object({ input: z.string(), output: z.string() })).min(1),
});

function tasks(items: Record<string, unknown>[]) {
  return items.map((data, i) => createSample({ id: `t${i}`, data, source: "test" }));
}

describe("formatFilter", () => {
  it("keeps data that matches the schema and drops the rest, naming the failing path", async () => {
    const { out, rejects } = await collect(
      formatFilter({ schema: Task }),
      tasks([
        { instruction: "Add.", instances: [{ input: "1 2", output: "3" }] },
        { instruction: "Add.", instances: [{ input: "1 2", output: 3 }] },
        { instances: [] },
        { instruction: "Add.", instances: [] },
      ]),
    );
    expect(out.map((s) => s.id)).toEqual(["t0"]);
    expect(rejects.map((r) => [r.sample.id, r.reason, r.message])).toEqual([
      ["t1", "schema_mismatch", "instances.0.output: expected string, received number"],
      ["t2", "schema_mismatch", "instruction: expected string, received undefined (+1 more)"],
      ["t3", "schema_mismatch", "instances: Too small: expected array to have >=1 items"],
    ]);
  });

  it("passes matching samples through unchanged, without coercion or a step", async () => {
    const data = { instruction: "Add.", instances: [{ input: "1", output: "1" }], extra: true };
    const { out } = await collect(formatFilter({ schema: Task.loose() }), tasks([data]));
    expect(out[0]!.data).toBe(data);
    expect(out[0]!.provenance.steps).toEqual([]);
  });

  it("hashes the schema into its params, so a changed schema changes provenance", () => {
    const a = formatFilter({ schema: Task });
    const b = formatFilter({ schema: Task.extend({ category: z.string() }) });
    expect(a.meta.paramsHash).not.toBe(b.meta.paramsHash);
    expect(a.meta.reads).toEqual(["instruction", "instances"]);
  });

  it("refuses something that is not a zod schema", () => {
    expect(() => formatFilter({ schema: {} as never })).toThrow(ConfigError);
  });
});
