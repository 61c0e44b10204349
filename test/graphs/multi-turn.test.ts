import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { exportRun } from "../../src/io/export.ts";
import definition, { cleanUserTurn, openerText, type Message } from "../../graphs/multi-turn.ts";
import { wordCount } from "../../graphs/lib/llm-steps.ts";
import { useGraphRuns, useScriptedModel, type OutputRow } from "../support/graph-run.ts";

const { runGraph, tempDir } = useGraphRuns();

const dataOf = (row: OutputRow) => row.data;
const messagesOf = (row: OutputRow) => JSON.parse(dataOf(row).messages as string) as Message[];
const stepsOf = (row: OutputRow) => row.provenance.steps;

describe("graphs/multi-turn", () => {
  it("writes k-turn conversations as OpenAI messages with turn counts and lengths", async () => {
    const { out, rows, rejects } = await runGraph(definition, { count: 4, turns: 3, system: "You are a concise, friendly assistant." });
    expect(rejects).toEqual([]);
    expect(rows).toHaveLength(4);
    for (const row of rows) {
      expect(Object.keys(dataOf(row)).filter((key) => key !== "_extra")).toEqual(["messages", "turns", "words"]);
      const messages = messagesOf(row);
      expect(messages.map((m) => m.role)).toEqual(["system", "user", "assistant", "user", "assistant", "user", "assistant"]);
      expect(messages[0]!.content).toBe("You are a concise, friendly assistant.");
      expect(messages.every((m) => typeof m.content === "string" && m.content.length > 0)).toBe(true);
      const words = messages.filter((m) => m.role !== "system").map((m) => wordCount(m.content));
      expect(dataOf(row)).toMatchObject({ turns: 3, words: words.reduce((a, b) => a + b, 0) });
      const scores = row.scores as Record<string, number>;
      expect(scores.turns).toBe(3);
      expect(scores.user_words).toBeCloseTo((words[0]! + words[2]! + words[4]!) / 3, 9);
      expect(scores.assistant_words).toBeCloseTo((words[1]! + words[3]! + words[5]!) / 3, 9);
      // One generation from the human opener; every later turn is a step naming the model.
      expect(row.provenance).toMatchObject({ origin: "synthetic", source: "openers", depth: 1, parents: [expect.stringMatching(/^openers:seed_task_\d+$/)] });
      expect(stepsOf(row).map((step) => step.op)).toEqual(["assistant_1", "user_2", "assistant_2", "user_3", "assistant_3", "stats"]);
      expect(stepsOf(row).slice(0, 5).every((step) => step.model === "rxsynth-sim")).toBe(true);
    }
    // Training stacks read it as ShareGPT: system, then human and gpt alternating.
    await exportRun(out, { format: "sharegpt", out: join(out, "sharegpt.jsonl") });
    const exported = (await readFile(join(out, "sharegpt.jsonl"), "utf8")).trim().split("\n").map((line) => JSON.parse(line) as { conversations: { from: string }[] });
    expect(exported).toHaveLength(4);
    for (const record of exported) expect(record.conversations.map((turn) => turn.from)).toEqual(["system", "human", "gpt", "human", "gpt", "human", "gpt"]);
  });

  describe("with a model over HTTP whose turns sometimes fail", () => {
    // Conversation "alpha": the assistant refuses at turn 2; "beta": the simulated user says nothing;
    // "gamma": the first reply is two words; "delta" goes well.
    useScriptedModel((request) => {
      const all = request.messages.map((m) => m.content).join("\n");
      const playingUser = request.messages[0]!.content.startsWith("You play the human user");
      const assistantTurn = request.messages.filter((m) => m.role === "assistant").length + 1;
      let content = playingUser ? "User: Could you explain the second point in more detail, please?" : "Here is a careful answer with several useful details.";
      if (all.includes("alpha") && !playingUser && assistantTurn === 2) content = "I'm sorry, but I cannot help with that request.";
      if (all.includes("beta") && playingUser) content = "";
      if (all.includes("gamma") && !playingUser) content = "Sure thing.";
      return content;
    });

    it("rejects conversations whose turns refuse, come back empty or are too short, naming the turn", async () => {
      const openers = join(await tempDir(), "openers.jsonl");
      await writeFile(openers, ["alpha", "beta", "gamma", "delta"].map((word) => JSON.stringify({ id: word, prompt: `Tell me about ${word} particles.` })).join("\n"));
      const { rows, rejects } = await runGraph(definition, { openersPath: openers, turns: 2 });
      const reasons = Object.fromEntries(rejects.map((row) => [(row.provenance as { parents: string[] }).parents[0], [(row.reject as { operator: string }).operator, (row.reject as { reason: string }).reason]]));
      expect(reasons).toEqual({ "openers:alpha": ["assistant_2", "refusal"], "openers:beta": ["user_2", "empty"], "openers:gamma": ["assistant_1", "short_turn"] });
      expect(rows).toHaveLength(1);
      // The user simulator's "User:" label is not part of what the user says.
      expect(messagesOf(rows[0]!).map((m) => m.content)).toEqual([
        "Tell me about delta particles.",
        "Here is a careful answer with several useful details.",
        "Could you explain the second point in more detail, please?",
        "Here is a careful answer with several useful details.",
      ]);
    });
  });

  it("opens with a prompt, or an instruction and its first input", () => {
    expect(openerText({ instruction: "Fix the grammar.", instances: [{ input: "He go home.", output: "He goes home." }] })).toBe("Fix the grammar.\n\nHe go home.");
    expect(openerText({ prompt: "Hello" })).toBe("Hello");
    expect(cleanUserTurn('**User:** "What about cost?"')).toBe("What about cost?");
  });
});
