import { open, rename } from "node:fs/promises";
import { join } from "node:path";
import { collectReportData, type ReportDataOptions } from "./report-data.ts";
import { renderReport } from "./report-html.ts";

export const REPORT_FILE = "report.html";

export interface WriteReportOptions extends ReportDataOptions {
  /** Where to write the page. Default `<runDir>/report.html`. */
  readonly out?: string;
}

/**
 * Writes the run report of `runDir`: one self-contained HTML file, computed in one bounded pass over the
 * committed shards. Written to a temporary name and renamed, so a reader never sees half a page.
 */
export async function writeReport(runDir: string, options: WriteReportOptions = {}): Promise<{ file: string; bytes: number }> {
  const html = await renderReport(await collectReportData(runDir, options));
  const file = options.out ?? join(runDir, REPORT_FILE);
  const temporary = `${file}.${process.pid}.tmp`;
  const handle = await open(temporary, "w");
  try {
    await handle.writeFile(html);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temporary, file);
  return { file, bytes: Buffer.byteLength(html) };
}
