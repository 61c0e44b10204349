import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// Every error path of the CLI ends the process with one line, whatever the run had opened (an in-process
// simulator, sinks, timers). Each case runs the real CLI in a child process with a deadline.
const exec = promisify(execFile);
const root = join(import.meta.dirname, "..", "..");
const CLI = join(root, "bin", "rxsynth.mjs");
/** A start, a tsx compile and a simulator on a loaded 2-core machine; a hang is minutes, not this. */
const DEADLINE_MS = 30_000;

interface Outcome {
  readonly code: number;
  readonly stderr: string;
  readonly ms: number;
}

async function cli(args: readonly string[]): Promise<Outcome> {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: "1" };
  delete env.OPENAI_BASE_URL;
  const started = Date.now();
  try {
    const { stderr } = await exec(process.execPath, [CLI, ...args], { cwd: root, env, timeout: DEADLINE_MS, killSignal: "SIGKILL" });
    return { code: 0, stderr, ms: Date.now() - started };
  } catch (error) {
    const failure = error as { code?: number; killed?: boolean; stderr?: string };
    if (failure.killed) throw new Error(`rxsynth ${args.join(" ")} did not exit within ${DEADLINE_MS} ms`);
    return { code: failure.code ?? -1, stderr: failure.stderr ?? "", ms: Date.now() - started };
  }
}

/** The error lines (the simulator notice and progress are other lines). */
function errorLines(stderr: string): string[] {
  return stderr.split("\n").filter((line) => line.startsWith("rxsynth:"));
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "rxsynth-exits-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("rxsynth run on an error path", { timeout: 90_000 }, () => {
  it("exits with one line when the input file is empty, after the simulator started", async () => {
    const empty = join(dir, "empty.jsonl");
    await writeFile(empty, "");
    const out = join(dir, "empty-run");
    const result = await cli(["run", "graphs/distill-rationales.ts", "--set", `input=${empty}`, "--out", out, "--quiet"]);
    expect(result.code).toBe(1);
    expect(errorLines(result.stderr)).toEqual([`rxsynth: input error: ${empty}: file is empty`]);
    // A start that failed leaves no folder behind, so the corrected command is a fresh start.
    expect(existsSync(out)).toBe(false);
  });

  it("exits with one line when an inserted operator names a step the graph does not have", async () => {
    const result = await cli(["run", "test/fixtures/misplaced-insert-graph.ts", "--out", join(dir, "misplaced"), "--quiet"]);
    expect(result.code).toBe(1);
    const lines = errorLines(result.stderr);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^rxsynth: config error: cannot insert after "no_such_operator": graph "self-instruct" has no such operator \(it has: split_rounds, /);
  });

  it("refuses a resume with other options by naming each change, old and new, and exits", async () => {
    const out = join(dir, "changed");
    const first = await cli(["run", "graphs/self-instruct.ts", "--set", "target=5", "--out", out, "--quiet"]);
    expect(first.code).toBe(0);
    const result = await cli(["run", "graphs/self-instruct.ts", "--set", "target=5", "--set", "seed=7", "--set", "temperature=0.2", "--out", out, "--quiet"]);
    expect(result.code).toBe(1);
    expect(errorLines(result.stderr)).toEqual([
      `rxsynth: config error: ${out} holds a run of "self-instruct" with other options (seed 42 → 7, temperature 0.7 → 0.2); ` +
        "resuming would mix two datasets. Rerun with the folder's options, or pass another --out folder for the new ones",
    ]);
  });

  it("reports a generative run stopped by maxRounds as incomplete, and continues it with more rounds", async () => {
    const out = join(dir, "rounds");
    const short = await cli(["run", "graphs/self-instruct.ts", "--set", "target=40", "--set", "maxRounds=1", "--out", out, "--quiet"]);
    expect(short.code).toBe(3);
    expect(short.stderr).toMatch(/incomplete: self-instruct used its 1 rounds \(maxRounds\) and accepted \d+ of 40 rows; continue into the same folder with --set maxRounds=2/);
    const more = await cli(["run", "graphs/self-instruct.ts", "--set", "target=40", "--set", "maxRounds=60", "--out", out, "--quiet"]);
    expect(errorLines(more.stderr)).toEqual([]);
    expect(more.code).toBe(0);
    expect(more.stderr).toMatch(/complete: \d+ accepted, \d+ rejected \(resumed\)/);
  });

  it("leaves no manifest after a start that failed, so the corrected command runs", async () => {
    const out = join(dir, "clean-answers");
    const missing = join(dir, "no-such-input.jsonl");
    const failed = await cli(["run", "graphs/distill-rationales.ts", "--set", `input=${missing}`, "--out", out, "--quiet"]);
    expect(failed.code).toBe(1);
    expect(errorLines(failed.stderr)).toHaveLength(1);
    expect(existsSync(join(out, "manifest.json"))).toBe(false);
    const input = join(dir, "prompts.jsonl");
    await writeFile(input, `${JSON.stringify({ instruction: "Name three primary colours." })}\n`);
    const fixed = await cli(["run", "graphs/distill-rationales.ts", "--set", `input=${input}`, "--out", out, "--quiet"]);
    expect(errorLines(fixed.stderr)).toEqual([]);
    expect(fixed.code).toBe(0);
  });

  it("says an output path that is a file is not a folder, instead of ENOTDIR", async () => {
    const file = join(dir, "a-file");
    await writeFile(file, "x");
    const result = await cli(["run", "graphs/template-records.ts", "--limit", "2", "--out", file]);
    expect(result.code).toBe(1);
    expect(errorLines(result.stderr)).toEqual([`rxsynth: config error: --out ${file} is a file, not a folder: pass a folder path (it is created if missing)`]);
  });

  it("answers a bad number with one line, not the whole usage text", async () => {
    const result = await cli(["run", "graphs/template-records.ts", "--limit", "-5", "--out", join(dir, "bad-number")]);
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split("\n")).toEqual(["rxsynth: option '-n, --limit <n>' argument '-5' is invalid. expected a positive integer (see --help)"]);
  });
});

describe("rxsynth export", { timeout: 90_000 }, () => {
  it("fails with the reason and exits non-zero when no row fits the format, writing no file", async () => {
    const out = join(dir, "records");
    const made = await cli(["run", "graphs/template-records.ts", "--limit", "3", "--out", out, "--quiet"]);
    expect(made.code).toBe(0);
    const result = await cli(["export", out, "--format", "dpo"]);
    expect(result.code).toBe(1);
    const lines = errorLines(result.stderr);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^rxsynth: config error: none of the 3 rows can be written as dpo \(.+\); choose the format that fits this graph's rows/);
    expect((await readdir(out)).filter((name) => name.endsWith(".jsonl") && name !== "timeline.jsonl")).toEqual([]);
  });
});
