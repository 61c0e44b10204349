import { describe, expect, it } from "vitest";
import { collect, ConfigError, createSample } from "../../../src/index.ts";
import { REFUSAL_PHRASES, refusalFilter } from "../../../operators/filter/index.ts";

function outputs(texts: string[]) {
  return texts.map((output, i) => createSample({ id: `o${i}`, data: { instruction: "Q?", output }, source: "test" }));
}

describe("refusalFilter", () => {
  it("drops answers containing a refusal phrase, naming the phrase, in any case and with curly apostrophes", async () => {
    const texts = [
      "As an AI language model, I do not have feelings.",
      "I’m sorry, but I can’t help with that request.",
      "Sure. Here is the recipe. I CANNOT ASSIST with anything illegal though.",
      "My knowledge cutoff is September 2021, so I may be out of date.",
      "The capital of France is Paris.",
    ];
    const { out, rejects } = await collect(refusalFilter(), outputs(texts));
    expect(out.map((s) => s.id)).toEqual(["o4"]);
    expect(rejects.map((r) => [r.sample.id, r.reason, r.message])).toEqual([
      ["o0", "refusal", "as an AI language model"],
      ["o1", "refusal", "I'm sorry, but"],
      ["o2", "refusal", "I cannot assist"],
      ["o3", "refusal", "my knowledge cutoff"],
    ]);
  });

  it("matches phrases only at word boundaries", async () => {
    const texts = ["Has an AI, Isaac, ever won chess?", "Whereas a language modeller builds grammars."];
    const { out } = await collect(refusalFilter({ phrases: ["as an AI, I", "as a language model"] }), outputs(texts));
    expect(out).toHaveLength(2);
  });

  it("searches every named field", async () => {
    const sample = createSample({ id: "x", data: { instruction: "As an AI, I refuse.", output: "ok" }, source: "test" });
    const { rejects } = await collect(refusalFilter({ fields: ["instruction", "output"] }), [sample]);
    expect(rejects[0]).toMatchObject({ reason: "refusal", message: "As an AI, I" });
  });

  it("strips a leading disclaimer, keeps the answer after it and records the step", async () => {
    const text = "As an AI language model, I don't have personal opinions. However, most critics rank Hamlet first.\nIt is long.";
    const [sample] = outputs([text]);
    const { out, rejects } = await collect(refusalFilter({ mode: "strip" }), [sample!]);
    expect(rejects).toEqual([]);
    expect(out[0]!.data).toEqual({ instruction: "Q?", output: "However, most critics rank Hamlet first.\nIt is long." });
    expect(out[0]!.provenance.steps).toHaveLength(1);
    expect(out[0]!.provenance.steps[0]).toMatchObject({ op: "refusal_filter" });
    expect(out[0]!.provenance.steps[0]!.note).toContain("as an AI language model");
    expect(sample!.data.output).toBe(text);
  });

  it("strips several disclaimer sentences in a row", async () => {
    const text = "I'm sorry, but I cannot browse the web! As an AI, I have no live data. Paris has about two million people.";
    const { out } = await collect(refusalFilter({ mode: "strip" }), outputs([text]));
    expect(out[0]!.data.output).toBe("Paris has about two million people.");
  });

  it("passes answers without a phrase through untouched, with no step", async () => {
    const { out } = await collect(refusalFilter({ mode: "strip" }), outputs(["Paris is the capital of France."]));
    expect(out[0]!.provenance.steps).toEqual([]);
  });

  it("drops a stripped answer when nothing substantive is left, or when a phrase remains later on", async () => {
    const texts = [
      "I'm sorry, but I can't assist with that.",
      "As an AI language model, I cannot say. Sorry!",
      "Here you go. I'm unable to verify this, though.",
    ];
    const { out, rejects } = await collect(refusalFilter({ mode: "strip" }), outputs(texts));
    expect(out).toEqual([]);
    expect(rejects.map((r) => [r.reason, r.message])).toEqual([
      ["refusal", "I'm sorry, but"],
      ["refusal", "as an AI language model"],
      ["refusal", "I'm unable to"],
    ]);
  });

  it("needs field names, not a function, to strip", () => {
    expect(() => refusalFilter({ mode: "strip", fields: (s) => String(s.data.output) })).toThrow(ConfigError);
    expect(() => refusalFilter({ phrases: [] })).toThrow(ConfigError);
  });

  it("ships the documented default phrases", () => {
    for (const phrase of ["as an AI language model", "I can't assist", "I apologize, but", "I don't have personal opinions"]) {
      expect(REFUSAL_PHRASES).toContain(phrase);
    }
  });
});
