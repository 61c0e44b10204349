import { existsSync, readdirSync } from "node:fs";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { ConfigError } from "./errors.ts";

/**
 * The prefix of an option value that names a file shipped in the package's `data/` folder. A graph's
 * default says `builtin:NAME` rather than an absolute path, so the options hash in a run's manifest is
 * the same wherever the clone or the installed package sits, and moving it does not break resume.
 */
export const BUILTIN_PREFIX = "builtin:";

/** The package's `data/` folder, found from this file (so it works from node_modules too). */
export const BUILTIN_DATA_DIR = fileURLToPath(new URL("../data/", import.meta.url));

/** The files `builtin:` can name, sorted (README.md is documentation, not data). */
export function builtinDataFiles(): string[] {
  if (!existsSync(BUILTIN_DATA_DIR)) return [];
  return readdirSync(BUILTIN_DATA_DIR, { withFileTypes: true })
    .filter((entry) => entry.isFile() && !entry.name.startsWith(".") && entry.name !== "README.md")
    .map((entry) => entry.name)
    .sort();
}

/**
 * The file an option value refers to: `builtin:NAME` is `<package>/data/NAME`; anything else is a path
 * (or glob) resolved against the working directory. Call it where the file is opened, not where the
 * option is declared, so the stored option keeps its portable form.
 */
export function resolveDataPath(value: string): string {
  // "-" is standard input (records piped in as JSON Lines), not a file named "-".
  if (value === "-") return value;
  if (!value.startsWith(BUILTIN_PREFIX)) return resolve(value);
  const name = value.slice(BUILTIN_PREFIX.length);
  const available = builtinDataFiles();
  if (!available.includes(name)) {
    throw new ConfigError(
      `no built-in data file "${name}" (from "${value}"); available: ${available.map((file) => BUILTIN_PREFIX + file).join(", ") || "(none)"}`,
    );
  }
  return resolve(BUILTIN_DATA_DIR, name);
}
