import { existsSync, readFileSync } from "node:fs";
import { mkdir, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { SourceIds, type CheckedRecord } from "./id-table.ts";

/**
 * Ids checked per source: a table of 2^21 slots (32 MB) filled to 3/4. Past this many the run's memory
 * would grow with the source instead of staying bounded by the budget, so the check stops there (and says so).
 */
const MAX_CHECKED_IDS = (2 ** 21 * 3) / 4;

/**
 * The record ids each source has yielded, so a record id repeated within one source is an InputError
 * (two rows with one id would make dedup and resume mistake one sample for another). Saved with the
 * operator state of every checkpoint, so a repeat split across a crash is caught too.
 */
export class SourceIdRegistry {
  private readonly tables = new Map<string, SourceIds>();
  private readonly savedSizes = new Map<string, number>();
  private readonly capped = new Set<string>();

  constructor(
    private readonly out: string | undefined,
    sources: readonly string[],
    resumed: boolean,
    private readonly log: (line: string) => void,
  ) {
    for (const name of sources) {
      const saved = resumed && out ? fileOf(out, name) : undefined;
      const table = saved && existsSync(saved) ? SourceIds.deserialize(name, readFileSync(saved)) : new SourceIds(name);
      this.tables.set(name, table);
      this.savedSizes.set(name, table.size);
    }
  }

  /** The source says it holds `records` records: the table is sized once for as many ids as will be checked. */
  reserve(source: string, records: number): void {
    this.tables.get(source)?.reserve(Math.min(records, MAX_CHECKED_IDS));
  }

  /**
   * Checks the first `end` records of a batch, in position order; throws an InputError naming both
   * positions when a record id was seen at another position.
   */
  check(source: string, records: readonly CheckedRecord[], end = records.length): void {
    if (this.capped.has(source)) return;
    if (this.tables.get(source)!.checkRecords(records, end, MAX_CHECKED_IDS)) return;
    this.capped.add(source);
    this.log(
      `source ${source}: more than ${MAX_CHECKED_IDS.toLocaleString("en-US")} record ids; ids past them are not checked for repeats, to keep memory bounded (32 MB per source)`,
    );
  }

  /** The commit protocol's state step: tables that grew since they were last saved. */
  async save(): Promise<void> {
    if (!this.out) return;
    for (const [name, table] of this.tables) {
      if (table.size === this.savedSizes.get(name)) continue;
      const path = fileOf(this.out, name);
      await mkdir(join(path, ".."), { recursive: true });
      const temporary = `${path}.${process.pid}.tmp`;
      await writeFile(temporary, table.serialize(), { flush: true });
      await rename(temporary, path);
      this.savedSizes.set(name, table.size);
    }
  }
}

function fileOf(out: string, source: string): string {
  return join(out, "state", "source-ids", `${source.replace(/[^A-Za-z0-9._-]/g, "_")}.bin`);
}
