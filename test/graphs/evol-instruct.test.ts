import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import { SIMULATOR_MODEL, buildGraph, startSimulator } from "../../src/index.ts";
import definition, { defaults, eliminationVerdict, judgedEqual } from "../../graphs/evol-instruct.ts";
import { useGraphRuns, useScriptedModel, type ChatRequest, type OutputRow } from "../support/graph-run.ts";

const { runGraph, tempDir } = useGraphRuns();

/** Accepted rows (id and data) and rejects (id and reason), by id. */
function dataset(rows: OutputRow[], rejects: OutputRow[]) {
  const byId = <T>(list: [string, T][]) => list.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return {
    accepted: byId(rows.map((row) => [row.id, row.data] as [string, unknown])),
    rejected: byId(rejects.map((row) => [row.id, `${row.reject!.operator}:${row.reject!.reason}`] as [string, string])),
  };
}

const RULES = { gainCheck: "rouge", gainThreshold: 0.8, gainMinAddedWords: 10, apologyMaxWords: 80, minOutputWords: 3 } as const;
const ADDED = "while citing two peer reviewed studies published after 2015 and keeping the whole answer under three hundred words";
/** 45 words: a parent long enough that 10 to 20 added words leave ROUGE-L at or above 0.8. */
const LONG = [
  "Explain to a group of first year nursing students how vaccines train the immune system to recognise a germ,",
  "covering what antigens and antibodies are, why memory cells matter for later infections, and why some vaccines",
  "need booster doses after a few years to keep protection",
].join(" ");

