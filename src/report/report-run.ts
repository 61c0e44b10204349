import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { InputError } from "../errors.ts";
import { MANIFEST_FILE, readManifest, type Manifest, type OperatorCount } from "../io/manifest.ts";
import type { ShardInfo } from "../io/types.ts";
import { TIMELINE_FILE, type TimelinePoint } from "../run/timeline.ts";

const DIVERSITY_SUMMARY_FILE = "diversity-summary.json";
const DIVERSITY_SNAPSHOTS_FILE = "diversity.jsonl";

/**
 * A run folder as the report sees it: one manifest, or (a scaled-out run) one per chunk folder, merged.
 * Shards are listed from the manifests, so files a crashed run left uncommitted are not counted.
 */
export interface RunFolder {
  readonly dir: string;
  /** The folder's manifest, or the first chunk's with counts and totals added up over every chunk. */
  readonly manifest: Manifest;
  /** Chunk folders of a scaled-out run (0 for a single-process run). */
  readonly chunks: number;
  /** Committed shards of one format per kind, with their paths. */
  readonly accepted: readonly ShardFile[];
  readonly rejects: readonly ShardFile[];
  /** Folders holding the run's own files (the run folder, or each chunk folder). */
  readonly folders: readonly string[];
}

export interface ShardFile {
  readonly path: string;
  readonly rows: number;
  readonly bytes: number;
}

/** Reads the manifest(s) of `dir`; a folder that holds no run says so in one line. */
export async function openRunFolder(dir: string): Promise<RunFolder> {
  const info = await stat(dir).catch(() => undefined);
  if (!info?.isDirectory()) throw new InputError("not a folder; pass a run folder (the --out of `rxsynth run`)", { file: dir });
  const own = await readManifest(dir);
  if (own) return { dir, manifest: own, chunks: 0, ...shardsOf([[dir, own]]), folders: [dir] };
  const chunkDirs = await chunkFolders(dir);
  const manifests: [string, Manifest][] = [];
  for (const chunk of chunkDirs) {
    const manifest = await readManifest(chunk);
    if (manifest) manifests.push([chunk, manifest]);
  }
  if (manifests.length === 0) {
    throw new InputError(`not a run folder: it has no ${MANIFEST_FILE} (nor chunks/*/${MANIFEST_FILE} of a scaled-out run)`, { file: dir });
  }
  return { dir, manifest: mergeManifests(manifests.map(([, m]) => m)), chunks: manifests.length, ...shardsOf(manifests), folders: manifests.map(([d]) => d) };
}

async function chunkFolders(dir: string): Promise<string[]> {
  const names = await readdir(join(dir, "chunks")).catch(() => [] as string[]);
  return names.sort().map((name) => join(dir, "chunks", name));
}

/** Shards of the first accepted format (every accepted format holds the same rows), and the rejects. */
function shardsOf(manifests: readonly [string, Manifest][]): { accepted: ShardFile[]; rejects: ShardFile[] } {
  const accepted: ShardFile[] = [];
  const rejects: ShardFile[] = [];
  const format = manifests.flatMap(([, m]) => m.shards).find((shard) => shard.kind === "accepted")?.format;
  for (const [dir, manifest] of manifests) {
    for (const shard of manifest.shards as readonly ShardInfo[]) {
      const file = { path: join(dir, shard.file), rows: shard.rows, bytes: shard.bytes };
      if (shard.kind === "rejects") rejects.push(file);
      else if (shard.format === format) accepted.push(file);
    }
  }
  return { accepted, rejects };
}

