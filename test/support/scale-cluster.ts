// What the scale-out tests share: their own redis-server (a free port, AOF in a temp folder; the
// machine's 6379 is left alone), `rxsynth` commands as real child processes, and the cleanup of both.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll } from "vitest";
import { REDIS_SKIPPED_MESSAGE, RedisServer, skipRedis } from "./redis-server.ts";

export const ROOT = resolve(import.meta.dirname, "../..");
const CLI = join(ROOT, "bin/rxsynth.mjs");

export interface CliExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface ScaleCluster {
  /** The tests' temp folder (the server's AOF is in it too). */
  readonly dir: string;
  /** Started before the tests, stopped after them. */
  readonly redis: RedisServer;
  /** `rxsynth <args>` as a child process, without OPENAI_BASE_URL unless `env` sets it; SIGKILLed after the tests if still running. */
  cli(args: readonly string[], env?: Record<string, string>): { child: ChildProcess; exit: Promise<CliExit> };
}

/** Registers the suite's beforeAll/afterAll; call at the top of a test file. */
export function scaleCluster(prefix: string): ScaleCluster {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const children = new Set<ChildProcess>();
  let server: RedisServer | undefined;
  if (skipRedis) console.warn(REDIS_SKIPPED_MESSAGE);
  beforeAll(async () => {
    if (!skipRedis) server = await RedisServer.start(dir);
  }, 30_000);
  afterAll(async () => {
    for (const child of children) child.kill("SIGKILL");
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    dir,
    get redis() {
      if (!server) throw new Error("the scale cluster's redis-server is not started (skipRedis, or outside a test)");
      return server;
    },
    cli(args, env = {}) {
      const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, OPENAI_BASE_URL: "", ...env } });
      children.add(child);
      let stdout = "";
      let stderr = "";
      child.stdout!.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
      child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
      const exit = new Promise<CliExit>((done) =>
        child.once("exit", (code, signal) => {
          children.delete(child);
          done({ code, signal, stdout, stderr });
        }),
      );
      return { child, exit };
    },
  };
}
