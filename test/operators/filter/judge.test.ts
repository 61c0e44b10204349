import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pairwiseJudge, rubricJudge } from "../../../operators/filter/judge.ts";
import { ConfigError, EndpointError, collect, createSample, type Rejection, type Sample } from "../../../src/index.ts";
import { createLlm, extractJson, type Llm } from "../../../src/llm/index.ts";
import { SIM_REFUSAL, startSimulator, type Simulator, type SimulatorOptions } from "../../../src/sim/index.ts";

const TOPICS = ["tides", "hash maps", "sourdough", "binary search", "glaciers", "compilers", "bees", "tax law", "orbits", "chess"];
const VERBS = ["Explain", "Summarise", "Compare", "Describe", "Teach"];

function instructionSamples(count: number): Sample[] {
  return Array.from({ length: count }, (_, i) => {
    const topic = TOPICS[i % TOPICS.length]!;
    return createSample({
      id: `s${i}`,
      source: "judge-test",
      data: {
        instruction: `${VERBS[i % VERBS.length]} ${topic} to a new student (case ${i}).`,
        output: `${topic} in brief: point ${i}, then an example, then a caveat.`,
      },
    });
  });
}

function pairSamples(count: number, swap = false): Sample[] {
  return Array.from({ length: count }, (_, i) => {
    const topic = TOPICS[i % TOPICS.length]!;
    const a = `A careful answer about ${topic}, with a worked example (${i}).`;
    const b = `A quick answer about ${topic} (${i}).`;
    return createSample({
      id: `p${i}`,
      source: "judge-test",
      data: { prompt: `Tell me about ${topic}, variant ${i}.`, response_a: swap ? b : a, response_b: swap ? a : b },
    });
  });
}

/** Simulators and clients started by a test, closed after the file. */
const open: Array<{ close(): Promise<void> }> = [];

async function endpoint(options: SimulatorOptions = {}, client: Partial<Parameters<typeof createLlm>[0]> = {}): Promise<{ sim: Simulator; llm: Llm }> {
  const sim = await startSimulator({ latencyMs: 1, ...options });
  const llm = createLlm({ model: "sim-1", baseURL: sim.url, maxRetries: 0, backoffBaseMs: 1, ...client });
  open.push(sim, llm);
  return { sim, llm };
}

afterAll(async () => {
  for (const thing of open.reverse()) await thing.close();
});

const byId = <T extends { id: string }>(items: readonly T[]) => new Map(items.map((item) => [item.id, item]));
const reasonsOf = (rejects: readonly Rejection[]) => rejects.map((r) => r.reason);

