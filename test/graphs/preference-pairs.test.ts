import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { buildGraph } from "../../src/index.ts";
import { exportRun } from "../../src/io/export.ts";
import definition, { defaults, promptText } from "../../graphs/preference-pairs.ts";
import { ASPECTS, binarise, PRINCIPLES, PRINCIPLE_NAMES, type AspectRatings } from "../../graphs/lib/ultrafeedback.ts";
import { useGraphRuns, useRecordingSimulator, type RecordedRequest } from "../support/graph-run.ts";

const { runGraph } = useGraphRuns();

type Step = { op: string; model: string | null; note: string | null };
const COLUMNS = ["prompt", "chosen", "rejected", "chosen_model", "rejected_model", "chosen_temperature", "rejected_temperature"];

describe("graphs/preference-pairs, judge: pairwise", () => {
  it("turns prompts into judged DPO pairs, rejecting pairs whose two orders disagree", async () => {
    const { summary, rows, rejects } = await runGraph(definition, { judge: "pairwise", count: 8 });
    // 8 prompts x 3 pairs; the simulator's random verdicts agree across orders about a third of the time.
    expect(summary.accepted + summary.rejected).toBe(24);
    expect(rows.length).toBeGreaterThan(0);
    expect(new Set(rejects.map((row) => (row.reject as { reason: string }).reason))).toEqual(new Set(["position_bias", "tie"]));

    for (const row of rows) {
      const data = row.data as Record<string, unknown>;
      expect(Object.keys(data).filter((key) => key !== "_extra")).toEqual(COLUMNS);
      expect(data.chosen).not.toBe(data.rejected);
      expect(defaults.temperatures).toContain(data.chosen_temperature);
      expect(defaults.temperatures).toContain(data.rejected_temperature);
      expect(data.chosen_temperature).not.toBe(data.rejected_temperature);
      const scores = row.scores as Record<string, number>;
      expect(scores.judge_agreement).toBe(1);
      expect(typeof scores.judge_margin).toBe("number");
      const provenance = row.provenance as { origin: string; depth: number; parents: string[]; steps: Step[] };
      expect(provenance).toMatchObject({ origin: "synthetic", source: "prompts", depth: 1 });
      expect(provenance.parents).toHaveLength(1);
      expect(provenance.steps.map((step) => step.op)).toEqual(["candidates", "pairs", "judge", "dpo"]);
      expect(provenance.steps[0]!.note).toBe("3 of 3 responses");
      // The judge's note keeps both verdicts, each with its rationale.
      const verdicts = JSON.parse(provenance.steps[2]!.note!) as Record<string, { winner: string; rationale: string }>;
      expect(Object.keys(verdicts)).toEqual(["ab", "ba"]);
    }
  });

  it("exports its rows as dpo JSONL", async () => {
    const { out, rows } = await runGraph(definition, { judge: "pairwise", count: 4 });
    const summary = await exportRun(out, { format: "dpo", out: join(out, "dpo.jsonl") });
    const lines = (await readFile(join(out, "dpo.jsonl"), "utf8")).trim().split("\n").map((line) => JSON.parse(line) as Record<string, string>);
    expect(summary).toMatchObject({ written: rows.length, skipped: 0 });
    expect(lines.map((line) => Object.keys(line))).toEqual(rows.map(() => ["prompt", "chosen", "rejected"]));
    expect(lines.map((line) => line.chosen).sort()).toEqual(rows.map((row) => (row.data as { chosen: string }).chosen).sort());
  });

  it("asks each model in `models` and records which one wrote the chosen response", async () => {
    const { rows } = await runGraph(definition, { judge: "pairwise", count: 16, models: ["sim-small", "sim-large"], temperatures: [0.7] });
    expect(rows.length).toBeGreaterThan(0);
    for (const row of rows) {
      const data = row.data as Record<string, unknown>;
      expect(new Set([data.chosen_model, data.rejected_model])).toEqual(new Set(["sim-small", "sim-large"]));
      expect((row.provenance as { steps: Step[] }).steps[0]!.model).toBe("sim-small,sim-large");
    }
  });

  it("drops agreed pairs below minMargin as low_margin", async () => {
    const { rows, rejects } = await runGraph(definition, { judge: "pairwise", count: 8, minMargin: 3 });
    for (const row of rows) expect((row.scores as Record<string, number>).judge_margin).toBeGreaterThanOrEqual(3);
    const low = rejects.filter((row) => (row.reject as { reason: string }).reason === "low_margin");
    expect(low.length).toBeGreaterThan(0);
    for (const row of low) expect((row.reject as { value: number; threshold: number }).threshold).toBe(3);
  });

  it("builds a prompt from a prompt field, or an instruction with its input", () => {
    expect(promptText({ prompt: " Hi " })).toBe("Hi");
    expect(promptText({ instruction: "Sort these.", instances: [{ input: "3, 1, 2", output: "1, 2, 3" }] })).toBe("Sort these.\n\n3, 1, 2");
    expect(promptText({ instruction: "Tell a joke.", input: "" })).toBe("Tell a joke.");
    expect(promptText({ text: "no prompt here" })).toBe("");
  });

  it("refuses a setup that gives fewer than two responses per prompt", async () => {
    await expect(buildGraph(definition, { judge: "pairwise", temperatures: [0.7] })).rejects.toThrow(/a pair needs at least two/);
  });

  it("judges pairs in a seeded order, not index order, so response 0 is not in every pair when k > 3", async () => {
    const { rows, rejects } = await runGraph(definition, { judge: "pairwise", count: 12, temperatures: [0.2, 0.5, 0.8, 1.1], maxPairsPerPrompt: 3 });
    const notes = [...rows, ...rejects]
      .map((row) => (row.provenance as { steps: Step[] } | undefined)?.steps.find((step) => step.op === "pairs")?.note)
      .filter((note): note is string => typeof note === "string");
    expect(notes.length).toBeGreaterThan(12);
    const withZero = notes.filter((note) => / 0 and /.test(note)).length;
    // 3 of the 6 pairs of 4 responses hold response 0: about half by chance, every one in index order.
    expect(withZero / notes.length).toBeLessThan(0.8);
    expect(notes.some((note) => !/ 0 and /.test(note))).toBe(true);
  });
});

