import { mkdir, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";

/** Writes `benchmarks/results/<name>.json` and says so. */
export async function writeResults(name: string, result: unknown): Promise<void> {
  const out = fileURLToPath(new URL("../results/", import.meta.url));
  await mkdir(out, { recursive: true });
  await writeFile(`${out}${name}.json`, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`wrote benchmarks/results/${name}.json`);
}

/** A measured figure to `digits` decimals, as the results files keep them. */
export function round(value: number, digits = 3): number {
  return Number(value.toFixed(digits));
}