describe("graphs/evol-instruct", () => {
  it("writes each seed as a round-0 row and every round's survivors as rows whose depth is their round", async () => {
    const { summary, rows } = await runGraph(definition, { count: 4, rounds: 3 });
    expect(summary.status).toBe("complete");
    expect(rows).toHaveLength(16);
    for (const row of rows) {
      expect(Object.keys(row.data).filter((key) => key !== "_extra").sort()).toEqual(["evolution", "instruction", "output", "parent_instruction", "round"]);
      const round = row.data.round as number;
      expect(row.provenance.steps.at(-1)!.note).toBe("row of its round");
      const ops = row.provenance.steps.map((step) => step.op);
      if (round === 0) {
        // The paper trains on the initial data too: the human seed instruction with a model's answer.
        expect(row.data).toMatchObject({ evolution: "seed", parent_instruction: null });
        expect(row.provenance).toMatchObject({ origin: "human", source: "self_instruct_seed_tasks", depth: 0 });
        expect(ops).toEqual(["respond_0", "fork_0"]);
        expect(row.provenance.steps[0]!.model).toBe(SIMULATOR_MODEL);
        continue;
      }
      expect(row.provenance).toMatchObject({ origin: "synthetic", source: "self_instruct_seed_tasks", depth: round });
      expect(defaults.kinds).toContain(row.data.evolution);
      const expected = ["respond_0", "fork_0"];
      for (let k = 1; k <= round; k++) expected.push(`evolve_${k}`, `respond_${k}`, `eliminate_${k}`);
      expect(ops).toEqual(expected);
      const evolve = row.provenance.steps.find((step) => step.op === `evolve_${round}`)!;
      const scope = row.data.evolution === "breadth" ? "in-breadth" : "in-depth";
      expect(evolve.note).toBe(`${row.data.evolution} (${scope}), round ${round}`);
    }
    expect([0, 1, 2, 3].map((round) => rows.filter((row) => row.data.round === round).length)).toEqual([4, 4, 4, 4]);
    // Each round-k instruction is the parent of a round-(k+1) one.
    const instructions = new Set(rows.filter((row) => (row.data.round as number) < 3).map((row) => row.data.instruction));
    for (const row of rows.filter((r) => (r.data.round as number) > 0)) expect(instructions.has(row.data.parent_instruction)).toBe(true);
  });

  it("runs the authors' settings: temperature 1 and top_p 0.95 sent, 4 rounds, their five prompts, an LLM judging gain", async () => {
    expect(defaults).toMatchObject({ rounds: 4, temperature: 1, topP: 0.95, gainCheck: "judge" });
    expect(defaults.kinds).toEqual(["add_constraints", "deepen", "concretize", "increase_reasoning", "breadth"]);
    const bodies: Record<string, unknown>[] = [];
    const sim = await startSimulator({ seed: defaults.seed, onChatRequest: (body) => bodies.push({ ...body }) });
    try {
      vi.stubEnv("OPENAI_BASE_URL", sim.url);
      vi.stubEnv("RXSYNTH_MODEL", SIMULATOR_MODEL);
      vi.stubEnv("RXSYNTH_CACHE_DIR", "off");
      const { rows } = await runGraph(definition, { count: 3 });
      expect([0, 1, 2, 3, 4].map((round) => rows.filter((row) => row.data.round === round).length)).toEqual([3, 3, 3, 3, 3]);
    } finally {
      await sim.close();
    }
    const content = (body: Record<string, unknown>) => (body.messages as { content: string }[]).map((message) => message.content).join("\n");
    const evolutions = bodies.filter((body) => content(body).includes('{"new_prompt"'));
    const judgements = bodies.filter((body) => content(body).includes("just answer Equal or Not Equal"));
    const answers = bodies.filter((body) => !evolutions.includes(body) && !judgements.includes(body));
    expect([evolutions.length, judgements.length, answers.length]).toEqual([12, 12, 15]);
    for (const body of [...evolutions, ...answers]) expect(body).toMatchObject({ temperature: 1, top_p: 0.95 });
    for (const body of judgements) {
      expect(body.temperature).toBe(0);
      expect(body).not.toHaveProperty("top_p");
    }
    // One request seed per round, so a parent evolved again is not sent the request that failed.
    expect(new Set(evolutions.map((body) => body.seed)).size).toBe(4);
    // complicate_input is not among the authors' five.
    for (const body of evolutions) expect(content(body)).not.toContain("Add a concrete input");
  });

  it("eliminates failed evolutions into rejects with their reason and evolves their parents again in the next round", async () => {
    const { rows, rejects } = await runGraph(definition, { count: 3, rounds: 2, minOutputWords: 100_000 });
    // Round 0 is not an evolution: its rows stay. Each seed fails in round 1, goes back, and fails again in round 2.
    expect(rows.map((row) => row.data.round)).toEqual([0, 0, 0]);
    expect(rejects.map((row) => row.reject!.operator).sort()).toEqual(["eliminate_1", "eliminate_1", "eliminate_1", "eliminate_2", "eliminate_2", "eliminate_2"]);
    const seeds = new Set(rows.map((row) => row.data.instruction));
    for (const row of rejects) {
      expect(row.reject).toMatchObject({ reason: "too_short", threshold: 100_000 });
      expect(row.reject!.value).toBeGreaterThan(0);
      expect(row.provenance.steps.at(-1)!.op).toBe(row.reject!.operator);
      // The round-2 attempt evolved the seed again, not the failed round-1 rewrite.
      expect(seeds.has(row.data.parent_instruction)).toBe(true);
    }
  });

  it("keeps evolutions that add 10 to 20 words to a long parent, which ROUGE-L alone at 0.8 eliminated", () => {
    const evolved = `${LONG} ${ADDED}`;
    const answer = "Vaccines show the immune system a harmless piece of a germ so it learns to recognise it.";
    expect(LONG.split(/\s+/).length).toBeGreaterThanOrEqual(40);
    expect(ADDED.split(/\s+/).length).toBe(18);
    // By default the judge decides gain (the scripted model below runs it), and no rule here eliminates.
    expect(eliminationVerdict(evolved, LONG, answer, defaults)).toBe(true);
    // The ROUGE-L stand-in lets such an evolution through too, unless it is ROUGE-L alone.
    expect(eliminationVerdict(evolved, LONG, answer, { ...defaults, gainCheck: "rouge" })).toBe(true);
    expect(eliminationVerdict(evolved, LONG, answer, { ...defaults, gainCheck: "rouge", gainMinAddedWords: 0 })).toMatchObject({ reason: "no_information_gain", threshold: 0.8 });
  });

  it("eliminates copied prompt words, apologies, stop-word answers, short answers and rewrites without gain", () => {
    const parent = "Explain how vaccines train the immune system.";
    const answer = "Vaccines show the immune system a harmless piece of a germ so it learns to recognise it.";
    expect(eliminationVerdict("Explain, in three steps and for a nurse, how mRNA vaccines train the immune system.", parent, answer, RULES)).toBe(true);
    expect(eliminationVerdict("#Rewritten Prompt#: Explain vaccines to a nurse.", parent, answer, RULES)).toMatchObject({ reason: "copied_prompt_words" });
    // Not copied from the evolution prompt when the parent says it (seed_task_94 does).
    const biased = "Identify the bias or stereotype in the given prompt.";
    expect(eliminationVerdict("Identify the bias or stereotype in the given prompt, and name the group it targets.", biased, answer, RULES)).toBe(true);
    expect(eliminationVerdict("Explain how vaccines train the immune system!", parent, answer, RULES)).toMatchObject({
      reason: "no_information_gain",
      value: 1,
      threshold: 0.8,
    });
    expect(eliminationVerdict("Explain mRNA vaccines to a nurse in three steps.", parent, "Sorry, I cannot explain that.", RULES)).toMatchObject({
      reason: "apology",
      value: 5,
      threshold: 80,
    });
    expect(eliminationVerdict("Explain mRNA vaccines to a nurse in three steps.", parent, "... it is the, and!", RULES)).toMatchObject({ reason: "stop_words_only" });
    expect(eliminationVerdict("Explain mRNA vaccines to a nurse in three steps.", parent, "Antigens.", RULES)).toMatchObject({ reason: "too_short", value: 1, threshold: 3 });
    // With a judge deciding gain, a near copy is not eliminated here.
    expect(eliminationVerdict("Explain how vaccines train the immune system!", parent, answer, { ...RULES, gainCheck: "judge" })).toBe(true);
  });

  it("reads the judge's answer as the paper asks for it: Equal or Not Equal", () => {
    expect(judgedEqual("Equal")).toBe(true);
    expect(judgedEqual("equal.")).toBe(true);
    expect(judgedEqual("Not Equal")).toBe(false);
    expect(judgedEqual("They are not equal: the second adds a constraint.")).toBe(false);
    // Elimination needs equality found: an answer that says neither keeps the evolution.
    expect(judgedEqual("The second instruction asks for more.")).toBe(false);
  });

  it("refuses unknown evolution kinds when the graph is built", async () => {
    await expect(buildGraph(definition, { kinds: ["deepen", "translate"] })).rejects.toThrow(/unknown: translate/);
  });

  it("writes the same rows at any concurrency and answer timing, and after a stopped run is resumed", async () => {
    const options = { count: 8, rounds: 2 };
    const whole = await runGraph(definition, { ...options, concurrency: 32 });
    expect(whole.rows.length).toBeGreaterThan(8);
    const slow = await startSimulator({ seed: defaults.seed, latencyMs: 1, tokensPerS: 20_000, maxConcurrency: 2 });
    try {
      vi.stubEnv("OPENAI_BASE_URL", slow.url);
      vi.stubEnv("RXSYNTH_MODEL", SIMULATOR_MODEL);
      // Every answer from the slow server, none from a response cache shared with the first run.
      vi.stubEnv("RXSYNTH_CACHE_DIR", "off");
      const jittered = await runGraph(definition, { ...options, concurrency: 2 }, { run: { budget: 4 } });
      expect(dataset(jittered.rows, jittered.rejects)).toEqual(dataset(whole.rows, whole.rejects));
    } finally {
      await slow.close();
    }
    vi.stubEnv("OPENAI_BASE_URL", "");
    const out = await tempDir();
    await runGraph(definition, options, { out, run: { limit: 3 } });
    const resumed = await runGraph(definition, options, { out });
    expect(dataset(resumed.rows, resumed.rejects)).toEqual(dataset(whole.rows, whole.rejects));
  }, 120_000);
});

