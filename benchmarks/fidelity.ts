/**
 * Fidelity to the papers (issue 15), measured:
 *   1. rouge_lsh_agreement at ROUGE-L thresholds 0.5, 0.6 and 0.7: the Self-Instruct novelty filter run over
 *      5,000 instructions in order (each kept unless the pool already holds one at or above the threshold,
 *      then added), with the LSH candidate search against brute force over the whole pool: the share of
 *      the 5,000 decisions on which the two agree (target 1.0 each), with the kept counts.
 *   2. evol_valid_elimination_rate (when benchmarks/lib/evol-elimination.ts is present): the share of
 *      evolutions that add 10-20 words to parents of 40+ words and that Evol-Instruct's default check
 *      eliminates (target 0).
 *   3. selfinstruct_label_coverage: the share of classification tasks in a Self-Instruct run's output whose
 *      instances cover every label the model gave (target >= 0.9), beside the previous default of one
 *      instance per task in the same run (benchmarks/lib/label-coverage.ts).
 * The instructions: the 175 human seed tasks of Self-Instruct (data/, Apache-2.0) and 4,825 seeded
 * variants of them (word edits at rates from 0 to 0.6, and halves of two seeds joined), so that every
 * band of similarity around the thresholds is populated.
 * Prints a table and writes benchmarks/results/fidelity.json.
 *
 *   npx tsx benchmarks/fidelity.ts
 */
import { existsSync } from "node:fs";
import { RougePool, candidateThreshold } from "../operators/diversity/rouge-filter.ts";
import { seededRandom } from "../operators/diversity/sketches.ts";
import { NOVELTY_CANDIDATE_RECALL, readSeedTasks } from "../graphs/lib/self-instruct-steps.ts";
import { measureLabelCoverage } from "./lib/label-coverage.ts";
import { round, writeResults } from "./lib/results.ts";

const SEED = 15;
const INSTRUCTIONS = 5_000;
const THRESHOLDS = [0.5, 0.6, 0.7] as const;

const next = seededRandom(SEED);
const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!;

async function instructions(): Promise<string[]> {
  const seeds = (await readSeedTasks("builtin:self_instruct_seed_tasks.jsonl")).map((task) => task.instruction);
  const vocabulary = [...new Set(seeds.flatMap((text) => text.split(/\s+/)))];
  const edit = (text: string, rate: number) =>
    text
      .split(/\s+/)
      .flatMap((word) => (next() >= rate ? [word] : next() < 1 / 3 ? [pick(vocabulary)] : next() < 0.5 ? [] : [word, pick(vocabulary)]))
      .join(" ");
  const joined = () => {
    const [a, b] = [pick(seeds).split(/\s+/), pick(seeds).split(/\s+/)];
    return [...a.slice(0, Math.ceil(a.length / 2)), ...b.slice(Math.floor(b.length / 2))].join(" ");
  };
  const out = [...seeds];
  while (out.length < INSTRUCTIONS) out.push(next() < 0.2 ? joined() : edit(pick(out), 0.6 * next()));
  // The seeds spread through the stream rather than all first.
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

function filterRun(texts: readonly string[], threshold: number, search: "lsh" | "brute") {
  // The novelty filter as the Self-Instruct graph sets it up.
  const pool = new RougePool({ threshold, search, atThreshold: "keep", candidateRecall: NOVELTY_CANDIDATE_RECALL });
  const kept: boolean[] = [];
  const started = performance.now();
  texts.forEach((text, i) => {
    const prepared = pool.prepare(text);
    const keep = pool.best(prepared) === undefined;
    if (keep) pool.add(`i${i}`, prepared);
    kept.push(keep);
  });
  return { kept, ms: performance.now() - started, comparisons: pool.comparisons };
}

async function main() {
  const texts = await instructions();
  const rouge = THRESHOLDS.map((threshold) => {
    const lsh = filterRun(texts, threshold, "lsh");
    const brute = filterRun(texts, threshold, "brute");
    const agree = lsh.kept.filter((keep, i) => keep === brute.kept[i]).length;
    return {
      threshold,
      lsh_threshold: candidateThreshold(threshold),
      agreement: round(agree / texts.length, 4),
      kept_lsh: lsh.kept.filter(Boolean).length,
      kept_brute: brute.kept.filter(Boolean).length,
      lsh_ms: round(lsh.ms, 1),
      brute_ms: round(brute.ms, 1),
      comparisons_per_query: { lsh: round(lsh.comparisons / texts.length, 1), brute: round(brute.comparisons / texts.length, 1) },
    };
  });

  const evolModule = new URL("./lib/evol-elimination.ts", import.meta.url);
  const evol = existsSync(evolModule) ? await (await import(evolModule.href)).measureEvolElimination() : undefined;

  const labels = await measureLabelCoverage();
  const oneInstance = labels.one_instance_per_task;

  const rows: Array<[string, string, string]> = [
    ...rouge.map((r): [string, string, string] => [
      `rouge_lsh_agreement @ ${r.threshold}`,
      `${r.agreement}`,
      `kept ${r.kept_lsh} (LSH, candidates from Jaccard ${r.lsh_threshold}) vs ${r.kept_brute} (brute force); ${r.comparisons_per_query.lsh} vs ${r.comparisons_per_query.brute} LCS per query`,
    ]),
    [
      "selfinstruct_label_coverage",
      `${round(labels.selfinstruct_label_coverage, 4)}`,
      `${labels.defaults.covered} of ${labels.defaults.classificationTasks} classification tasks (${round(labels.defaults.meanLabels, 2)} labels each) in ${labels.defaults.rows} rows; ` +
        `1 instance per task: ${round(oneInstance.coverage, 4)} (${oneInstance.covered} of ${oneInstance.classificationTasks})`,
    ],
    ...(evol ? [["evol_valid_elimination_rate", `${evol.evol_valid_elimination_rate}`, `${evol.eliminated} of ${evol.evolutions} evolutions eliminated`] as [string, string, string]] : []),
  ];
  const width = Math.max(...rows.map((r) => r[0].length));
  console.log(`\n${"measure".padEnd(width)}  value   detail`);
  for (const [name, value, detail] of rows) console.log(`${name.padEnd(width)}  ${value.padEnd(6)}  ${detail}`);

  await writeResults("fidelity", {
    rouge_lsh_agreement: Object.fromEntries(rouge.map((r) => [String(r.threshold), r.agreement])),
    ...(evol ? { evol_valid_elimination_rate: evol.evol_valid_elimination_rate } : {}),
    selfinstruct_label_coverage: round(labels.selfinstruct_label_coverage, 4),
    details: { instructions: texts.length, rouge, ...(evol ? { evol } : {}), label_coverage: labels },
    node: process.version,
    measured_at: new Date().toISOString(),
  });
}

await main();
