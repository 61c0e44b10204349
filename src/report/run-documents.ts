import { formatSize } from "../cli/report-command.ts";
import { errorMessage } from "../errors.ts";
import { writeReport } from "./report-write.ts";

/**
 * What every run leaves for people to read beside its data: `report.html`. Written after the run's last
 * commit, from the folder alone, so it describes what was committed; a failure to write it is said in
 * one line and leaves the run's outcome (and exit code) as it was: the data is there, and
 * `rxsynth report <folder>` writes the page again.
 */
export async function writeRunDocuments(runDir: string, log: (line: string) => void): Promise<void> {
  try {
    const { file, bytes } = await writeReport(runDir);
    log(`report: ${file} (${formatSize(bytes)})`);
  } catch (error) {
    log(`report: not written (${errorMessage(error)}); the run's data is complete as committed, and \`rxsynth report ${runDir}\` tries again`);
  }
}
