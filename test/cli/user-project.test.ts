import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { acceptedRows, errorLines, ROOT, rxsynth } from "./run-cli.ts";

// A graph file in a user's own project, outside this repository, with rxsynth in its node_modules (a
// symlink to this checkout, as `npm install <folder>` makes). `npm init -y` writes "type": "commonjs".
const ROWS = [{ text: "one" }, { text: "two" }, { text: "three" }];

const moduleGraph = (name: string, helper = "") => `import { defineGraph, jsonlFormat, jsonlSource } from "rxsynth";
${helper ? `import { inputFile } from "${helper}";` : `const inputFile = "in.jsonl";`}

export default defineGraph({
  name: "${name}",
  description: "a user's graph",
  defaults: { input: inputFile },
  build: (options) => ({ sources: [jsonlSource(options.input)], operators: [], output: { formats: [jsonlFormat()] } }),
});
`;

const projects: Record<string, string> = {};
let dir: string;

async function makeProject(type: "commonjs" | "module"): Promise<string> {
  const project = join(dir, type);
  await mkdir(join(project, "node_modules"), { recursive: true });
  await symlink(ROOT, join(project, "node_modules", "rxsynth"), "dir");
  await writeFile(join(project, "package.json"), JSON.stringify({ name: `user-${type}`, version: "1.0.0", type }, null, 2));
  await writeFile(join(project, "in.jsonl"), ROWS.map((row) => JSON.stringify(row)).join("\n") + "\n");
  await writeFile(join(project, "my-graph.ts"), moduleGraph("ts"));
  await writeFile(join(project, "my-graph.mts"), moduleGraph("mts"));
  await writeFile(join(project, "my-graph.js"), moduleGraph("js").replace("(options)", "(/** @type {{input: string}} */ options)"));
  await writeFile(join(project, "helper.ts"), `export const inputFile: string = "in.jsonl";\n`);
  await writeFile(join(project, "with-helper.ts"), moduleGraph("helper", "./helper.ts"));
  await writeFile(
    join(project, "old-style.cjs"),
    `const { defineGraph, jsonlSource } = require("rxsynth");\nmodule.exports = defineGraph({ name: "cjs", description: "d", defaults: {}, build: () => ({ sources: [jsonlSource("in.jsonl")], operators: [] }) });\n`,
  );
  return project;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "rxsynth-user-project-"));
  projects.commonjs = await makeProject("commonjs");
  projects.module = await makeProject("module");
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const CASES = {
  commonjs: [
    ["my-graph.ts", "ts"],
    ["my-graph.mts", "mts"],
    ["my-graph.js", "js"],
    ["with-helper.ts", "helper"],
  ],
  module: [
    ["my-graph.ts", "ts"],
    ["my-graph.js", "js"],
  ],
} as const;

describe.each(["commonjs", "module"] as const)('a graph file in a "type": "%s" project', { timeout: 240_000 }, (type) => {
  it.each(CASES[type])("runs %s", async (file, name) => {
    const project = projects[type]!;
    const out = join(project, `out-${name}`);
    const outcome = await rxsynth(["run", file, "--out", out, "--quiet"], project);
    expect(errorLines(outcome.stderr)).toEqual([]);
    expect(outcome.code).toBe(0);
    expect(await acceptedRows(out)).toEqual({ graph: name, rows: ROWS.length });
  });
});

describe("a CommonJS graph file", { timeout: 240_000 }, () => {
  it("is refused in one line that says what to change", async () => {
    const outcome = await rxsynth(["run", "old-style.cjs", "--out", join(projects.commonjs!, "out-cjs")], projects.commonjs!);
    expect(outcome.code).toBe(1);
    const lines = errorLines(outcome.stderr);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^rxsynth: config error: old-style\.cjs is CommonJS .*write it as an ES module/);
  });
});
