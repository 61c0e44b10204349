import { mkdir, open, readFile, rename } from "node:fs/promises";
import { join } from "node:path";
import { ConfigError, InputError } from "../errors.ts";
import { canonicalJson } from "../hash.ts";
import { WRITER_TOKEN } from "./shards.ts";
import type { ShardInfo } from "./types.ts";

export const MANIFEST_FILE = "manifest.json";
const MANIFEST_VERSION = 1;

/** Which records of one source are finished: all positions below `watermark`, plus `done` above it. */
export interface SourceProgress {
  readonly watermark: number;
  readonly done: readonly number[];
}

/**
 * The run's commit record. Written after the shards it lists were renamed into place, so whatever it
 * says is on disk; anything on disk that it does not list is a leftover of a crash and is removed.
 */
export interface Manifest {
  readonly version: number;
  readonly graph: string;
  /** Hash of the graph's resolved options: resuming with other options would mix two datasets. */
  readonly optionsHash: string;
  readonly options: unknown;
  /** What answered the run's requests (endpoint base URL or "builtin-simulator", model); part of its identity. */
  readonly identity?: Readonly<Record<string, unknown>>;
  /** Earlier identities a resume was explicitly allowed to leave (`--allow-endpoint-change`), oldest first. */
  readonly identityHistory?: ReadonlyArray<{ readonly identity: Readonly<Record<string, unknown>>; readonly until: string }>;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly complete: boolean;
  readonly shards: readonly ShardInfo[];
  readonly sources: Readonly<Record<string, SourceProgress>>;
  /** Roots still in flight at the checkpoint, with the ids of their outputs already committed. */
  readonly partial: Readonly<Record<string, readonly string[]>>;
  /** Options of every operator, by name; steps in provenance refer to them by hash. */
  readonly operators: Readonly<Record<string, { version: string; params: unknown }>>;
  readonly totals: Readonly<Record<string, number>>;
  /**
   * Samples into and out of each operator, and rejected by it, added up over every session of the folder
   * as of its last commit (a sample redone after a crash counts in each session that took it up).
   */
  readonly operatorCounts?: Readonly<Record<string, OperatorCount>>;
}

export interface OperatorCount {
  readonly in: number;
  readonly out: number;
  readonly rejected: number;
}

export async function readManifest(dir: string): Promise<Manifest | undefined> {
  const path = join(dir, MANIFEST_FILE);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
  let manifest: Manifest;
  try {
    manifest = JSON.parse(text) as Manifest;
  } catch (error) {
    throw new InputError("the run manifest is not valid JSON; it was not written by rxsynth or was edited", { file: path }, { cause: error });
  }
  if (manifest.version !== MANIFEST_VERSION) {
    throw new ConfigError(`${path} has manifest version ${manifest.version}; this rxsynth reads version ${MANIFEST_VERSION}. Use a new --out folder.`);
  }
  return manifest;
}

/** Atomic: written to a temporary file, fsynced, renamed over the old one. */
export async function writeManifest(dir: string, manifest: Manifest): Promise<void> {
  await mkdir(dir, { recursive: true });
  const path = join(dir, MANIFEST_FILE);
  const temporary = `${path}.${WRITER_TOKEN}.tmp`;
  const handle = await open(temporary, "w");
  try {
    await handle.writeFile(JSON.stringify(manifest, null, 1));
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temporary, path);
}

/** The options that define a dataset: everything but those that may grow on resume (see BuiltGraph.continuable). */
export function identityOptions(options: unknown, continuable: readonly string[] = []): unknown {
  if (options === null || typeof options !== "object" || Array.isArray(options)) return options ?? null;
  return Object.fromEntries(Object.entries(options).filter(([key]) => !continuable.includes(key)));
}

/** `key old → new` for each identity option that differs, for a refusal the user can act on. */
export function optionChanges(before: unknown, after: unknown, continuable: readonly string[] = []): string[] {
  const old = (identityOptions(before, continuable) ?? {}) as Record<string, unknown>;
  const now = (identityOptions(after, continuable) ?? {}) as Record<string, unknown>;
  const keys = [...new Set([...Object.keys(old), ...Object.keys(now)])].sort();
  const show = (value: unknown) => (value === undefined ? "(unset)" : JSON.stringify(value));
  return keys.filter((key) => canonicalJson(old[key]) !== canonicalJson(now[key])).map((key) => `${key} ${show(old[key])} → ${show(now[key])}`);
}