describe("graphs/evol-instruct against a model that follows the prompts", () => {
  // A: its first rewrite copies prompt words. B: the judge finds its first rewrite equal. C: every rewrite
  // adds 18 words to a long parent and the judge finds it not equal.
  const seeds = { A: `Alpha. ${LONG}`, B: `Bravo. ${LONG}`, C: `Charlie. ${LONG}` };
  const attempts = new Map<string, number>();
  const between = (body: string, start: string, end: string) => body.slice(body.indexOf(start) + start.length, body.indexOf(end)).trim();
  const model = useScriptedModel((request: ChatRequest) => {
    const body = request.messages.map((message) => message.content).join("\n");
    if (body.includes('{"new_prompt"')) {
      const parent = between(body, "Prompt:\n", '\n\nReply as JSON: {"new_prompt"');
      const attempt = (attempts.get(parent) ?? 0) + 1;
      attempts.set(parent, attempt);
      const copied = parent === seeds.A && attempt === 1;
      return JSON.stringify({ new_prompt: copied ? `#Rewritten Prompt#: ${parent}` : `${parent} ${ADDED}` });
    }
    if (body.includes("just answer Equal or Not Equal")) {
      const parent = between(body, "The first instruction:\n", "\n\nThe second instruction:");
      const judged = (attempts.get(`judged ${parent}`) ?? 0) + 1;
      attempts.set(`judged ${parent}`, judged);
      return parent === seeds.B && judged === 1 ? "Equal" : "Not Equal";
    }
    return "Vaccines show the immune system a harmless piece of a germ, so that memory cells recognise it quickly when the real infection comes later.";
  });

  it("keeps long evolutions the judge finds not equal, and evolves a failed one's parent again in the next round", async () => {
    const dir = await tempDir("evol-seeds");
    const input = join(dir, "seeds.jsonl");
    await writeFile(input, Object.values(seeds).map((instruction) => JSON.stringify({ instruction })).join("\n") + "\n");
    attempts.clear();
    // Every request reaches the model, whose answers depend on what it was asked before.
    vi.stubEnv("RXSYNTH_CACHE_DIR", "off");
    const { rows, rejects } = await runGraph(definition, { input, rounds: 2, model: "scripted" });
    const lineage = (seed: string) => rows.filter((row) => String(row.data.instruction).startsWith(seed.slice(0, 6))).map((row) => row.data.round);
    // C: never eliminated, though each rewrite is above ROUGE-L 0.8 to its parent.
    expect(lineage(seeds.C).sort()).toEqual([0, 1, 2]);
    // A and B: round 1 failed; round 2 evolved the seed itself again.
    for (const [seed, reason] of [[seeds.A, "copied_prompt_words"], [seeds.B, "no_information_gain"]] as const) {
      expect(lineage(seed).sort()).toEqual([0, 2]);
      const retried = rows.find((row) => row.data.round === 2 && String(row.data.instruction).startsWith(seed.slice(0, 6)))!;
      expect(retried.data.parent_instruction).toBe(seed);
      expect(retried.provenance.depth).toBe(2);
      const failed = retried.provenance.steps.find((step) => step.op === "eliminate_1")!;
      expect(failed.note).toBe(`back to the pool: ${reason}`);
      expect(rejects.find((row) => row.reject!.operator === "eliminate_1" && row.data.parent_instruction === seed)!.reject!.reason).toBe(reason);
    }
    expect(rejects).toHaveLength(2);
    expect(model.requests.length).toBeGreaterThan(0);
  });
});
