import { describe, expect, it } from "vitest";
import { ConfigError } from "../../../src/index.ts";
import { bandsForRecall, candidateProbability, LshIndex, optimalBands } from "../../../operators/dedup/lsh.ts";
import { signature } from "../../../operators/dedup/minhash.ts";
import { corpus } from "./fixtures.ts";

describe("optimalBands", () => {
  // Computed with datasketch's _optimal_param (scipy.integrate.quad) for these arguments.
  it.each([
    [0.5, 128, 0.5, 0.5, 25, 5],
    [0.8, 128, 0.5, 0.5, 9, 13],
    [0.9, 128, 0.5, 0.5, 5, 25],
    [0.3, 128, 0.5, 0.5, 37, 3],
    [0.7, 64, 0.5, 0.5, 8, 8],
    [0.75, 256, 0.5, 0.5, 21, 12],
    [0.75, 256, 0.1, 0.9, 28, 9],
    [0.3, 128, 0.2, 0.8, 42, 3],
  ])("picks datasketch's bands x rows for threshold %f and %i permutations (weights %f/%f)", (t, n, fp, fn, b, r) => {
    expect(optimalBands(t, n, { falsePositiveWeight: fp, falseNegativeWeight: fn })).toEqual({ bands: b, rows: r });
  });

  it("refuses a threshold outside (0, 1)", () => {
    expect(() => optimalBands(1, 128)).toThrow(ConfigError);
    expect(() => optimalBands(0, 128)).toThrow(ConfigError);
  });
});

describe("bandsForRecall", () => {
  it("takes the most rows per band that still catch a pair at the threshold with the asked probability", () => {
    expect(bandsForRecall(0.8, 128, 0.99)).toEqual({ bands: 21, rows: 6 });
    expect(bandsForRecall(0.6, 128, 0.98)).toEqual({ bands: 32, rows: 4 });
    for (const [t, recall] of [[0.5, 0.9], [0.7, 0.99], [0.9, 0.999]] as const) {
      const { bands, rows } = bandsForRecall(t, 128, recall);
      expect(candidateProbability(t, bands, rows)).toBeGreaterThanOrEqual(recall);
      expect(candidateProbability(t, Math.floor(128 / (rows + 1)), rows + 1)).toBeLessThan(recall);
    }
  });

  it("catches far more pairs at the threshold than datasketch's equal-weight choice", () => {
    expect(candidateProbability(0.8, 9, 13)).toBeLessThan(0.41);
    expect(candidateProbability(0.8, 21, 6)).toBeGreaterThan(0.99);
  });
});

describe("LshIndex", () => {
  const gen = corpus(11);
  const docs = Array.from({ length: 300 }, () => gen.document(150));

  it("answers a query for a document it has never seen, even when empty", () => {
    const index = new LshIndex({ numPerm: 128, threshold: 0.8 });
    expect(index.query(signature("never seen"))).toEqual([]);
    index.insert("a", signature(docs[0]!));
    expect(index.query(signature(docs[1]!))).toEqual([]);
  });

  it("finds the near-duplicate among unrelated documents and confirms it on the signature", () => {
    const index = new LshIndex({ numPerm: 128, threshold: 0.8 });
    expect([index.bands, index.rows]).toEqual([9, 13]);
    docs.forEach((doc, i) => index.insert(`d${i}`, signature(doc)));
    const copy = signature(gen.edit(docs[42]!, 0.01));
    expect(index.query(copy)).toEqual(["d42"]);
    const match = index.best(copy, 0.8);
    expect(match?.id).toBe("d42");
    expect(match?.jaccard).toBeGreaterThanOrEqual(0.8);
    expect(index.best(signature(docs[42]!), 0.99)).toMatchObject({ id: "d42", jaccard: 1 });
  });

  it("keeps every document that shares a band key, not only the first", () => {
    const index = new LshIndex({ numPerm: 128, bands: 16, rows: 8 });
    const sig = signature(docs[0]!);
    index.insert("first", sig);
    index.insert("second", sig);
    index.insert("other", signature(docs[1]!));
    expect(index.query(sig)).toEqual(["first", "second"]);
  });

  it("serialises to bytes and loads back with the same answers", () => {
    const index = new LshIndex({ numPerm: 64, threshold: 0.7 });
    for (let i = 0; i < 5000; i++) index.insert(i % 7 === 0 ? `line\nbreak ${i}` : `d${i}`, signature(docs[i % docs.length]! + ` ${i}`, { numPerm: 64 }));
    const loaded = LshIndex.deserialize(index.serialize());
    expect([loaded.size, loaded.bands, loaded.rows, loaded.numPerm]).toEqual([index.size, index.bands, index.rows, index.numPerm]);
    for (const doc of docs.slice(0, 20)) {
      const sig = signature(doc + " 3", { numPerm: 64 });
      expect(loaded.query(sig)).toEqual(index.query(sig));
      expect(loaded.best(sig, 0.5)).toEqual(index.best(sig, 0.5));
    }
    expect(loaded.idOf(7)).toBe("line\nbreak 7");
    loaded.insert("after", signature(docs[5]!, { numPerm: 64 }));
    expect(loaded.query(signature(docs[5]!, { numPerm: 64 }))).toContain("after");
  });

  it("can keep no fingerprints, answering queries but refusing to estimate, also after a reload", () => {
    const index = new LshIndex({ numPerm: 128, threshold: 0.8, recall: 0.99, fingerprints: false });
    docs.slice(0, 50).forEach((doc, i) => index.insert(`d${i}`, signature(doc)));
    const copy = signature(gen.edit(docs[7]!, 0.01));
    expect(index.query(copy)).toEqual(["d7"]);
    expect(() => index.estimate(copy, 7)).toThrow(ConfigError);
    const loaded = LshIndex.deserialize(index.serialize());
    expect(loaded.fingerprints).toBe(false);
    expect(loaded.query(copy)).toEqual(["d7"]);
    expect(loaded.memoryBytes()).toBeLessThan(new LshIndex({ numPerm: 128, bands: 21, rows: 6 }).memoryBytes() + 50 * 21 * 4 + 4096 * 21 * 4 + 50 * 40);
  });

  it("refuses a damaged image and a signature of the wrong length", () => {
    expect(() => LshIndex.deserialize(new Uint8Array(12))).toThrow(ConfigError);
    expect(() => new LshIndex({ numPerm: 128 }).insert("x", new Uint32Array(64))).toThrow(ConfigError);
    expect(() => new LshIndex({ numPerm: 128, bands: 20, rows: 7 })).toThrow(ConfigError);
  });

  it("holds well under 1 KiB per document", () => {
    const index = new LshIndex({ numPerm: 128, threshold: 0.8, recall: 0.99 });
    for (let i = 0; i < 10_000; i++) index.insert(`doc-${i}`, signature(docs[i % docs.length]! + ` ${i} ${i + 1}`));
    expect(index.memoryBytes() / index.size).toBeLessThan(1024);
  });
});
