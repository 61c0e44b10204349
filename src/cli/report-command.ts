import { resolve } from "node:path";
import { setFlagsFromString } from "node:v8";
import type { Command } from "commander";
import { writeCard } from "../report/card.ts";
import { writeReport } from "../report/report-write.ts";

/** Sizes as people read them: 1.4 MB, 820 KB. */
export function formatSize(bytes: number): string {
  if (bytes >= 1_000_000) return `${(bytes / 1_000_000).toFixed(1)} MB`;
  if (bytes >= 1_000) return `${Math.round(bytes / 1_000)} KB`;
  return `${bytes} B`;
}

export function registerReportCommand(program: Command): void {
  program
    .command("report")
    .description("write a run folder's report.html (funnel, lengths, diversity, dedup, judges, execution, LLM, time, samples) and its dataset card README.md")
    .argument("<run-dir>", "a run folder (the --out of `rxsynth run`, or of a scaled-out run)")
    .option("-o, --out <file>", "where to write the page (default <run-dir>/report.html)")
    .option("--no-card", "write only the page, not the dataset card")
    .action(async (runDir: string, flags: { out?: string; card: boolean }) => {
      // Before parquet-wasm is compiled: the report is one pass, which Liftoff's baseline code reads as
      // fast, while TurboFan's optimising compile of the module would be a third of the command's peak
      // memory (measured on a 50k-row folder: 7.6 s either way, peak RSS 258 MB instead of 343 MB).
      setFlagsFromString("--liftoff-only");
      const { file, bytes } = await writeReport(runDir, flags.out === undefined ? {} : { out: resolve(flags.out) });
      console.log(`report: ${file} (${formatSize(bytes)})`);
      if (flags.card) console.log(`dataset card: ${(await writeCard(runDir)).file}`);
    });
}
