import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it, vi } from "vitest";
import { SIMULATOR_MODEL, startSimulator } from "../../src/index.ts";
import definition from "../../graphs/quickstart.ts";
import { readShards, useGraphRuns } from "../support/graph-run.ts";

const exec = promisify(execFile);
const root = join(import.meta.dirname, "..", "..");

const { runGraph, tempDir } = useGraphRuns();

describe("graphs/quickstart", () => {
  it("is what `npm start` runs: 200 self-instruct rows with the simulator, saying so in one line", async () => {
    const out = await tempDir("quickstart");
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env.OPENAI_BASE_URL;
    const started = Date.now();
    const { stdout, stderr } = await exec(process.execPath, ["bin/rxsynth.mjs", "run", "graphs/quickstart.ts", "--out", out], { cwd: root, env, timeout: 60_000 });
    const seconds = (Date.now() - started) / 1000;
    const said = `${stdout}\n${stderr}`;
    expect(said.match(/no OPENAI_BASE_URL set: using the built-in simulator/g)).toHaveLength(1);
    expect(said).toContain("complete: 200 accepted");
    expect(seconds).toBeLessThan(60);

    const rows = await readShards(out, "part");
    expect(rows).toHaveLength(200);
    for (const row of rows) {
      const data = row.data as Record<string, unknown>;
      expect(Object.keys(data).filter((key) => key !== "_extra").sort()).toEqual(["input", "instruction", "is_classification", "output"]);
      expect(row.provenance).toMatchObject({ origin: "synthetic", depth: 1 });
    }
    const diversity = JSON.parse(await readFile(join(out, "diversity-summary.json"), "utf8")) as {
      groups: { all: { samples: number; distinct2: { ratio: number } } };
    };
    expect(diversity.groups.all.samples).toBe(200);
    expect(diversity.groups.all.distinct2.ratio).toBeGreaterThan(0);
  });

  it("writes the same 200 rows on every run with the same seed, whatever the budget and the answers' timing", async () => {
    const first = await runGraph(definition, {}, { run: { budget: 1024 } });
    // Same seed and model, so the same answers; each takes longer the longer it is, two served at a time.
    const slow = await startSimulator({ seed: 42, latencyMs: 1, tokensPerS: 50_000, maxConcurrency: 2 });
    try {
      vi.stubEnv("OPENAI_BASE_URL", slow.url);
      vi.stubEnv("RXSYNTH_MODEL", SIMULATOR_MODEL);
      // Every answer from the slow server, none from a response cache shared with the first run.
      vi.stubEnv("RXSYNTH_CACHE_DIR", "off");
      const second = await runGraph(definition, {}, { run: { budget: 128 } });
      const rows = (run: typeof first) => run.rows.map((row) => [row.id, row.data] as const).sort(([a], [b]) => (a < b ? -1 : 1));
      expect(first.rows).toHaveLength(200);
      expect(rows(second)).toEqual(rows(first));
      expect(second.rejects.map((row) => row.id).sort()).toEqual(first.rejects.map((row) => row.id).sort());
    } finally {
      await slow.close();
    }
  }, 180_000);
});
