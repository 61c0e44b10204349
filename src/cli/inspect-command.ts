import type { Command } from "commander";
import { describeOutput } from "../io/index.ts";
import { positiveInteger } from "./main.ts";

export function registerInspectCommand(program: Command): void {
  program
    .command("inspect")
    .description("print the schema, row count and first rows of an output file or folder (parquet, arrow, jsonl)")
    .argument("<path>", "a shard file or an output folder")
    .option("-n, --rows <n>", "rows to show", positiveInteger, 3)
    .action(async (path: string, flags: { rows: number }) => {
      const description = await describeOutput(path, { limit: flags.rows });
      console.log(`files: ${description.files.length}${description.files.length <= 5 ? ` (${description.files.join(", ")})` : ""}`);
      console.log(`rows: ${description.rowCount}`);
      console.log(`schema:\n${description.schema}`);
      console.log(`first ${description.firstRows.length} rows:`);
      for (const row of description.firstRows) console.log(JSON.stringify(row, null, 2));
    });
}
