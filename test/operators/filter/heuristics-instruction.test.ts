import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { collect, createSample, resolveDataPath } from "../../../src/index.ts";
import { heuristicFilter, instructionPreset } from "../../../operators/filter/index.ts";

// The 175 human-written Self-Instruct seed tasks, shipped in the project's data/ folder (see data/README.md).
const SEEDS = resolveDataPath("builtin:self_instruct_seed_tasks.jsonl");

function instructions(texts: string[]) {
  return texts.map((instruction, i) => createSample({ id: `i${i}`, data: { instruction }, source: "test" }));
}

describe("instructionPreset", () => {
  it("keeps 174 of the 175 Self-Instruct seed instructions, dropping only the one that mentions music", async () => {
    const seeds = readFileSync(SEEDS, "utf8")
      .split("\n")
      .filter((line) => line.trim().length > 0)
      .map((line) => {
        const task = JSON.parse(line) as { id: string; instruction: string };
        return createSample({ id: task.id, data: { instruction: task.instruction }, source: "seed_tasks", origin: "human" });
      });
    expect(seeds).toHaveLength(175);
    const { out, rejects } = await collect(heuristicFilter(instructionPreset), seeds);
    expect(out).toHaveLength(174);
    expect(rejects.map((r) => [r.operator, r.reason, r.message])).toEqual([
      ["instruction_heuristics", "unsupported_modality", "music"],
    ]);
    // The seed asks to classify news articles into topics, one of which is "music": the keyword list's
    // known cost, accepted because generated tasks that ask for music are far more common.
    expect(String(rejects[0]!.sample.data.instruction)).toMatch(/categories/);
  });

  it("drops requests for images, plots, files and other modalities a text model cannot serve", async () => {
    const texts = [
      "Draw a picture of a cat sitting on a fence.",
      "Plot the population of France over the last century.",
      "Generate an image of a sunset over the mountains.",
      "Open the attached file and summarise the first chapter.",
      "Go to the website and tell me the price of the shoes.",
      "Create a flowchart that shows how a bill becomes law.",
      "Listen to this audio clip and transcribe it for me.",
      "Describe what is happening in the video in detail.",
    ];
    const { out, rejects } = await collect(heuristicFilter(instructionPreset), instructions(texts));
    expect(out).toEqual([]);
    expect(rejects.map((r) => r.message)).toEqual(["draw", "plot", "image", "file", "go to", "flowchart", "audio", "video"]);
    expect(new Set(rejects.map((r) => r.reason))).toEqual(new Set(["unsupported_modality"]));
  });

  it("matches modality words only as whole words", async () => {
    const texts = ["Describe the drawing style of the Renaissance painters.", "Explain what profiles and mapping functions are."];
    const { out } = await collect(heuristicFilter(instructionPreset), instructions(texts));
    expect(out).toHaveLength(2);
  });

  it("drops instructions that start with punctuation or a non-ASCII character", async () => {
    const texts = ["- Write a short poem about autumn leaves.", "  ¿Cuál es la capital de Francia hoy?", "Write a short poem about autumn leaves."];
    const { out, rejects } = await collect(heuristicFilter(instructionPreset), instructions(texts));
    expect(out.map((s) => s.id)).toEqual(["i2"]);
    expect(rejects.map((r) => [r.reason, r.message])).toEqual([
      ["starts_with_punctuation", "-"],
      ["non_ascii_start", "¿"],
    ]);
  });

  it("keeps instructions of 3 to 150 words and drops shorter or longer ones", async () => {
    const texts = ["Tell a joke.", "Summarise.", "Explain this", `Summarise ${"very ".repeat(148)}briefly.`, `Summarise ${"very ".repeat(149)}briefly.`];
    const { out, rejects } = await collect(heuristicFilter(instructionPreset), instructions(texts));
    expect(out.map((s) => s.id)).toEqual(["i0", "i3"]);
    expect(rejects.map((r) => [r.reason, r.value, r.threshold])).toEqual([
      ["too_few_words", 1, 3],
      ["too_few_words", 2, 3],
      ["too_many_words", 151, 150],
    ]);
  });
});
