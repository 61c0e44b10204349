/**
 * Self-Instruct's label coverage (issue 15): the share of classification tasks in a run's output whose
 * kept instances cover every class label the model gave for the task (target >= 0.9). Output-first
 * generation exists so that a classification task's instances are not all of one label; a task with one
 * instance covers one label, which is not the whole label set of any classification task.
 *
 * The label set of a task is what the model answered (generate_instances records it in its provenance
 * note); the simulator always answers in the requested shape, so what the figure measures is what the
 * graph's own steps keep of it: the instance rules (duplicates, conflicts, ":" endings, refusals), ROUGE-L
 * within the wave, exact and MinHash dedup, and the `target` cut. Whether a real model names every label
 * of a task is the model's, and is not measured here.
 *
 * Run side by side under the same seed, simulator and target: the graph's defaults (up to 5 instances,
 * one per label) and the previous default (`instancesPerTask: 1`).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildGraph, listShardFiles, run, startSimulator, SIMULATOR_MODEL } from "../../src/index.ts";
import selfInstruct, { defaults } from "../../graphs/self-instruct.ts";
import { readParquetRows } from "../../test/support/parquet.ts";

/** The fields of an output row this measure reads, as an independent Parquet reader gives them back. */
export interface CoverageRow {
  readonly data: Record<string, unknown>;
  readonly provenance: { readonly parents: readonly string[]; readonly steps: readonly { readonly op: string; readonly note: string | null }[] };
}

export interface LabelCoverage {
  /** Classification tasks in the output whose kept rows cover every label the model gave (0 when there are none). */
  readonly coverage: number;
  readonly classificationTasks: number;
  readonly covered: number;
  /** Labels per classification task, on average, as the model gave them. */
  readonly meanLabels: number;
}

const LABELS_NOTE = /labels (\[.*\])$/;

/** The label coverage of a Self-Instruct run's accepted rows. */
export function labelCoverage(rows: readonly CoverageRow[]): LabelCoverage {
  const tasks = new Map<string, { labels: string[]; kept: Set<string> }>();
  for (const row of rows) {
    if (row.data.is_classification !== true) continue;
    const task = row.provenance.parents[0] ?? "";
    const note = row.provenance.steps.find((step) => step.op === "generate_instances")?.note ?? "";
    const labels = LABELS_NOTE.exec(note);
    const entry = tasks.get(task) ?? { labels: labels ? (JSON.parse(labels[1]!) as string[]) : [], kept: new Set<string>() };
    entry.kept.add(String(row.data.output).trim());
    tasks.set(task, entry);
  }
  const entries = [...tasks.values()];
  // A classification task has two labels at least: one label kept of one given is not coverage.
  const covered = entries.filter(({ labels, kept }) => labels.length >= 2 && labels.every((label) => kept.has(label))).length;
  return {
    coverage: entries.length === 0 ? 0 : covered / entries.length,
    classificationTasks: entries.length,
    covered,
    meanLabels: entries.length === 0 ? 0 : entries.reduce((sum, { labels }) => sum + labels.length, 0) / entries.length,
  };
}

/** Runs self-instruct to `target` rows against the simulator with `overrides`, and measures its label coverage. */
async function coverageOfRun(target: number, overrides: Record<string, unknown>): Promise<LabelCoverage & { rows: number }> {
  const out = await mkdtemp(join(tmpdir(), "rxsynth-bench-labels-"));
  try {
    const graph = await buildGraph(selfInstruct, { target, ...overrides }, { log: () => {}, out });
    await run(graph, { out });
    const rows: CoverageRow[] = [];
    for (const file of await listShardFiles(out, { prefix: "part" })) rows.push(...((await readParquetRows(file)) as unknown as CoverageRow[]));
    return { ...labelCoverage(rows), rows: rows.length };
  } finally {
    await rm(out, { recursive: true, force: true });
  }
}

export async function measureLabelCoverage(target = 400) {
  const simulator = await startSimulator({ seed: defaults.seed });
  const saved = { url: process.env.OPENAI_BASE_URL, model: process.env.RXSYNTH_MODEL, cache: process.env.RXSYNTH_CACHE_DIR };
  process.env.OPENAI_BASE_URL = simulator.url;
  process.env.RXSYNTH_MODEL = SIMULATOR_MODEL;
  process.env.RXSYNTH_CACHE_DIR = "off";
  try {
    const current = await coverageOfRun(target, {});
    const oneInstance = await coverageOfRun(target, { instancesPerTask: 1 });
    return { selfinstruct_label_coverage: current.coverage, target, defaults: current, one_instance_per_task: oneInstance };
  } finally {
    for (const [key, value] of [["OPENAI_BASE_URL", saved.url], ["RXSYNTH_MODEL", saved.model], ["RXSYNTH_CACHE_DIR", saved.cache]] as const) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
    await simulator.close();
  }
}
