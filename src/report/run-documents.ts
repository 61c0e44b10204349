import { formatSize } from "../cli/report-command.ts";
import { errorMessage } from "../errors.ts";
import { writeCard } from "./card.ts";
import { writeReport } from "./report-write.ts";

/**
 * What every run leaves for people to read beside its data: `report.html` and the dataset card
 * (`README.md`). Written after the run's last commit, from the folder alone, so they describe what was
 * committed; a failure to write one is said in one line and leaves the run's outcome (and exit code) as
 * it was: the data is there, and `rxsynth report <folder>` writes both again.
 */
export async function writeRunDocuments(runDir: string, log: (line: string) => void): Promise<void> {
  const written: string[] = [];
  const failed: string[] = [];
  try {
    const { file, bytes } = await writeReport(runDir);
    written.push(`${file} (${formatSize(bytes)})`);
  } catch (error) {
    failed.push(`report.html not written (${errorMessage(error)})`);
  }
  try {
    const { file } = await writeCard(runDir);
    written.push(`dataset card ${file}`);
  } catch (error) {
    failed.push(`dataset card not written (${errorMessage(error)})`);
  }
  if (written.length > 0) log(`report: ${written.join(", ")}`);
  if (failed.length > 0) log(`report: ${failed.join("; ")}; the run's data is complete as committed, and \`rxsynth report ${runDir}\` tries again`);
}