describe("rubricJudge", () => {
  let llm: Llm;
  /** Every sample's score and rationale, read with a threshold that keeps all of them. */
  let verdicts: Map<string, { score: number; rationale: string }>;
  const samples = instructionSamples(24);

  beforeAll(async () => {
    ({ llm } = await endpoint());
    const { out, rejects } = await collect(rubricJudge({ llm, rubric: "Correct and clear.", threshold: 1 }), samples);
    expect(rejects).toEqual([]);
    verdicts = new Map(out.map((s) => [s.id, { score: s.scores.judge!, rationale: s.provenance.steps.at(-1)!.note! }]));
  });

  it("keeps samples scoring at least the threshold and rejects the rest as low_score with the rationale", async () => {
    const { out, rejects, metrics } = await collect(rubricJudge({ llm, rubric: "Correct and clear.", threshold: 7 }), samples);
    const expectedKept = samples.filter((s) => verdicts.get(s.id)!.score >= 7).map((s) => s.id);
    expect(out.map((s) => s.id).sort()).toEqual(expectedKept.sort());
    expect(out.length).toBeGreaterThan(0);
    expect(rejects.length).toBeGreaterThan(0);
    for (const sample of out) expect(sample.scores.judge).toBe(verdicts.get(sample.id)!.score);
    for (const reject of rejects) {
      const verdict = verdicts.get(reject.sample.id)!;
      expect(reject).toMatchObject({ operator: "rubric_judge", reason: "low_score", value: verdict.score, threshold: 7, message: verdict.rationale });
      expect(verdict.score).toBeLessThan(7);
    }
    expect(metrics.total("llm.requests")).toBe(samples.length);
    expect(metrics.total("llm.prompt_tokens")).toBeGreaterThan(0);
  });

  it("records model, prompt hash, tokens, latency and the rationale in the step of a kept sample", async () => {
    const { out } = await collect(rubricJudge({ llm, rubric: "Correct and clear.", threshold: 1 }), samples.slice(0, 3));
    for (const sample of out) {
      const step = sample.provenance.steps.at(-1)!;
      expect(step).toMatchObject({ op: "rubric_judge", model: "sim-1" });
      expect(step.promptHash).toMatch(/^[0-9a-f]+$/);
      expect(step.promptTokens).toBeGreaterThan(0);
      expect(step.completionTokens).toBeGreaterThan(0);
      expect(step.latencyMs).toBeGreaterThanOrEqual(0);
      expect(step.note).toBe(verdicts.get(sample.id)!.rationale);
      expect(step.note!.length).toBeGreaterThan(0);
      expect(sample.data).toBe(samples.find((s) => s.id === sample.id)!.data);
    }
    expect(new Set(out.map((s) => s.provenance.steps.at(-1)!.promptHash)).size).toBe(3);
  });

  it("keeps scores on the configured scale under the configured key, and rejects samples with nothing to judge", async () => {
    const empty = createSample({ id: "empty", source: "judge-test", data: { instruction: "x", output: "  " } });
    const { out, rejects } = await collect(
      rubricJudge({ llm, rubric: "Correct.", fields: "output", scale: [3, 5], threshold: 4, scoreKey: "quality" }),
      [...samples.slice(0, 12), empty],
    );
    for (const sample of out) expect([4, 5]).toContain(sample.scores.quality);
    const low = rejects.filter((r) => r.reason === "low_score");
    for (const reject of low) expect(reject.value).toBe(3);
    expect(out.length).toBeGreaterThan(0);
    expect(low.length).toBeGreaterThan(0);
    expect(rejects.find((r) => r.sample.id === "empty")?.reason).toBe("no_text");
    expect(out.length + rejects.length).toBe(13);
  });

  it("reads the verdict from json_object answers when the endpoint has no structured outputs", async () => {
    const { llm: plain } = await endpoint({}, { supportsJsonSchema: false });
    const { out, rejects } = await collect(rubricJudge({ llm: plain, rubric: "Correct and clear.", threshold: 1 }), samples.slice(0, 8));
    expect(rejects).toEqual([]);
    for (const sample of out) {
      expect(Number.isInteger(sample.scores.judge)).toBe(true);
      expect(sample.scores.judge).toBeGreaterThanOrEqual(1);
      expect(sample.scores.judge).toBeLessThanOrEqual(10);
    }
  });

  it("rejects refused, truncated and unreadable verdicts with their reason and raw text", async () => {
    const { sim, llm: faulty } = await endpoint({ faults: { refusal: 0.2, length: 0.2, malformed: 0.25 }, seed: 3 });
    const many = instructionSamples(40);
    const { out, rejects } = await collect(rubricJudge({ llm: faulty, rubric: "Correct.", threshold: 1 }), many);
    const stats = sim.stats();
    const of = (reason: string) => rejects.filter((r) => r.reason === reason);
    expect(new Set(reasonsOf(rejects))).toEqual(new Set(["judge_refusal", "judge_truncated", "judge_unparseable"]));
    expect(of("judge_refusal").length).toBe(stats.refusals);
    for (const reject of of("judge_refusal")) expect(reject.raw).toBe(SIM_REFUSAL);
    expect(of("judge_truncated").length).toBe(stats.truncated);
    for (const reject of of("judge_truncated")) {
      expect(reject.raw!.length).toBeGreaterThan(0);
      expect(() => JSON.parse(reject.raw!)).toThrow();
    }
    // JSON wrapped in prose is still read; cut-off and single-quoted JSON is not.
    expect(of("judge_unparseable").length).toBeLessThanOrEqual(stats.malformed);
    for (const reject of of("judge_unparseable")) expect(extractJson(reject.raw!)).toBeUndefined();
    expect(out.length + rejects.length).toBe(many.length);

    const retried = await collect(rubricJudge({ llm: faulty, rubric: "Correct.", threshold: 1, retryBadAnswers: 3 }), many);
    expect(retried.rejects.length).toBeLessThan(rejects.length);
    expect(retried.metrics.total("llm.requests")).toBeGreaterThan(many.length);
    for (const reject of retried.rejects) expect(reject.message).toMatch(/after 3 retries/);
  });

  it("rejects a sample as llm_error when the endpoint refuses its request", async () => {
    const { llm } = await endpoint();
    const { out, rejects, metrics } = await collect(rubricJudge({ llm, rubric: "Correct.", temperature: 9 }), samples.slice(0, 3));
    expect(out).toEqual([]);
    expect(reasonsOf(rejects)).toEqual(["llm_error", "llm_error", "llm_error"]);
    for (const reject of rejects) expect(reject.message).toMatch(/400/);
    expect(metrics.total("llm.failures")).toBe(3);
  });

  it("stops the run instead of rejecting when the endpoint fails every request (an outage is no verdict)", async () => {
    const { llm: broken } = await endpoint({ faults: { "500": 1 } }, { maxRetries: 1, outageSeconds: 0 });
    const error = await collect(rubricJudge({ llm: broken, rubric: "Correct." }), samples.slice(0, 3)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EndpointError);
    expect((error as Error).message).toMatch(/500 /);
  });

  it("refuses settings that cannot work", () => {
    expect(() => rubricJudge({ llm, rubric: "" })).toThrow(ConfigError);
    expect(() => rubricJudge({ llm, rubric: "ok", threshold: 11 })).toThrow(/threshold/);
    expect(() => rubricJudge({ llm, rubric: "ok", scale: [5, 5] })).toThrow(/scale/);
  });
});

