import { existsSync, readFileSync } from "node:fs";
import { mkdir, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { RunContext } from "../../src/index.ts";

/** Where an operator keeps its checkpointed state: `<runDir>/state/<name>.bin`; undefined for in-memory runs. */
export function statePath(context: RunContext, name: string): string | undefined {
  if (!context.runDir) return undefined;
  return join(context.runDir, "state", `${name.replace(/[^A-Za-z0-9._-]/g, "_")}.bin`);
}

/** The saved state, or undefined when there is none yet. Read synchronously: it happens once, before the first sample. */
export function readState(path: string | undefined): Uint8Array | undefined {
  if (!path || !existsSync(path)) return undefined;
  return readFileSync(path);
}

/** Writes beside the target and renames over it, so a crash leaves the old state or the new one, never half. */
export async function writeStateAtomic(path: string, bytes: Uint8Array): Promise<void> {
  await mkdir(join(path, ".."), { recursive: true });
  const temp = `${path}.${process.pid}.tmp`;
  await writeFile(temp, bytes, { flush: true });
  await rename(temp, path);
}
