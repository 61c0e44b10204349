import { appendFile, open } from "node:fs/promises";
import { join } from "node:path";

export const TIMELINE_FILE = "timeline.jsonl";

/**
 * One line of `timeline.jsonl`: the run as of `at`. Counts are those of the whole folder (earlier
 * sessions' committed figures plus this session's), so a resumed run's history continues where it was.
 */
export interface TimelinePoint {
  readonly at: number;
  /** 0 for the folder's first run, one more for each run that resumed it. */
  readonly session: number;
  readonly elapsedMs: number;
  readonly pulled: number;
  readonly accepted: number;
  readonly rejected: number;
  readonly inFlight: number;
  readonly budget: number;
  readonly operators: Readonly<Record<string, { readonly in: number; readonly out: number; readonly rejected: number }>>;
  readonly totals: Readonly<Record<string, number>>;
  readonly cost: { readonly spentUsd: number; readonly projectedUsd: number | null };
}

/** The number the next session of `dir` gets: one after the last line's, read from the file's tail. */
export async function nextSession(dir: string): Promise<number> {
  let handle;
  try {
    handle = await open(join(dir, TIMELINE_FILE), "r");
  } catch {
    return 0;
  }
  try {
    const { size } = await handle.stat();
    const length = Math.min(size, 64 * 1024);
    const buffer = Buffer.alloc(length);
    await handle.read(buffer, 0, length, size - length);
    // The last line may be cut by a crash mid-append; the one before it is whole.
    for (const line of buffer.toString("utf8").split("\n").reverse()) {
      try {
        const session = (JSON.parse(line) as Partial<TimelinePoint>).session;
        if (typeof session === "number") return session + 1;
      } catch {
        continue;
      }
    }
    return 0;
  } finally {
    await handle.close();
  }
}

/**
 * Appends points at a spacing that grows with the run (a hundred or so per session, at least a second
 * and at most a minute apart), so a day-long run leaves a file of a few hundred kilobytes. The timeline
 * only describes the run: a failed append is said once and ends the timeline, never the run.
 */
export class Timeline {
  private lastAt = 0;
  private chain: Promise<void> = Promise.resolve();
  private broken = false;

  constructor(
    private readonly dir: string,
    private readonly log: (line: string) => void,
  ) {}

  due(elapsedMs: number, now = Date.now()): boolean {
    const spacing = Math.min(60_000, Math.max(1_000, elapsedMs / 100));
    return now - this.lastAt >= spacing;
  }

  /**
   * `guard` is awaited first, in turn with earlier appends: a scaled-out worker's lease check, so a worker
   * whose chunk another one took over appends nothing more to its folder (nor does it afterwards).
   */
  append(points: readonly TimelinePoint[], guard?: () => Promise<void>): Promise<void> {
    if (points.length === 0) return this.chain;
    this.lastAt = points.at(-1)!.at;
    this.chain = this.chain.then(async () => {
      if (this.broken) return;
      if (guard) {
        try {
          await guard();
        } catch {
          this.broken = true;
          return;
        }
      }
      try {
        await appendFile(join(this.dir, TIMELINE_FILE), points.map((point) => `${JSON.stringify(point)}\n`).join(""));
      } catch (error) {
        this.broken = true;
        this.log(`timeline: cannot append to ${join(this.dir, TIMELINE_FILE)} (${(error as Error).message}); the run goes on without it`);
      }
    });
    return this.chain;
  }

  settled(): Promise<void> {
    return this.chain;
  }
}
