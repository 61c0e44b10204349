import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { collect } from "../../../src/index.ts";
import { exactDedup } from "../../../operators/dedup/exact-dedup.ts";
import { sample } from "./fixtures.ts";

const texts = (items: string[]) => items.map((text, i) => sample(`s${i}`, { text }));
const dirs: string[] = [];
afterAll(() => dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

describe("exactDedup", () => {
  it("keeps the first of equal texts and rejects the rest as duplicates of it", async () => {
    const { out, rejects } = await collect(exactDedup(), texts(["alpha", "beta", "alpha", "Alpha  ", "beta"]));
    expect(out.map((s) => s.id)).toEqual(["s0", "s1"]);
    expect(rejects.map((r) => [r.sample.id, r.reason, r.duplicateOf, r.operator])).toEqual([
      ["s2", "exact_duplicate", "s0", "exact_dedup"],
      ["s3", "exact_duplicate", "s0", "exact_dedup"],
      ["s4", "exact_duplicate", "s1", "exact_dedup"],
    ]);
  });

  it("lowercases and collapses whitespace by default but keeps punctuation", async () => {
    const { out } = await collect(exactDedup(), texts(["Hello world!", "  hello   WORLD! ", "hello world"]));
    expect(out.map((s) => s.id)).toEqual(["s0", "s2"]);
  });

  it("honours each normalisation option", async () => {
    const input = ["Hello, World", "hello world", "hello  world", "HELLO WORLD"];
    const ids = async (options: Parameters<typeof exactDedup>[0]) => (await collect(exactDedup(options), texts(input))).out.map((s) => s.id);
    expect(await ids({ stripPunctuation: true })).toEqual(["s0"]);
    expect(await ids({ lowercase: false, stripPunctuation: true })).toEqual(["s0", "s1", "s3"]);
    expect(await ids({ collapseWhitespace: false })).toEqual(["s0", "s1", "s2"]);
  });

  it("treats text moved between fields as a different sample", async () => {
    const samples = [
      sample("a", { instruction: "add one", output: "two" }),
      sample("b", { instruction: "add", output: "one two" }),
      sample("c", { instruction: "ADD ONE", output: "two" }),
    ];
    const { out, rejects } = await collect(exactDedup({ fields: ["instruction", "output"] }), samples);
    expect(out.map((s) => s.id)).toEqual(["a", "b"]);
    expect(rejects[0]?.duplicateOf).toBe("a");
  });

  it("remembers kept texts across a resumed run and keeps a sample that meets its own entry", async () => {
    const runDir = mkdtempSync(join(tmpdir(), "rxsynth-exact-"));
    dirs.push(runDir);
    await collect(exactDedup(), texts(["one", "two"]), { runDir });
    expect(readdirSync(join(runDir, "state"))).toEqual(["exact_dedup.bin"]);
    const again = await collect(exactDedup(), [sample("s1", { text: "two" }), sample("x", { text: "ONE" }), sample("y", { text: "three" })], { runDir });
    expect(again.out.map((s) => s.id)).toEqual(["s1", "y"]);
    expect(again.rejects.map((r) => [r.sample.id, r.duplicateOf])).toEqual([["x", "s0"]]);
  });

  it("rejects a second sample with an equal id and equal text: an entry this run made is never the sample itself", async () => {
    const { out, rejects } = await collect(exactDedup(), [sample("a:1", { text: "same" }), sample("a:1", { text: "same" })]);
    expect(out).toHaveLength(1);
    expect(rejects.map((r) => [r.sample.id, r.reason, r.duplicateOf])).toEqual([["a:1", "exact_duplicate", "a:1"]]);
  });

  it("lets a checkpointed entry be met by its own replayed sample once, not twice", async () => {
    const runDir = mkdtempSync(join(tmpdir(), "rxsynth-exact-"));
    dirs.push(runDir);
    await collect(exactDedup(), [sample("a:1", { text: "one" })], { runDir });
    const again = await collect(exactDedup(), [sample("a:1", { text: "one" }), sample("a:1", { text: "one" })], { runDir });
    expect(again.out.map((s) => s.id)).toEqual(["a:1"]);
    expect(again.rejects.map((r) => [r.sample.id, r.duplicateOf])).toEqual([["a:1", "a:1"]]);
    // Saved again at the end, the entry may be replayed after a later resume too.
    const third = await collect(exactDedup(), [sample("a:1", { text: "one" })], { runDir });
    expect(third.out.map((s) => s.id)).toEqual(["a:1"]);
  });
});
