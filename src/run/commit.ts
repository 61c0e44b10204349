import { join, relative } from "node:path";
import type { CheckpointHook } from "../context.ts";
import { writeManifest, type Manifest } from "../io/manifest.ts";
import type { RunSink, ShardInfo } from "../io/types.ts";

/**
 * The commit protocol, in the order it runs. Rows are already written to the sinks (under temporary
 * names) when a commit starts; then:
 *
 * 1. `manifest-first`: the first commit of a folder writes a manifest listing no shard, so a folder with a
 *    shard always has a manifest to vouch for it (and a start that fails before it leaves none).
 * 2. `shards`: each sink finishes its open shard and renames it into place (one sink after another).
 * 3. `state`: operators save their state (dedup indexes, pools), which now covers every renamed shard.
 * 4. `manifest`: the manifest, listing the new shards and the finished source positions, replaces the old
 *    one atomically. Only now are the new rows committed.
 *
 * A crash anywhere before step 4 leaves the previous manifest in force: shards it does not list are
 * removed on resume and their records redone; state saved in step 3 then already knows those samples,
 * which is why stateful operators recognise a replayed sample by its id (a sample matching itself is kept).
 */
export const COMMIT_STEPS = ["manifest-first", "shards", "between-sinks", "state", "manifest"] as const;
export type CommitStep = (typeof COMMIT_STEPS)[number];

/** Called after each step (tests crash the process here, or throw). */
export type FaultHook = (step: CommitStep) => void | Promise<void>;

/**
 * `RXSYNTH_FAULT=<step>[:<n>]` kills the process with SIGKILL the nth time (default 1st) it has done
 * `step`: how tests and the chaos benchmark crash a child process exactly between two steps.
 */
export function faultsFromEnvironment(value = process.env.RXSYNTH_FAULT): FaultHook | undefined {
  if (!value) return undefined;
  const [step, count] = value.split(":");
  let remaining = count ? Number(count) : 1;
  return (done) => {
    if (done === step && --remaining === 0) process.kill(process.pid, "SIGKILL");
  };
}

export interface CommitTarget {
  /** The run folder, or undefined for runs into custom sinks (nothing to write but the sinks' commits). */
  readonly out: string | undefined;
  readonly sinks: readonly RunSink[];
  readonly hooks: readonly CheckpointHook[];
  readonly fault?: FaultHook;
  /** Awaited before a commit writes anything (see RunOptions.fence). */
  readonly fence?: () => Promise<void>;
}

/** Commits a folder's runs, one after another; remembers whether the folder has a manifest yet. */
export class Committer {
  private hasManifest: boolean;

  constructor(
    private readonly target: CommitTarget,
    manifestExists: boolean,
  ) {
    this.hasManifest = manifestExists;
  }

  /** Whether any commit wrote the folder's manifest (false: the run never started, leave no trace). */
  get started(): boolean {
    return this.hasManifest;
  }

  /** Whether the fence refused a commit: the folder is another process's now, and must be left as it is. */
  get fenced(): boolean {
    return this.refused;
  }

  private refused = false;

  /**
   * Runs the protocol. `manifest` is asked for the first manifest of a folder (`initial`: no progress, no
   * shards) and for the one listing the new shards. Returns the shards this commit renamed into place.
   */
  async commit(manifest: (newShards: readonly ShardInfo[], initial: boolean) => Manifest): Promise<ShardInfo[]> {
    const { out, sinks, hooks, fault, fence } = this.target;
    try {
      await fence?.();
    } catch (error) {
      this.refused = true;
      throw error;
    }
    if (out && !this.hasManifest) {
      await writeManifest(out, manifest([], true));
      this.hasManifest = true;
      await fault?.("manifest-first");
    }
    const shards: ShardInfo[] = [];
    for (const [index, sink] of sinks.entries()) {
      if (index > 0) await fault?.("between-sinks");
      shards.push(...(await sink.commit()).map((shard) => relativeTo(out, shard)));
    }
    await fault?.("shards");
    for (const hook of hooks) await hook();
    await fault?.("state");
    if (out) await writeManifest(out, manifest(shards, false));
    await fault?.("manifest");
    return shards;
  }
}

function relativeTo(out: string | undefined, shard: ShardInfo): ShardInfo {
  if (!out) return shard;
  return { ...shard, file: relative(out, shard.file.startsWith("/") ? shard.file : join(out, shard.file)) };
}