/** One manifest for a scaled-out run: counts and totals added up over its chunks, the span of their times. */
export function mergeManifests(manifests: readonly Manifest[]): Manifest {
  const first = manifests[0]!;
  const totals: Record<string, number> = {};
  const operatorCounts: Record<string, OperatorCount> = {};
  for (const manifest of manifests) {
    for (const [key, value] of Object.entries(manifest.totals)) {
      // Ratios (distinct-n, similarity) of one chunk are not the run's; only sums add up.
      if (key.startsWith("diversity.")) continue;
      totals[key] = (totals[key] ?? 0) + value;
    }
    for (const [name, count] of Object.entries(manifest.operatorCounts ?? {})) {
      const sum = operatorCounts[name] ?? { in: 0, out: 0, rejected: 0 };
      operatorCounts[name] = { in: sum.in + count.in, out: sum.out + count.out, rejected: sum.rejected + count.rejected };
    }
  }
  const times = manifests.map((m) => [m.createdAt, m.updatedAt] as const);
  return {
    ...first,
    createdAt: times.map(([c]) => c).sort()[0]!,
    updatedAt: times.map(([, u]) => u).sort().at(-1)!,
    complete: manifests.every((m) => m.complete),
    shards: manifests.flatMap((m) => m.shards),
    totals,
    operatorCounts,
  };
}

/** The lines of a JSONL file that parse; a line cut by a crash mid-append is skipped. Missing file: []. */
export async function readJsonLines<T>(file: string): Promise<T[]> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch {
    return [];
  }
  const out: T[] = [];
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    try {
      out.push(JSON.parse(line) as T);
    } catch {
      continue;
    }
  }
  return out;
}

export async function readJson<T>(file: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(file, "utf8")) as T;
  } catch {
    return undefined;
  }
}

/**
 * The run's timeline: the folder's own, or the chunks' merged by time, each point then the sum of every
 * chunk's latest figures (their counts are cumulative per chunk).
 */
export async function readTimeline(run: RunFolder): Promise<TimelinePoint[]> {
  const lines = await Promise.all(run.folders.map((folder) => readJsonLines<TimelinePoint>(join(folder, TIMELINE_FILE))));
  if (lines.length === 1) return lines[0]!;
  const events = lines.flatMap((points, chunk) => points.map((point) => ({ chunk, point }))).sort((a, b) => a.point.at - b.point.at);
  const latest = new Map<number, TimelinePoint>();
  const merged: TimelinePoint[] = [];
  for (const { chunk, point } of events) {
    latest.set(chunk, point);
    merged.push(sumPoints([...latest.values()], point));
  }
  return merged;
}

function sumPoints(points: readonly TimelinePoint[], last: TimelinePoint): TimelinePoint {
  const add = (pick: (p: TimelinePoint) => number) => points.reduce((sum, p) => sum + pick(p), 0);
  const totals: Record<string, number> = {};
  for (const point of points) for (const [key, value] of Object.entries(point.totals)) totals[key] = (totals[key] ?? 0) + value;
  return {
    ...last,
    // Chunks have their own sessions; the merged run has one history.
    session: 0,
    pulled: add((p) => p.pulled),
    accepted: add((p) => p.accepted),
    rejected: add((p) => p.rejected),
    inFlight: add((p) => p.inFlight),
    budget: add((p) => p.budget),
    operators: {},
    totals,
    cost: { spentUsd: add((p) => p.cost.spentUsd), projectedUsd: null },
  };
}

/**
 * The diversity tracker's files: the run folder's, or a single chunk's. Chunks' summaries are not merged
 * (distinct-n of a union is not a function of the parts), so a scaled-out run with several has none.
 */
export async function readDiversity(run: RunFolder): Promise<{ summary: unknown; snapshots: unknown[]; note: string | undefined }> {
  const folder = run.chunks === 0 ? run.dir : run.folders.length === 1 ? run.folders[0]! : undefined;
  if (!folder) return { summary: await readJson(join(run.dir, DIVERSITY_SUMMARY_FILE)), snapshots: [], note: "each chunk of a scaled-out run tracks its own diversity; they are not merged" };
  return {
    summary: await readJson(join(folder, DIVERSITY_SUMMARY_FILE)),
    snapshots: await readJsonLines(join(folder, DIVERSITY_SNAPSHOTS_FILE)),
    note: undefined,
  };
}
