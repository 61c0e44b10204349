import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { isAbsolute, join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { BUILTIN_DATA_DIR, ConfigError, builtinDataFiles, resolveDataPath, type GraphDefinition } from "../../src/index.ts";
import { MANIFEST_FILE } from "../../src/io/manifest.ts";
import * as graphs from "../../graphs/index.ts";
import { useGraphRuns } from "../support/graph-run.ts";

const root = join(import.meta.dirname, "..", "..");
const { runGraph } = useGraphRuns();

describe("resolveDataPath", () => {
  it("maps builtin:NAME to the package's data/ folder and anything else to an absolute path", () => {
    expect(BUILTIN_DATA_DIR).toBe(join(root, "data") + "/");
    expect(builtinDataFiles()).toEqual([
      "HumanEval.jsonl.gz",
      "augment.jsonl",
      "back-translation.jsonl",
      "code-exec-problems.jsonl",
      "curate.jsonl",
      "instruction-backtranslation.jsonl",
      "math-verified.jsonl",
      "mix-synthetic.jsonl",
      "qa-from-documents.jsonl",
      "self_instruct_seed_tasks.jsonl",
    ]);
    for (const name of builtinDataFiles()) {
      const path = resolveDataPath(`builtin:${name}`);
      expect(path).toBe(join(root, "data", name));
      expect(existsSync(path)).toBe(true);
    }
    expect(resolveDataPath("seeds.jsonl")).toBe(resolve("seeds.jsonl"));
    expect(resolveDataPath("/srv/data/*.parquet")).toBe("/srv/data/*.parquet");
  });

  it("refuses a builtin name that is not there, listing the ones that are", () => {
    for (const value of ["builtin:seed_tasks.jsonl", "builtin:../package.json", "builtin:README.md", "builtin:"]) {
      expect(() => resolveDataPath(value)).toThrow(ConfigError);
    }
    expect(() => resolveDataPath("builtin:seed_tasks.jsonl")).toThrow(
      /no built-in data file "seed_tasks.jsonl".*available: builtin:HumanEval\.jsonl\.gz, builtin:augment\.jsonl, .*builtin:self_instruct_seed_tasks\.jsonl/,
    );
  });
});

describe("ready graphs' data defaults", () => {
  const definitions = Object.values(graphs).filter((value): value is GraphDefinition<never> => typeof value === "object" && value !== null && "defaults" in value);

  it("never refer to anything outside the project, and every builtin: default exists", () => {
    expect(definitions.length).toBeGreaterThan(10);
    for (const definition of definitions) {
      for (const [key, value] of Object.entries(definition.defaults as Record<string, unknown>)) {
        if (typeof value !== "string") continue;
        if (value.startsWith("builtin:")) expect(existsSync(resolveDataPath(value)), `${definition.name}.${key}`).toBe(true);
        if (isAbsolute(value)) expect(resolve(value).startsWith(root + "/"), `${definition.name}.${key} = ${value}`).toBe(true);
      }
    }
  });

  it("are recorded as builtin: in the manifest, so its options hash does not depend on where the clone sits", async () => {
    const { out } = await runGraph(graphs.quickstart, { target: 3 });
    const manifest = JSON.parse(await readFile(join(out, MANIFEST_FILE), "utf8")) as { options: Record<string, unknown>; optionsHash: string };
    expect(manifest.options.seedTasks).toBe("builtin:self_instruct_seed_tasks.jsonl");
    // The hash is taken over these options: with no path in them, a moved clone resumes the same run.
    expect(JSON.stringify(manifest.options)).not.toContain(root);
    for (const value of Object.values(manifest.options)) if (typeof value === "string") expect(isAbsolute(value)).toBe(false);
  });

  it.each([
    ["codeExec", "problemsPath", "builtin:code-exec-problems.jsonl"],
    ["distillRationales", "input", "builtin:self_instruct_seed_tasks.jsonl"],
    ["evolInstruct", "input", "builtin:self_instruct_seed_tasks.jsonl"],
    ["mix", "humanPath", "builtin:self_instruct_seed_tasks.jsonl"],
    ["multiTurn", "openersPath", "builtin:self_instruct_seed_tasks.jsonl"],
    ["preferencePairs", "promptsPath", "builtin:self_instruct_seed_tasks.jsonl"],
    ["quickstart", "seedTasks", "builtin:self_instruct_seed_tasks.jsonl"],
    ["selfInstruct", "seedTasks", "builtin:self_instruct_seed_tasks.jsonl"],
  ] as const)("%s.%s defaults to %s", (graph, option, value) => {
    expect((graphs[graph].defaults as Record<string, unknown>)[option]).toBe(value);
  });
});
