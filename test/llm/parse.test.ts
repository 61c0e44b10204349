import { describe, expect, it } from "vitest";
import { extractJson, looksLikeRefusal } from "../../src/llm/index.ts";

describe("extractJson", () => {
  it("reads whole JSON, fenced blocks and the first balanced object inside prose", () => {
    expect(extractJson('{"a":1}')).toEqual({ value: { a: 1 } });
    expect(extractJson('Sure!\n```json\n{"a":[1,2]}\n```\nBye')).toEqual({ value: { a: [1, 2] } });
    expect(extractJson('Here you go: {"text":"a } in a string","n":2} hope it helps {"x":1}')).toEqual({
      value: { text: "a } in a string", n: 2 },
    });
    expect(extractJson("{'a': 1,}")).toBeUndefined();
    expect(extractJson('{"a": 1, "b": ')).toBeUndefined();
  });
});

describe("looksLikeRefusal", () => {
  it("spots refusals at the start of an answer and leaves real answers alone", () => {
    expect(looksLikeRefusal("I'm sorry, but as an AI language model I cannot assist with that request.")).toBe(true);
    expect(looksLikeRefusal("I’m sorry, but I can’t help with that.")).toBe(true);
    expect(looksLikeRefusal("I cannot assist with creating malware.")).toBe(true);
    expect(looksLikeRefusal("Photosynthesis turns light into chemical energy.")).toBe(false);
    expect(looksLikeRefusal(`${"A long real answer. ".repeat(20)}I'm sorry, but that is all.`)).toBe(false);
  });
});
