/**
 * Evol-Instruct's elimination of valid evolutions (issue 15): the share of evolutions that add 10 to 20
 * words to a parent of 40 words or more (what the evolution prompt asks for) and that the graph's check
 * eliminates. Target 0.
 *
 * The pairs are built, seeded: parents are Self-Instruct seed instructions (data/, Apache-2.0) joined until
 * they reach 40 to 80 words; each child inserts 10 to 20 words taken from other seeds at one to three
 * places of its parent. Every pair goes, with a well-formed answer, through the graph's own elimination
 * step (`eliminateStep`: the rules, and with the default gainCheck the LLM judge, here asked over HTTP of
 * the simulator), so what is counted is what the graph would eliminate. With `gainCheck: "rouge",
 * gainMinAddedWords: 0` it measures the rule the graph had before: ROUGE-L to the parent at 0.8 alone.
 *
 * The simulator is no judge of meaning: it answers the equality question with prose that says neither
 * "Equal" nor "Not Equal". So with the judge the figure shows that no rule of the graph eliminates these
 * evolutions and that an answer without a finding keeps them; how often a real model calls a valid
 * evolution equal is the model's, and is not measured here.
 */
import { SIMULATOR_MODEL, collect, createLlm, createSample, startSimulator } from "../../src/index.ts";
import { defaults, eliminateStep, equalityJudge, type EliminationRules } from "../../graphs/evol-instruct.ts";
import { seededRng } from "../../graphs/lib/llm-steps.ts";
import { readSeedTasks } from "../../graphs/lib/self-instruct-steps.ts";

export interface EvolElimination {
  evol_valid_elimination_rate: number;
  evolutions: number;
  eliminated: number;
  /** The check measured, in words. */
  check: string;
  /** Eliminations by reason. */
  reasons: Record<string, number>;
}

const PAIRS = 500;
const SEED = 15;
const ANSWER =
  "Vaccines expose the immune system to a harmless part of a germ, such as a protein from its surface. " +
  "B cells make antibodies that fit it, and memory cells keep the pattern, so that a later infection is met within days instead of weeks.";

/** `PAIRS` parent and child instructions: parents of 40 to 80 words, children with 10 to 20 words inserted. */
async function pairs(): Promise<{ parent: string; child: string }[]> {
  const seeds = (await readSeedTasks("builtin:self_instruct_seed_tasks.jsonl")).map((task) => task.instruction.trim().split(/\s+/));
  const vocabulary = seeds.flat();
  const out: { parent: string; child: string }[] = [];
  for (let i = 0; i < PAIRS; i++) {
    const rng = seededRng(SEED, "pair", i);
    const target = rng.int(40, 80);
    const parent: string[] = [];
    while (parent.length < target) parent.push(...rng.pick(seeds));
    const child = [...parent];
    const added = rng.int(10, 20);
    const places = rng.int(1, 3);
    for (let p = 0; p < places; p++) {
      const count = p === places - 1 ? added - Math.floor(added / places) * (places - 1) : Math.floor(added / places);
      const at = rng.int(0, child.length);
      child.splice(at, 0, ...Array.from({ length: count }, () => rng.pick(vocabulary)));
    }
    out.push({ parent: parent.join(" "), child: child.join(" ") });
  }
  return out;
}

/** Runs the pairs through the graph's elimination step with `overrides` over the defaults, against the simulator. */
export async function measureEvolElimination(overrides: Partial<EliminationRules> = {}): Promise<EvolElimination> {
  const rules: EliminationRules = { ...defaults, ...overrides };
  const samples = (await pairs()).map(({ parent, child }, index) =>
    createSample({
      id: `pair-${index}`,
      source: "evol-elimination",
      data: { instruction: child, parent_instruction: parent, output: ANSWER, evolution: "add_constraints", round: 1 },
    }),
  );
  const sim = await startSimulator({ seed: defaults.seed });
  try {
    const llm = createLlm({ baseURL: sim.url, model: SIMULATOR_MODEL, cache: false, concurrency: 16 });
    const judge = rules.gainCheck === "judge" ? equalityJudge(llm, defaults.seed) : undefined;
    const { out, rejects } = await collect(eliminateStep(1, true, rules, judge, 16), samples);
    if (out.length + rejects.length !== samples.length) throw new Error(`evol-elimination: ${samples.length} pairs in, ${out.length} kept and ${rejects.length} eliminated`);
    const reasons: Record<string, number> = {};
    for (const reject of rejects) reasons[reject.reason] = (reasons[reject.reason] ?? 0) + 1;
    const check =
      rules.gainCheck === "judge"
        ? "the rules and the LLM equality judge (simulator)"
        : `the rules and ROUGE-L >= ${rules.gainThreshold}${rules.gainMinAddedWords > 0 ? ` unless ${rules.gainMinAddedWords}+ words are added` : " alone"}`;
    return { evol_valid_elimination_rate: Number((rejects.length / samples.length).toFixed(3)), evolutions: samples.length, eliminated: rejects.length, check, reasons };
  } finally {
    await sim.close();
  }
}