describe("pairwiseJudge", () => {
  let llm: Llm;
  const samples = pairSamples(24);
  /** The default judge's run over `samples`, shared by the tests that compare against it. */
  let straight: Awaited<ReturnType<typeof collect>>;

  beforeAll(async () => {
    ({ llm } = await endpoint());
    straight = await collect(pairwiseJudge({ llm, criteria: "Helpful and correct." }), samples);
  });

  type Said = { winner: "first" | "second" | "tie"; rationale: string; first_score?: number; second_score?: number };
  /** A verdict in terms of responses A and B; in the B/A order the first position holds B. */
  const asAB = (winner: Said["winner"], swapped: boolean) => (winner === "tie" ? "tie" : (winner === "first") !== swapped ? "a" : "b");
  const rawVerdicts = (reject: Rejection) => {
    const raw = JSON.parse(reject.raw!) as { ab: string; ba: string };
    return { ab: JSON.parse(raw.ab) as Said, ba: JSON.parse(raw.ba) as Said };
  };
  const ids = (items: readonly { id: string }[]) => items.map((item) => item.id).sort();

  it("keeps only verdicts that agree once the swap is undone and writes the DPO pair", () => {
    const { out, rejects, metrics } = straight;
    expect(out.length).toBeGreaterThan(0);
    expect(rejects.filter((r) => r.reason === "position_bias").length).toBeGreaterThan(0);
    expect(new Set(reasonsOf(rejects))).toEqual(new Set(["position_bias", "tie"]));
    expect(out.length + rejects.length).toBe(samples.length);
    expect(metrics.total("llm.requests")).toBe(2 * samples.length);

    for (const sample of out) {
      const step = sample.provenance.steps.at(-1)!;
      const note = JSON.parse(step.note!) as { ab: Said; ba: Said };
      const pick = asAB(note.ab.winner, false);
      expect(asAB(note.ba.winner, true)).toBe(pick);
      expect(pick).not.toBe("tie");
      expect(sample.data.chosen).toBe(pick === "a" ? sample.data.response_a : sample.data.response_b);
      expect(sample.data.rejected).toBe(pick === "a" ? sample.data.response_b : sample.data.response_a);
      expect(sample.scores).toEqual({ judge_agreement: 1 });
      expect(note.ab.rationale.length).toBeGreaterThan(0);
      expect(note.ba.rationale.length).toBeGreaterThan(0);
      expect(step).toMatchObject({ op: "pairwise_judge", model: "sim-1" });
      expect(step.promptTokens).toBeGreaterThan(0);
    }
    for (const reject of rejects) {
      const { ab, ba } = rawVerdicts(reject);
      if (reject.reason === "position_bias") {
        expect(asAB(ab.winner, false)).not.toBe(asAB(ba.winner, true));
        expect(reject.message).toContain(JSON.parse(reject.raw!).ab);
        expect(reject.message).toContain(JSON.parse(reject.raw!).ba);
      } else {
        expect([ab.winner, ba.winner]).toEqual(["tie", "tie"]);
      }
    }
  });

  it("reaches the same preference when the data holds the responses the other way round", async () => {
    const swapped = await collect(pairwiseJudge({ llm, criteria: "Helpful and correct." }), pairSamples(24, true));
    // Swapping A and B in the data sends the same two prompts, so the judge says the same things.
    expect(ids(swapped.out)).toEqual(ids(straight.out));
    const kept = byId(straight.out);
    for (const sample of swapped.out) {
      expect(sample.data.chosen).toBe(kept.get(sample.id)!.data.chosen);
      expect(sample.data.rejected).toBe(kept.get(sample.id)!.data.rejected);
    }
    const reasons = (rejects: readonly Rejection[]) => rejects.map((r) => `${r.sample.id}:${r.reason}`).sort();
    expect(reasons(swapped.rejects)).toEqual(reasons(straight.rejects));
  });

  it("keeps ties with keepTies, without a chosen or rejected response", async () => {
    const { out, rejects } = await collect(pairwiseJudge({ llm, criteria: "Helpful and correct.", keepTies: true }), samples);
    const ties = out.filter((s) => s.scores.judge_tie === 1);
    expect(ties.length).toBeGreaterThan(0);
    expect(ids(ties)).toEqual(ids(straight.rejects.filter((r) => r.reason === "tie").map((r) => r.sample)));
    for (const tie of ties) {
      expect(tie.data).not.toHaveProperty("chosen");
      expect(tie.data).not.toHaveProperty("rejected");
    }
    expect(new Set(reasonsOf(rejects))).toEqual(new Set(["position_bias"]));
  });

  it("writes the margin between the chosen and rejected responses' scores over both orders", async () => {
    const { out } = await collect(pairwiseJudge({ llm, criteria: "Helpful and correct.", scores: true, scale: [1, 5] }), samples);
    expect(out.length).toBeGreaterThan(0);
    for (const sample of out) {
      const note = JSON.parse(sample.provenance.steps.at(-1)!.note!) as { ab: Required<Said>; ba: Required<Said> };
      const meanA = (note.ab.first_score + note.ba.second_score) / 2;
      const meanB = (note.ab.second_score + note.ba.first_score) / 2;
      const pick = asAB(note.ab.winner, false);
      expect(sample.scores.judge_margin).toBe(pick === "b" ? meanB - meanA : meanA - meanB);
      for (const score of [note.ab.first_score, note.ab.second_score, note.ba.first_score, note.ba.second_score]) {
        expect(score).toBeGreaterThanOrEqual(1);
        expect(score).toBeLessThanOrEqual(5);
      }
    }
  });

  it("sends the two orders of one sample at the same time", async () => {
    const { sim, llm: slow } = await endpoint({ latencyMs: 40 });
    const { rejects, out } = await collect(pairwiseJudge({ llm: slow, criteria: "Correct.", concurrency: 1 }), samples.slice(0, 3));
    expect(out.length + rejects.length).toBe(3);
    expect(sim.stats().peakConcurrency).toBe(2);
  });

  it("rejects a refused order with the order named and the raw refusal, and empty pairs as missing_response", async () => {
    const { llm: faulty } = await endpoint({ faults: { refusal: 0.3 }, seed: 5 });
    const empty = createSample({ id: "empty", source: "judge-test", data: { prompt: "p", response_a: "a", response_b: "" } });
    const { rejects } = await collect(pairwiseJudge({ llm: faulty, criteria: "Correct." }), [...samples.slice(0, 16), empty]);
    const refused = rejects.filter((r) => r.reason === "judge_refusal");
    expect(refused.length).toBeGreaterThan(0);
    for (const reject of refused) {
      expect(reject.raw).toBe(SIM_REFUSAL);
      expect(reject.message).toMatch(/^(A\/B|B\/A) order: /);
    }
    expect(rejects.find((r) => r.sample.id === "empty")).toMatchObject({ reason: "missing_response", message: "response B is empty" });
  });

  it("refuses settings that cannot work", () => {
    expect(() => pairwiseJudge({ llm, criteria: " " })).toThrow(ConfigError);
    expect(() => pairwiseJudge({ llm, criteria: "ok", chosen: "x", rejected: "x" })).toThrow(/different fields/);
  });
});
