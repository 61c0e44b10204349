import { readdirSync, readFileSync } from "node:fs";
import { randomBytes } from "node:crypto";

/** A string no other process on the machine has in its command line. */
export function uniqueMarker(label: string): string {
  return `rxsynth-test-${label}-${randomBytes(6).toString("hex")}`;
}

/** Pids of processes whose command line contains `marker`, read from /proc (no procps needed). */
export function processesWith(marker: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, "utf8").includes(marker)) pids.push(Number(entry));
    } catch {
      // Exited while we looked.
    }
  }
  return pids;
}

/** Polls until `check` returns a value that is not undefined, or gives up after `ms`. */
export async function eventually<T>(check: () => T | undefined, ms: number): Promise<T | undefined> {
  const end = Date.now() + ms;
  for (;;) {
    const value = check();
    if (value !== undefined || Date.now() > end) return value;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
