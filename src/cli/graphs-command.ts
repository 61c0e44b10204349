import { readdir } from "node:fs/promises";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import type { Command } from "commander";
import { loadGraph } from "./load-graph.ts";

export const GRAPHS_DIR = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "graphs");

/** The ready graphs shipped in graphs/, with their one-line descriptions. */
export async function listGraphs(dir = GRAPHS_DIR): Promise<Array<{ file: string; name: string; description: string }>> {
  const files = (await readdir(dir)).filter((file) => file.endsWith(".ts") && file !== "index.ts").sort();
  return Promise.all(
    files.map(async (file) => {
      const definition = await loadGraph(join(dir, file));
      return { file: join(dir, file), name: definition.name, description: definition.description };
    }),
  );
}

export function registerGraphsCommand(program: Command): void {
  program
    .command("graphs")
    .description("list the ready graphs")
    .action(async () => {
      const graphs = await listGraphs();
      const width = Math.max(...graphs.map((graph) => graph.name.length));
      for (const graph of graphs) {
        console.log(`${graph.name.padEnd(width)}  ${graph.description}\n${"".padEnd(width)}  rxsynth run ${relative(process.cwd(), graph.file)}`);
      }
    });
}