const UF_COLUMNS = [
  "prompt",
  "chosen",
  "rejected",
  "chosen_model",
  "rejected_model",
  "chosen_principle",
  "rejected_principle",
  "chosen_rating",
  "rejected_rating",
  "ratings",
];
const POOL = ["pool-a", "pool-b", "pool-c", "pool-d", "pool-e", "pool-f"];
type Rated = { model: string; principle: string; temperature: number; ratings: AspectRatings; mean: number };
type Message = { role: string; content: string };

const messagesOf = (request: RecordedRequest) => request.body.messages as Message[];
const isRating = (request: RecordedRequest) => messagesOf(request)[0]!.content.startsWith("You are an impartial annotator");
/** The completion requests of a run, by the prompt (the user message) they answer. */
function completionsByPrompt(requests: readonly RecordedRequest[]): Map<string, RecordedRequest[]> {
  const byPrompt = new Map<string, RecordedRequest[]>();
  for (const request of requests.filter((r) => !isRating(r))) {
    const prompt = messagesOf(request).at(-1)!.content;
    byPrompt.set(prompt, [...(byPrompt.get(prompt) ?? []), request]);
  }
  return byPrompt;
}

describe("ultrafeedback binarisation", () => {
  const means = (...values: number[]) => values;

  it("chooses the strictly best mean and rejects one with a strictly lower mean", () => {
    for (let key = 0; key < 20; key++) {
      const pick = binarise(means(3, 4.5, 2, 4.25), key);
      expect(pick).toMatchObject({ ok: true, chosen: 1 });
      if (pick.ok) expect([0, 2, 3]).toContain(pick.rejected);
    }
  });

  it("draws the rejected completion by seed from every lower one", () => {
    const rejected = new Set(Array.from({ length: 40 }, (_, key) => binarise(means(3, 4.5, 2, 4.25), key)).map((p) => (p.ok ? p.rejected : -1)));
    expect(rejected).toEqual(new Set([0, 2, 3]));
    expect(binarise(means(3, 4.5, 2, 4.25), "k")).toEqual(binarise(means(3, 4.5, 2, 4.25), "k"));
  });

  it("gives no pair, with a reason, when two completions tie for best or all are equal", () => {
    expect(binarise(means(4, 2, 4, 1), 0)).toEqual({ ok: false, reason: "no_clear_best", message: "responses 1, 3 tie for best at 4" });
    expect(binarise(means(3, 3, 3, 3), 0)).toMatchObject({ ok: false, reason: "no_clear_best" });
    expect(binarise(means(2.5, 2.5), 0)).toMatchObject({ ok: false, reason: "no_clear_best" });
  });
});

