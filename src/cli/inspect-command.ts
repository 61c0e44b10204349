import { stat } from "node:fs/promises";
import { join } from "node:path";
import type { Command } from "commander";
import { describeOutput } from "../io/index.ts";
import { MANIFEST_FILE } from "../io/manifest.ts";
import { positiveInteger } from "./main.ts";

async function isRunFolder(path: string): Promise<boolean> {
  return stat(join(path, MANIFEST_FILE)).then(
    () => true,
    () => false,
  );
}

export function registerInspectCommand(program: Command): void {
  program
    .command("inspect")
    .description("print the schema, row count and first rows of an output file or folder (parquet, arrow, jsonl)")
    .argument("<path>", "a shard file or an output folder")
    .option("-n, --rows <n>", "rows to show", positiveInteger, 3)
    .option("--rejects", "in a run folder, show the rejects instead of the accepted samples")
    .action(async (path: string, flags: { rows: number; rejects?: boolean }) => {
      const prefix = (await isRunFolder(path)) ? (flags.rejects ? "rejects" : "part") : undefined;
      const description = await describeOutput(path, { limit: flags.rows, prefix });
      const what = prefix === "rejects" ? "rejected samples" : prefix === "part" ? "accepted samples" : "rows";
      console.log(`files: ${description.files.length}${description.files.length <= 5 ? ` (${description.files.join(", ")})` : ""}`);
      console.log(`${what}: ${description.rowCount}`);
      if (description.files.length === 0) return;
      console.log(`schema:\n${description.schema}`);
      console.log(`first ${description.firstRows.length}:`);
      for (const row of description.firstRows) console.log(JSON.stringify(row, null, 2));
    });
}
