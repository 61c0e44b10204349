import { ConfigError } from "../errors.ts";
import type { BuiltGraph } from "../graph.ts";
import { canonicalJson, stableHash } from "../hash.ts";
import { identityOptions, optionChanges, readManifest, type Manifest } from "../io/manifest.ts";
import { removeUncommittedFiles } from "../io/run-files.ts";
import { listShardFiles } from "../io/shards.ts";
import { PositionTracker } from "./position-tracker.ts";

/**
 * What a run folder's manifest says about the run to continue: which source positions are finished,
 * which roots were caught mid-flight with some outputs already committed, and which shards stand.
 * Everything else (records not finished, files the manifest does not list) is redone.
 */
export interface ResumePlan {
  readonly previous: Manifest | undefined;
  readonly optionsHash: string;
  /** Finished positions per source, advanced by the run as roots finish. */
  readonly trackers: ReadonlyMap<string, PositionTracker>;
  /**
   * Roots partly committed, with the ids of their committed outputs. Carried forward by every checkpoint
   * until the root finishes, whatever this run touches (a `--limit` run may never reach them).
   */
  readonly partial: Map<string, readonly string[]>;
  /** Outputs committed before, as part of a root that had not finished: written once is enough. */
  readonly alreadyCommitted: ReadonlySet<string>;
  /** The identity this run records (the graph's), and the earlier ones a resume was allowed to leave. */
  readonly identity: Manifest["identity"];
  readonly identityHistory: Manifest["identityHistory"];
}

/** Reads the folder's manifest (if any), refuses a resume that would mix two datasets, and cleans leftovers. */
export async function planResume(graph: BuiltGraph, out: string | undefined, allowIdentityChange = false): Promise<ResumePlan> {
  const optionsHash = stableHash(identityOptions(graph.options, graph.continuable));
  const previous = out ? await readManifest(out) : undefined;
  if (out) refuseMismatch(graph, out, previous, optionsHash);
  const identityHistory = out ? checkIdentity(graph, out, previous, allowIdentityChange) : undefined;
  if (out && !previous && (await listShardFiles(out)).length > 0) {
    throw new ConfigError(`${out} holds shard files but no rxsynth manifest; write into an empty or new --out folder`);
  }
  if (out) await removeUncommittedFiles(out, previous?.shards ?? []);

  const trackers = new Map<string, PositionTracker>();
  for (const source of graph.sources) {
    if (trackers.has(source.name)) throw new ConfigError(`graph "${graph.name}" has two sources named "${source.name}"`);
    trackers.set(source.name, new PositionTracker(previous?.sources[source.name]));
  }
  const partial = new Map(Object.entries(previous?.partial ?? {}));
  const alreadyCommitted = new Set([...partial.values()].flat());
  return { previous, optionsHash, trackers, partial, alreadyCommitted, identity: graph.identity ?? previous?.identity, identityHistory };
}

/**
 * A folder started against one endpoint or model is continued against the same one, unless the user
 * says otherwise (`--allow-endpoint-change`), which the manifest then records. Returns the history to keep.
 */
function checkIdentity(graph: BuiltGraph, out: string, previous: Manifest | undefined, allow: boolean): Manifest["identityHistory"] {
  const before = previous?.identity;
  const now = graph.identity;
  if (!before || !now || canonicalJson(before) === canonicalJson(now)) return previous?.identityHistory;
  if (!allow) {
    throw new ConfigError(
      `${out} was generated with ${describeIdentity(before)}; this run would use ${describeIdentity(now)}, mixing two models' answers in one dataset. ` +
        "Point the run back at the first endpoint (OPENAI_BASE_URL, RXSYNTH_MODEL), use another --out folder, or pass --allow-endpoint-change (recorded in the manifest)",
    );
  }
  return [...(previous?.identityHistory ?? []), { identity: before, until: new Date().toISOString() }];
}

function describeIdentity(identity: Readonly<Record<string, unknown>>): string {
  return Object.entries(identity)
    .map(([key, value]) => `${key} ${typeof value === "object" && value !== null ? Object.values(value).join(" / ") : String(value)}`)
    .join(", ");
}

function refuseMismatch(graph: BuiltGraph, out: string, previous: Manifest | undefined, optionsHash: string): void {
  if (!previous) return;
  if (previous.graph !== graph.name) {
    throw new ConfigError(`${out} holds a run of graph "${previous.graph}", not "${graph.name}": choose another --out folder`);
  }
  if (previous.optionsHash !== optionsHash) {
    const changes = optionChanges(previous.options, graph.options, graph.continuable);
    throw new ConfigError(
      `${out} holds a run of "${graph.name}" with other options (${changes.join(", ") || "same values, other hash"}); ` +
        `resuming would mix two datasets. Rerun with the folder's options, or pass another --out folder for the new ones`,
    );
  }
}
