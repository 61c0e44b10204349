import { existsSync, readFileSync } from "node:fs";
import { mkdir, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { SourceIds } from "../sample.ts";

/**
 * The record ids each source has yielded, so a record id repeated within one source is an InputError
 * (two rows with one id would make dedup and resume mistake one sample for another). Saved with the
 * operator state of every checkpoint, so a repeat split across a crash is caught too.
 */
export class SourceIdRegistry {
  private readonly tables = new Map<string, SourceIds>();
  private readonly savedSizes = new Map<string, number>();

  constructor(
    private readonly out: string | undefined,
    sources: readonly string[],
    resumed: boolean,
  ) {
    for (const name of sources) {
      const saved = resumed && out ? fileOf(out, name) : undefined;
      const table = saved && existsSync(saved) ? SourceIds.deserialize(name, readFileSync(saved)) : new SourceIds(name);
      this.tables.set(name, table);
      this.savedSizes.set(name, table.size);
    }
  }

  /** Throws an InputError naming both positions when `recordId` was seen at another position. */
  check(source: string, position: number, recordId: unknown): void {
    if (recordId === undefined) return;
    this.tables.get(source)!.check(position, recordId);
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
