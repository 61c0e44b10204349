import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import quickstart from "../../graphs/quickstart.ts";
import { acceptedRows, errorLines, ROOT, rxsynth } from "./run-cli.ts";

// `rxsynth run <name>` and `rxsynth run <graph> --help`, through the real CLI in a child process.
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "rxsynth-ready-graphs-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The one-line `/** ... *\/` comment right above `key:` in a graph file. */
async function docAbove(file: string, key: string): Promise<string> {
  const text = await readFile(join(ROOT, file), "utf8");
  const doc = new RegExp(`/\\*\\*\\s*(.+?)\\s*\\*/\\s*\\n\\s*${key}:`).exec(text)?.[1];
  if (!doc) throw new Error(`${file} has no one-line doc comment above ${key}`);
  return doc;
}

describe("rxsynth run <ready graph name>", { timeout: 240_000 }, () => {
  it("runs the ready graph of that name", async () => {
    const out = join(dir, "quickstart");
    const outcome = await rxsynth(["run", "quickstart", "--limit", "1", "--out", out, "--quiet"], dir);
    expect(outcome.stderr).not.toContain("rxsynth: ");
    expect(outcome.code).toBe(0);
    const { graph, rows } = await acceptedRows(out);
    expect(graph).toBe("quickstart");
    expect(rows).toBeGreaterThan(0);
  });

  it("refuses an unknown name in one line that lists the ready graphs", async () => {
    const outcome = await rxsynth(["run", "nosuchgraph"], dir);
    expect(outcome.code).toBe(1);
    const lines = errorLines(outcome.stderr);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^rxsynth: config error: "nosuchgraph" is neither a graph file nor a ready graph; the ready graphs are: .*\bquickstart\b/);
    expect(lines[0]).toContain("self-instruct");
  });

  it("still says a missing path does not exist", async () => {
    const outcome = await rxsynth(["run", "./nosuch/graph.ts"], dir);
    expect(outcome.code).toBe(1);
    expect(errorLines(outcome.stderr)).toEqual(["rxsynth: config error: graph file ./nosuch/graph.ts does not exist; `rxsynth graphs` lists the ready ones"]);
  });
});

describe("rxsynth run <graph> --help", { timeout: 240_000 }, () => {
  it("lists the graph's options with their defaults and doc comments after the run help", async () => {
    const outcome = await rxsynth(["run", "graphs/quickstart.ts", "--help"]);
    expect(outcome.code).toBe(0);
    const help = outcome.stdout;
    expect(help).toContain("Usage: rxsynth run [options] <graph>");
    const options = help.slice(help.indexOf("Options of graph quickstart"));
    expect(options).toContain("--set key=value");
    for (const key of ["target", "seedTasks"]) {
      expect(options).toMatch(new RegExp(`^  ${key} +${escapeRegExp(JSON.stringify((quickstart.defaults as Record<string, unknown>)[key]))}$`, "m"));
      // The doc may be wrapped over lines: compare it with the whitespace folded.
      expect(options.replace(/\s+/g, " ")).toContain(await docAbove("graphs/quickstart.ts", key));
    }
    for (const key of Object.keys(quickstart.defaults)) expect(options).toMatch(new RegExp(`^  ${key} `, "m"));
    expect(options).toContain("Example: rxsynth run graphs/quickstart.ts --set ");
  });

  it("finds the graph after other options, and by name", async () => {
    const outcome = await rxsynth(["run", "--out", join(dir, "unused"), "self-instruct", "-h"], dir);
    expect(outcome.code).toBe(0);
    expect(outcome.stdout).toContain("Options of graph self-instruct");
    expect(outcome.stdout.replace(/\s+/g, " ")).toContain(await docAbove("graphs/self-instruct.ts", "instructionsPerRound"));
  });
});

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
