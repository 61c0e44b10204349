import { execFile, spawn } from "node:child_process";
import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { createProgram } from "../../src/cli/main.ts";
import { ConfigError } from "../../src/errors.ts";
import { startSimulator } from "../../src/sim/index.ts";

const exec = promisify(execFile);
const CLI = join(import.meta.dirname, "..", "..", "bin", "rxsynth.mjs");

let scratch: string;
const originalTmp = process.env.TMPDIR;
const originalBaseUrl = process.env.OPENAI_BASE_URL;
beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), "bench-cli-"));
  // Offline: ready graphs start the in-process simulator.
  delete process.env.OPENAI_BASE_URL;
});
afterEach(() => {
  vi.restoreAllMocks();
  if (originalTmp === undefined) delete process.env.TMPDIR;
  else process.env.TMPDIR = originalTmp;
});
afterAll(async () => {
  if (originalBaseUrl !== undefined) process.env.OPENAI_BASE_URL = originalBaseUrl;
  await rm(scratch, { recursive: true, force: true });
});

const benchFolders = async (dir: string) => (await readdir(dir)).filter((name) => name.startsWith("rxsynth-bench-"));

/**
 * The command in this process (the same program bin/rxsynth.mjs parses), with what it prints kept: a
 * child process would spend most of its time starting up on a loaded machine.
 */
async function bench(args: string[], tmp: string): Promise<string> {
  process.env.TMPDIR = tmp;
  const printed: string[] = [];
  vi.spyOn(console, "log").mockImplementation((line: unknown) => void printed.push(String(line)));
  vi.spyOn(console, "error").mockImplementation(() => {});
  await createProgram().parseAsync(["bench", ...args], { from: "user" });
  return printed.join("\n");
}

/** The real CLI in a child process, offline, with its own temporary folder. */
async function rxsynth(args: string[], tmp: string) {
  const env: NodeJS.ProcessEnv = { ...process.env, TMPDIR: tmp, NO_COLOR: "1" };
  delete env.OPENAI_BASE_URL;
  try {
    const { stdout, stderr } = await exec(process.execPath, [CLI, ...args], { env, timeout: 90_000, killSignal: "SIGKILL" });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failure = error as { code?: number; stdout?: string; stderr?: string };
    return { code: failure.code ?? -1, stdout: failure.stdout ?? "", stderr: failure.stderr ?? "" };
  }
}

describe("rxsynth bench <graph>", () => {
  it("benches quickstart into a temporary folder it removes, writing the documented JSON with the bottleneck named", async () => {
    const dir = await mkdtemp(join(scratch, "graph-"));
    const json = join(dir, "bench.json");
    const stdout = await bench(["quickstart", "--limit", "20", "--json", json], dir);
    const result = JSON.parse(await readFile(json, "utf8")) as Record<string, unknown> & {
      operators: Array<Record<string, unknown>>;
      llm: Record<string, number>;
      memory: Record<string, number>;
    };
    expect(Object.keys(result)).toEqual(
      expect.arrayContaining(["kind", "graph", "status", "elapsedS", "sourceRecords", "accepted", "rejected", "samplesPerS", "operators", "bottleneck", "bottleneckBy", "llm", "memory"]),
    );
    expect(result).toMatchObject({ kind: "graph", graph: "quickstart", limit: 20, status: "complete", accepted: 200 });
    expect(result.samplesPerS).toBeGreaterThan(0);
    for (const op of result.operators) {
      expect(Object.keys(op)).toEqual(expect.arrayContaining(["name", "kind", "in", "out", "rejected", "outPerS", "busyS", "busyShare", "meanMs", "inFlightS", "queuedS", "heldS"]));
    }
    expect(result.operators.map((op) => op.name)).toContain(result.bottleneck);
    expect(Object.keys(result.llm)).toEqual(["requests", "seconds", "meanInFlight", "timeShare", "tokens"]);
    expect(result.llm.requests).toBeGreaterThan(0);
    expect(result.llm.seconds).toBeGreaterThan(0);
    expect(result.llm.timeShare).toBeGreaterThan(0);
    expect(result.llm.timeShare).toBeLessThanOrEqual(1);
    expect(result.memory.peakRssBytes).toBeGreaterThan(50_000_000);
    expect(stdout).toContain(`bottleneck: ${String(result.bottleneck)}`);
    expect(stdout).toMatch(/200 accepted in [\d.]+ s = [\d.]+ samples\/s/);
    expect(await benchFolders(dir)).toEqual([]);
  }, 60_000);

  it("refuses --limit with --seconds, and flags of the other mode, before it runs anything", async () => {
    const dir = await mkdtemp(join(scratch, "flags-"));
    await expect(bench(["quickstart", "--limit", "5", "--seconds", "3"], dir)).rejects.toThrow(new ConfigError("bench takes --limit N or --seconds S, not both"));
    await expect(bench(["quickstart", "--levels", "1,4"], dir)).rejects.toThrow("--levels does not apply to a graph's bench");
    await expect(bench(["endpoint", "--limit", "5", "--base-url", "http://127.0.0.1:1/v1"], dir)).rejects.toThrow("--limit does not apply to bench endpoint");
    expect(await benchFolders(dir)).toEqual([]);
  });

  it("stops cleanly on SIGTERM, removing its temporary folder", async () => {
    const dir = await mkdtemp(join(scratch, "term-"));
    const env: NodeJS.ProcessEnv = { ...process.env, TMPDIR: dir };
    delete env.OPENAI_BASE_URL;
    const child = spawn(process.execPath, [CLI, "bench", "quickstart", "--set", "target=100000", "-q"], { env, stdio: ["ignore", "pipe", "pipe"] });
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    for (let i = 0; i < 300 && (await benchFolders(dir)).length === 0; i++) await sleep(100);
    expect(await benchFolders(dir)).toHaveLength(1);
    // Mid-run: the quickstart's waves are under way (100,000 rows would take many minutes).
    await sleep(800);
    child.kill("SIGTERM");
    expect(await exited).toBe(143);
    expect(await benchFolders(dir)).toEqual([]);
  }, 60_000);
});

