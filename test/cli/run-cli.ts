import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";

const exec = promisify(execFile);
export const ROOT = join(import.meta.dirname, "..", "..");
export const CLI = join(ROOT, "bin", "rxsynth.mjs");
/** A start, a tsx compile and maybe a simulator on a loaded 2-core machine; a hang is minutes, not this. */
export const DEADLINE_MS = 90_000;

export interface CliOutcome {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the real CLI (`node bin/rxsynth.mjs ...`) in a child process, offline (the in-process simulator). */
export async function rxsynth(args: readonly string[], cwd = ROOT): Promise<CliOutcome> {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: "1" };
  delete env.OPENAI_BASE_URL;
  try {
    const { stdout, stderr } = await exec(process.execPath, [CLI, ...args], { cwd, env, timeout: DEADLINE_MS, killSignal: "SIGKILL" });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failure = error as { code?: number; killed?: boolean; stdout?: string; stderr?: string };
    if (failure.killed) throw new Error(`rxsynth ${args.join(" ")} did not exit within ${DEADLINE_MS} ms`);
    return { code: failure.code ?? -1, stdout: failure.stdout ?? "", stderr: failure.stderr ?? "" };
  }
}

/** The error lines the CLI prints (progress and notices are other lines). */
export function errorLines(stderr: string): string[] {
  return stderr.split("\n").filter((line) => line.startsWith("rxsynth:"));
}

/** Accepted rows a run folder's manifest lists (one format's shards). */
export async function acceptedRows(out: string): Promise<{ graph: string; rows: number }> {
  const manifest = JSON.parse(await readFile(join(out, "manifest.json"), "utf8")) as {
    graph: string;
    shards: Array<{ kind: string; format: string; rows: number }>;
  };
  const accepted = manifest.shards.filter((shard) => shard.kind === "accepted");
  const format = accepted[0]?.format;
  return { graph: manifest.graph, rows: accepted.filter((shard) => shard.format === format).reduce((sum, shard) => sum + shard.rows, 0) };
}
