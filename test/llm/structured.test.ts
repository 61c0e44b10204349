import { describe, expect, it } from "vitest";
import { z } from "zod";
import { describeIssues, readAnswer, structuredFormat, type ChatChoice } from "../../src/llm/index.ts";

const choice = (text: string, extra: Partial<ChatChoice> = {}): ChatChoice => ({ index: 0, text, finishReason: "stop", completionTokens: 3, ...extra });
const Answer = z.object({ answer: z.string(), score: z.number().int() });
const prompt = [{ role: "user" as const, content: "Rate this." }];

describe("structuredFormat", () => {
  it("asks for json_schema, strict only when every object requires all its properties and allows no others", () => {
    const strict = structuredFormat({ supportsJsonSchema: true }, Answer.strict(), "rating");
    expect(strict.structured).toBe("json_schema");
    expect(strict.responseFormat).toMatchObject({ type: "json_schema", json_schema: { name: "rating", strict: true } });
    expect(strict.jsonSchema).not.toHaveProperty("$schema");
    // Described in the prompt too, for servers that accept json_schema and ignore it.
    const [system, ...rest] = strict.messages(prompt);
    expect(system).toMatchObject({ role: "system", content: expect.stringContaining(JSON.stringify(strict.jsonSchema)) });
    expect(rest).toEqual(prompt);

    const loose = structuredFormat({ supportsJsonSchema: true }, Answer.extend({ note: z.string().optional() }).strict(), "rating");
    expect(loose.responseFormat).toMatchObject({ json_schema: { strict: false } });
  });

  it("falls back to json_object with the schema in a leading system message", () => {
    const format = structuredFormat({ supportsJsonSchema: false }, Answer, "rating");
    expect(format.responseFormat).toEqual({ type: "json_object" });
    const [system, ...rest] = format.messages(prompt);
    expect(system!.role).toBe("system");
    expect(system!.content).toContain(JSON.stringify(format.jsonSchema));
    expect(rest).toEqual(prompt);
  });
});

describe("readAnswer", () => {
  it("reads JSON leniently and validates it against the schema", () => {
    expect(readAnswer(choice('Sure: ```json\n{"answer": "yes", "score": 4}\n```'), Answer)).toEqual({
      ok: true,
      value: { answer: "yes", score: 4 },
      raw: 'Sure: ```json\n{"answer": "yes", "score": 4}\n```',
    });
  });

  it("classifies refusals, cut-off, empty, unparseable and mismatched answers, keeping the raw text", () => {
    const reasons = [
      readAnswer(choice("", { refusal: "I can't help with that." }), Answer),
      readAnswer(choice("I'm sorry, but as an AI language model I cannot help with that.")),
      readAnswer(choice('{"answer": "ye', { finishReason: "length" }), Answer),
      readAnswer(choice("   ")),
      readAnswer(undefined),
      readAnswer(choice("{answer: yes"), Answer),
      readAnswer(choice('{"answer": "yes", "score": 4.5}'), Answer),
    ].map((read) => (read.ok ? "ok" : [read.bad.reason, read.bad.raw]));
    expect(reasons).toEqual([
      ["refusal", "I can't help with that."],
      ["refusal", "I'm sorry, but as an AI language model I cannot help with that."],
      ["truncated", '{"answer": "ye'],
      ["empty", "   "],
      ["empty", ""],
      ["unparseable", "{answer: yes"],
      ["schema_mismatch", '{"answer": "yes", "score": 4.5}'],
    ]);
  });

  it("lets a JSON answer quote a refusal when a schema was asked for, and names the failing path", () => {
    const quoting = readAnswer(choice('{"answer": "I\'m sorry, but as an AI language model I cannot help", "score": 1}'), Answer);
    expect(quoting.ok).toBe(true);
    const mismatch = readAnswer(choice('{"answer": 3, "score": 1}'), Answer);
    expect(!mismatch.ok && mismatch.bad.message).toBe("answer: Invalid input: expected string, received number");
    const checked = Answer.safeParse({ answer: 3 });
    expect(!checked.success && describeIssues(checked.error)).toMatch(/^answer: .*; score: /);
  });

  it("turns a throwing reader into unparseable and passes the text through without one", () => {
    const thrown = readAnswer(choice("not a number"), (text) => {
      if (!/^\d+$/.test(text)) throw new Error(`not digits: ${text}`);
      return Number(text);
    });
    expect(thrown).toEqual({ ok: false, bad: { reason: "unparseable", raw: "not a number", message: "not digits: not a number" } });
    expect(readAnswer(choice("42"), Number)).toEqual({ ok: true, value: 42, raw: "42" });
    expect(readAnswer(choice("plain text"))).toEqual({ ok: true, value: "plain text", raw: "plain text" });
  });
});