describe("graphs/preference-pairs, judge: ultrafeedback (the default)", () => {
  const { requests } = useRecordingSimulator();

  it("answers each prompt with modelsPerPrompt distinct models of the pool, each under a principle", async () => {
    const { rows } = await runGraph(definition, { count: 6, models: POOL });
    const byPrompt = completionsByPrompt(requests);
    expect(byPrompt.size).toBe(6);
    const principles = new Set(Object.values(PRINCIPLES) as string[]);
    for (const [, asked] of byPrompt) {
      const models = asked.map((request) => request.body.model as string);
      expect(new Set(models).size).toBe(defaults.modelsPerPrompt);
      for (const model of models) expect(POOL).toContain(model);
      for (const request of asked) {
        const [system, user] = messagesOf(request);
        expect(system!.role).toBe("system");
        expect(principles.has(system!.content)).toBe(true);
        expect(user!.role).toBe("user");
      }
    }
    // A seeded sample per prompt, not the first four of the pool every time.
    expect(new Set([...byPrompt.values()].flat().map((request) => request.body.model)).size).toBeGreaterThan(defaults.modelsPerPrompt);
    expect(new Set([...byPrompt.values()].flat().map((request) => messagesOf(request)[0]!.content)).size).toBeGreaterThan(1);
    for (const row of rows) {
      expect(POOL).toContain(row.data.chosen_model);
      expect(PRINCIPLE_NAMES).toContain(row.data.chosen_principle);
      expect(PRINCIPLE_NAMES).toContain(row.data.rejected_principle);
    }
  });

  it("sends no system prompt with principles off", async () => {
    await runGraph(definition, { count: 2, models: POOL, principles: false });
    const asked = [...completionsByPrompt(requests).values()].flat();
    expect(asked).toHaveLength(2 * defaults.modelsPerPrompt);
    for (const request of asked) expect(messagesOf(request).map((m) => m.role)).toEqual(["user"]);
  });

  it("cycles fewer models than modelsPerPrompt with a new seed and temperature each round", async () => {
    await runGraph(definition, { count: 3, models: ["solo-a", "solo-b"] });
    for (const [, asked] of completionsByPrompt(requests)) {
      expect(asked.map((request) => request.body.model).sort()).toEqual(["solo-a", "solo-a", "solo-b", "solo-b"]);
      expect(new Set(asked.map((request) => `${request.body.model} ${request.body.seed} ${request.body.temperature}`)).size).toBe(4);
    }
  });

  it("rates every completion of a prompt in one call that names the four aspects", async () => {
    const { rows, summary } = await runGraph(definition, { count: 6, models: POOL });
    const rating = requests.filter(isRating);
    expect(rating).toHaveLength(6);
    for (const request of rating) {
      // The rubric, ahead of the prompt, names each aspect (the schema alone would name them too).
      const rubric = request.text.slice(0, request.text.indexOf("<prompt>"));
      for (const aspect of ASPECTS) expect(rubric).toContain(`- ${aspect}: `);
      for (let i = 1; i <= defaults.modelsPerPrompt; i++) expect(request.text).toContain(`<response_${i}>`);
      expect(request.text).not.toContain(`<response_${defaults.modelsPerPrompt + 1}>`);
    }
    expect(summary.accepted).toBe(rows.length);
    for (const row of rows) {
      const asked = rating.find((request) => request.text.includes(`<prompt>\n${row.data.prompt as string}\n</prompt>`))!;
      expect(asked).toBeDefined();
      // Every completion is in the rating request, in order: the chosen and rejected ones where binarise found them.
      const shown = Array.from({ length: defaults.modelsPerPrompt }, (_, i) => new RegExp(`<response_${i + 1}>\\n([^]*?)\\n</response_${i + 1}>`).exec(asked.text)?.[1]);
      for (const text of shown) expect(text?.trim()).toBeTruthy();
      expect(new Set(shown).size).toBe(defaults.modelsPerPrompt);
      const [, chosen, rejected] = /chosen response (\d+), rejected response (\d+)/.exec(row.provenance.steps[2]!.note!)!.map(Number);
      expect(shown[chosen! - 1]).toBe(row.data.chosen);
      expect(shown[rejected! - 1]).toBe(row.data.rejected);
      expect(JSON.parse(row.data.ratings as string)).toHaveLength(defaults.modelsPerPrompt);
    }
  });

  it("keeps only rows whose chosen mean is strictly above the rejected one, and rejects ties as no_clear_best", async () => {
    const { summary, rows, rejects } = await runGraph(definition, { count: 24, models: POOL });
    expect(summary.accepted + summary.rejected).toBe(24);
    expect(rows.length).toBeGreaterThan(0);
    for (const row of rows) {
      const data = row.data as Record<string, unknown>;
      expect(Object.keys(data).filter((key) => key !== "_extra")).toEqual(UF_COLUMNS);
      const rated = JSON.parse(data.ratings as string) as Rated[];
      const means = rated.map((c) => ASPECTS.reduce((sum, aspect) => sum + c.ratings[aspect], 0) / ASPECTS.length);
      const best = Math.max(...means);
      expect(means.filter((mean) => mean === best)).toHaveLength(1);
      expect(data.chosen_rating).toBe(best);
      expect(data.rejected_rating as number).toBeLessThan(best);
      expect(means).toContain(data.rejected_rating);
      expect(row.scores.rating_margin).toBeGreaterThan(0);
      expect(rated.map((c) => c.model)).toContain(data.chosen_model);
      expect(row.provenance.steps.map((step) => step.op)).toEqual(["completions", "rate", "binarise"]);
    }
    const reasons = rejects.map((row) => row.reject!.reason);
    expect(reasons.length).toBeGreaterThan(0);
    expect(new Set(reasons)).toEqual(new Set(["no_clear_best"]));
    for (const row of rejects) expect(row.reject!.message).toMatch(/tie for best/);
  });

  it("gives the same rows for the same seed, other rows for another", async () => {
    const dataOf = (rows: { data: Record<string, unknown> }[]) => rows.map((row) => row.data);
    const first = await runGraph(definition, { count: 6, models: POOL });
    const again = await runGraph(definition, { count: 6, models: POOL });
    const other = await runGraph(definition, { count: 6, models: POOL, seed: 7 });
    expect(dataOf(again.rows)).toEqual(dataOf(first.rows));
    expect(dataOf(other.rows)).not.toEqual(dataOf(first.rows));
  });

  it("exports its rows as dpo JSONL", async () => {
    const { out, rows } = await runGraph(definition, { count: 6, models: POOL });
    const summary = await exportRun(out, { format: "dpo", out: join(out, "dpo.jsonl") });
    expect(summary).toMatchObject({ written: rows.length, skipped: 0 });
    const lines = (await readFile(join(out, "dpo.jsonl"), "utf8")).trim().split("\n").map((line) => JSON.parse(line) as Record<string, string>);
    expect(lines.map((line) => Object.keys(line))).toEqual(rows.map(() => ["prompt", "chosen", "rejected"]));
  });

  it("refuses fewer than two completions per prompt and an unknown judge", async () => {
    await expect(buildGraph(definition, { modelsPerPrompt: 1 })).rejects.toThrow(/modelsPerPrompt is 1; a pair needs at least 2/);
    await expect(buildGraph(definition, { judge: "pointwise" as "pairwise" })).rejects.toThrow(/use "ultrafeedback" or "pairwise"/);
  });
});
