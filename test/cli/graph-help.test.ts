import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { defineGraph } from "../../src/index.ts";
import { graphOptionsHelp, optionDocs } from "../../src/cli/graph-help.ts";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "rxsynth-graph-help-"));
  await writeFile(
    join(dir, "base.ts"),
    `export const baseDefaults = {
  /** From the base. */
  alpha: 1,
  /** A doc with } and "quotes". */
  beta: "x{'",
};
`,
  );
  await writeFile(
    join(dir, "graph.ts"),
    `import { defineGraph } from "rxsynth";
import { baseDefaults as base } from "./base.js";

export const defaults = {
  ...base,
  /**
   * Spread over
   * two lines.
   */
  gamma: /[{"]/.test("a") ? \`\${"}"}\` : "", /** after a value: not a doc */
  /** Nested. */
  delta: { inner: 1, /** not top-level */ deep: 2 },
  // a line comment is no doc
  epsilon: 3,
  /** Quoted key. */
  "quoted-key": 4,
  /** Own doc wins. */
  alpha: 2,
};

export default defineGraph({ name: "fixture", description: "d", defaults, build: () => ({ sources: [], operators: [] }) });
`,
  );
  await writeFile(
    join(dir, "inline.ts"),
    `export default defineGraph({
  name: "inline",
  description: "d",
  defaults: { /** Inline doc. */ count: 5, other: "x" },
  build: () => ({ sources: [], operators: [] }),
});
`,
  );
  await writeFile(join(dir, "extends.ts"), `import { quickstart } from "rxsynth/graphs";\nexport default extendGraph(quickstart, { insert: [] });\n`);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("optionDocs", () => {
  it("reads the doc comment above each top-level key of the defaults object, following spreads", () => {
    const docs = optionDocs(join(dir, "graph.ts"));
    expect(Object.fromEntries(docs)).toEqual({
      alpha: "Own doc wins.",
      beta: 'A doc with } and "quotes".',
      gamma: "Spread over two lines.",
      delta: "Nested.",
      "quoted-key": "Quoted key.",
    });
  });

  it("reads an inline defaults object", () => {
    expect(Object.fromEntries(optionDocs(join(dir, "inline.ts")))).toEqual({ count: "Inline doc." });
  });

  it("falls back to the ready graph of the same name for a file that extends it", () => {
    const docs = optionDocs(join(dir, "extends.ts"), "quickstart");
    expect(docs.get("target")).toBeTruthy();
    expect(docs.get("seedTasks")).toMatch(/^Seed tasks/);
  });
});

describe("graphOptionsHelp", () => {
  it("lists every option with its default, its doc where there is one, and how to set it", () => {
    const definition = defineGraph({
      name: "fixture",
      description: "d",
      defaults: { target: 10, path: "in.jsonl", labels: ["a", "b"], flag: false },
      build: () => ({ sources: [], operators: [] }),
    });
    const text = graphOptionsHelp(definition, new Map([["target", "Rows to accept."]]), "my-graph.ts");
    expect(text.split("\n")).toEqual([
      "Options of graph fixture (set with --set key=value, or from a file with --config):",
      "  target  10",
      "          Rows to accept.",
      '  path    "in.jsonl"',
      '  labels  ["a","b"]',
      "  flag    false",
      "",
      "Example: rxsynth run my-graph.ts --set target=10",
    ]);
  });
});
