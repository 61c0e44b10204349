import { join, resolve } from "node:path";
import { Option, type Command } from "commander";
import { EXPORT_FORMATS, exportRun, type ExportFormat } from "../io/export.ts";

interface ExportFlags {
  format: ExportFormat;
  out?: string;
  strict?: boolean;
}

export function registerExportCommand(program: Command): void {
  program
    .command("export")
    .description("convert a run folder's accepted rows into JSONL for a training stack (alpaca, sharegpt, openai-messages, dpo)")
    .argument("<dir>", "a run folder (its part-NNNNN shards) or one shard file")
    .addOption(new Option("-f, --format <format>", "record shape to write").choices(EXPORT_FORMATS).makeOptionMandatory())
    .option("-o, --out <file.jsonl>", "file to write, or - for stdout (default: <dir>/<format>.jsonl)")
    .option("--strict", "stop at the first row that lacks what the format needs, instead of skipping and counting it")
    .action(async (dir: string, flags: ExportFlags) => {
      const toStdout = flags.out === "-";
      const out = toStdout ? process.stdout : resolve(flags.out ?? join(dir, `${flags.format}.jsonl`));
      const summary = await exportRun(dir, { format: flags.format, out, strict: flags.strict === true });
      const where = summary.out ?? "stdout";
      console.error(`exported ${summary.written} rows from ${summary.files.length} shard(s) as ${summary.format} to ${where}`);
      if (summary.skipped > 0) {
        console.error(`skipped ${summary.skipped} rows that lack what ${summary.format} needs (--strict to stop at the first); for example:`);
        for (const line of summary.skippedExamples) console.error(`  ${line}`);
      }
    });
}
