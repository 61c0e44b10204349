import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { InvalidArgumentError, type Command } from "commander";
import { ConfigError } from "../errors.ts";
import { ResponseCache, defaultCacheDir } from "../llm/cache.ts";

const DAY_MS = 86_400_000;

function days(value: string): number {
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed < 0) throw new InvalidArgumentError("expected a number of days >= 0");
  return parsed;
}

function size(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

/** The cache folder a command works on: --dir, else where runs keep it. */
function cacheDir(dir: string | undefined): string {
  if (dir) return resolve(dir);
  const path = defaultCacheDir();
  if (!path) throw new ConfigError("RXSYNTH_CACHE_DIR is off, so there is no response cache: pass --dir <folder> to work on one");
  return path;
}

/** Opens the cache folder, or says there is none yet (without creating one). */
function openExisting(path: string): ResponseCache | undefined {
  if (!existsSync(path)) {
    console.log(`${path}: no response cache yet (runs create it)`);
    return undefined;
  }
  return ResponseCache.open(path);
}

export function registerCacheCommand(program: Command): void {
  const cache = program
    .command("cache")
    .description("the response cache that runs share (RXSYNTH_CACHE_DIR, else ~/.cache/rxsynth/llm): size it, prune it");
  cache
    .command("info")
    .description("where the cache is, how many answers it holds and how much disk it takes")
    .option("--dir <folder>", "a cache folder other than the default")
    .action(async (flags: { dir?: string }) => {
      const path = cacheDir(flags.dir);
      const store = openExisting(path);
      if (!store) return;
      try {
        const { entries, bytes } = store.info();
        console.log(`path     ${path}\nentries  ${entries}\nbytes    ${bytes} (${size(bytes)})`);
      } finally {
        await store.close();
      }
    });
  cache
    .command("prune")
    .description("remove cached answers: those older than some days, or all (the next run sends those requests again)")
    .option("--older-than <days>", "remove answers stored more than this many days ago", days)
    .option("--all", "remove every answer")
    .option("--dir <folder>", "a cache folder other than the default")
    .action(async (flags: { olderThan?: number; all?: boolean; dir?: string }) => {
      if ((flags.olderThan === undefined) === (flags.all !== true)) {
        throw new ConfigError("cache prune: pass either --older-than <days> or --all");
      }
      const path = cacheDir(flags.dir);
      const store = openExisting(path);
      if (!store) return;
      try {
        const before = flags.all ? Infinity : Date.now() - flags.olderThan! * DAY_MS;
        const removed = await store.prune(before);
        const { entries } = store.info();
        console.log(`${path}: removed ${removed} answer${removed === 1 ? "" : "s"}, ${entries} left`);
      } finally {
        await store.close();
      }
    });
}