describe("rxsynth bench endpoint", () => {
  it("sweeps an endpoint into a table and JSON with the levels and the knee", async () => {
    const dir = await mkdtemp(join(scratch, "sweep-"));
    const sim = await startSimulator({ port: 0, latencyMs: 100, maxConcurrency: 4, models: ["bench-model"] });
    try {
      const json = join(dir, "sweep.json");
      const stdout = await bench(["endpoint", "--base-url", sim.url, "--levels", "1,4,16", "--requests", "4", "--seconds", "0.2", "--json", json], dir);
      const result = JSON.parse(await readFile(json, "utf8")) as { kind: string; model: string; levels: Array<Record<string, unknown>>; knee: Record<string, unknown> };
      expect(result.kind).toBe("endpoint");
      // No --model: the first the server lists.
      expect(result.model).toBe("bench-model");
      expect(result.levels.map((level) => level.concurrency)).toEqual([1, 4, 16]);
      for (const level of result.levels) {
        expect(Object.keys(level)).toEqual(["concurrency", "requests", "errors", "errorKinds", "seconds", "requestsPerS", "outputTokensPerS", "latencyMs", "ttftMs", "clientCpu"]);
        expect(Object.keys(level.latencyMs as object)).toEqual(["p50", "p95", "p99", "mean"]);
      }
      expect(Object.keys(result.knee)).toEqual(["knee", "reached", "recommended", "littleConcurrency", "power"]);
      expect(stdout).toMatch(/^concurrency +req\/s +out tok\/s +p50 ms +p95 ms +p99 ms +ttft p50 +ttft p95 +errors +client cpu$/m);
      expect(stdout).toMatch(/^knee: /m);
      expect(stdout).toMatch(/^use concurrency \d+/m);
    } finally {
      await sim.close();
    }
  }, 30_000);

  it("says in one line, with a non-zero exit, that nothing answers at --base-url", async () => {
    const dir = await mkdtemp(join(scratch, "unreachable-"));
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
    const port = (server.address() as { port: number }).port;
    await new Promise((resolve) => server.close(resolve));
    const outcome = await rxsynth(["bench", "endpoint", "--base-url", `http://127.0.0.1:${port}/v1`], dir);
    expect(outcome.code).toBe(1);
    expect(outcome.stderr.trim()).toBe(`rxsynth: endpoint error: cannot reach http://127.0.0.1:${port}/v1 (ECONNREFUSED): check --base-url`);
    expect(outcome.stdout).toBe("");
  }, 60_000);
});
