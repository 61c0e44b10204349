// The near-dedup index kept in Redis for a scaled-out run. Its promises: admitted in one order it decides
// exactly as the single-process index does; admitted by several workers at once, in any interleaving, no
// two kept documents reach the threshold and every rejected one names a kept match that does; a replayed
// admission finds itself and is kept without changing anything. Against the tests' own redis-server.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { groupedId, splitGroupedId } from "../../operators/dedup/grouped-id.ts";
import { LshIndex, resolveBands } from "../../operators/dedup/lsh.ts";
import { bands as bandKeys, createMinHasher } from "../../operators/dedup/minhash.ts";
import { ConfigError } from "../../src/errors.ts";
import type { NearIndexShape, NearMatch } from "../../src/graph.ts";
import { defineScaleCommands } from "../../src/scale/queue.ts";
import { RedisNearIndex } from "../../src/scale/shared-near-index.ts";
import { REDIS_SKIPPED_MESSAGE, RedisServer, skipRedis } from "../support/redis-server.ts";

const THRESHOLD = 0.7;
const NUM_PERM = 64;
const { bands, rows } = resolveBands({ numPerm: NUM_PERM, threshold: THRESHOLD, recall: 0.99 });
const SHAPE: NearIndexShape = { numPerm: NUM_PERM, bands, rows, threshold: THRESHOLD };
const hasher = createMinHasher({ numPerm: NUM_PERM, seed: 1, shingle: { kind: "word", n: 3 } });
const VOCABULARY = Array.from({ length: 60 }, (_, i) => `w${i}`);

const dir = mkdtempSync(join(tmpdir(), "rxsynth-near-index-"));
let redis: RedisServer;
const connections: Redis[] = [];
let runs = 0;

const connect = () => {
  const client = new Redis(redis.url, { enableAutoPipelining: true });
  defineScaleCommands(client);
  connections.push(client);
  return client;
};

if (skipRedis) console.warn(REDIS_SKIPPED_MESSAGE);
beforeAll(async () => {
  if (!skipRedis) redis = await RedisServer.start(dir);
}, 30_000);
afterAll(async () => {
  await Promise.all(connections.map((client) => client.quit().catch(() => client.disconnect())));
  await redis?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** Documents with planted near-duplicates: each is new, or an earlier one with a few words changed. */
const corpus = fc
  .array(fc.record({ base: fc.nat(), edits: fc.array(fc.tuple(fc.nat(), fc.nat()), { maxLength: 6 }), fresh: fc.array(fc.nat({ max: 59 }), { minLength: 25, maxLength: 40 }) }), {
    minLength: 20,
    maxLength: 80,
  })
  .map((specs) => {
    const docs: string[][] = [];
    for (const spec of specs) {
      if (docs.length === 0 || spec.edits.length === 0) {
        docs.push(spec.fresh.map((word) => VOCABULARY[word]!));
        continue;
      }
      const copy = [...docs[spec.base % docs.length]!];
      for (const [at, word] of spec.edits) copy[at % copy.length] = VOCABULARY[word % VOCABULARY.length]!;
      docs.push(copy);
    }
    return docs.map((words, i) => ({ id: `doc:${i}`, sig: hasher.signature(words.join(" ")) }));
  });

type Doc = { readonly id: string; readonly sig: Uint32Array };

const admit = (index: RedisNearIndex, doc: Doc) => index.admit(doc.id, doc.sig, bandKeys(doc.sig, bands, rows));
const freshPrefix = () => `test:near:${process.pid}:${++runs}`;

/** Estimated Jaccard of two signatures as the single-process index estimates it (on its fingerprints). */
function estimate(a: Uint32Array, b: Uint32Array): number {
  const index = new LshIndex({ numPerm: NUM_PERM, bands, rows });
  index.insert("b", b);
  return index.estimate(a, 0);
}

describe.skipIf(skipRedis)("RedisNearIndex", () => {
  it("admitted in one order, decides as the single-process LSH index does", async () => {
    await fc.assert(
      fc.asyncProperty(corpus, async (docs) => {
        const shared = new RedisNearIndex(connect(), freshPrefix(), SHAPE);
        const local = new LshIndex({ numPerm: NUM_PERM, bands, rows });
        for (const doc of docs) {
          const expected = local.best(doc.sig, THRESHOLD);
          if (!expected) local.insert(doc.id, doc.sig);
          const got = await admit(shared, doc);
          expect(got?.duplicateOf).toBe(expected?.id);
          if (expected) expect(got!.jaccard).toBeCloseTo(expected.jaccard, 12);
        }
      }),
      { seed: 20261202, numRuns: 25 },
    );
  }, 60_000);

  it("grouped, passes over kept documents of the admitted one's group and decides as the single-process operator's rule does", async () => {
    await fc.assert(
      fc.asyncProperty(corpus, fc.array(fc.constantFrom("g", "g:1", "1:g", "", "é1", "é2", "タスク1", "タスク2"), { minLength: 80, maxLength: 80 }), async (docs, groups) => {
        const shared = new RedisNearIndex(connect(), freshPrefix(), { ...SHAPE, grouped: true });
        const local = new LshIndex({ numPerm: NUM_PERM, bands, rows });
        for (const [i, doc] of docs.entries()) {
          const stored = groupedId(groups[i]!, doc.id);
          // The rule nearDedup's local path applies: the best candidate outside the group, ties to the oldest.
          let expected: { id: string; jaccard: number } | undefined;
          for (const candidate of local.candidates(doc.sig)) {
            const other = local.idOf(candidate);
            if (splitGroupedId(other).group === groups[i]) continue;
            const jaccard = local.estimate(doc.sig, candidate);
            if (jaccard >= THRESHOLD && (!expected || jaccard > expected.jaccard)) expected = { id: other, jaccard };
          }
          if (!expected) local.insert(stored, doc.sig);
          const got = await shared.admit(stored, doc.sig, bandKeys(doc.sig, bands, rows));
          expect(got?.duplicateOf).toBe(expected?.id);
          // A replay of a kept document finds itself.
          if (!expected) expect(await shared.admit(stored, doc.sig, bandKeys(doc.sig, bands, rows))).toBeUndefined();
        }
      }),
      { seed: 20261203, numRuns: 20 },
    );
    // Planted: two copies in one group are both kept, a third copy in another group is not.
    const shared = new RedisNearIndex(connect(), freshPrefix(), { ...SHAPE, grouped: true });
    const [doc] = fc.sample(corpus, { seed: 7, numRuns: 1 })[0]!;
    const admitAs = (group: string, id: string) => shared.admit(groupedId(group, id), doc!.sig, bandKeys(doc!.sig, bands, rows));
    expect(await admitAs("task", "a")).toBeUndefined();
    expect(await admitAs("task", "b")).toBeUndefined();
    expect((await admitAs("other", "c"))?.duplicateOf).toBe(groupedId("task", "a"));
    // Groups that share a multibyte prefix are still two groups (Lua counts bytes).
    const wide = new RedisNearIndex(connect(), freshPrefix(), { ...SHAPE, grouped: true });
    const admitWide = (group: string, id: string) => wide.admit(groupedId(group, id), doc!.sig, bandKeys(doc!.sig, bands, rows));
    expect(await admitWide("タスク1", "d")).toBeUndefined();
    expect(await admitWide("タスク1", "f")).toBeUndefined();
    expect((await admitWide("タスク2", "e"))?.duplicateOf).toBe(groupedId("タスク1", "d"));
  }, 60_000);

  it("three workers admitting at once in any interleaving keep no pair at the threshold; a replay finds itself", async () => {
    await fc.assert(
      fc.asyncProperty(corpus, fc.array(fc.nat({ max: 2 }), { minLength: 80, maxLength: 80 }), async (docs, owners) => {
        const prefix = freshPrefix();
        const workers = [0, 1, 2].map(() => new RedisNearIndex(connect(), prefix, SHAPE));
        const verdicts = await Promise.all(docs.map((doc, i) => admit(workers[owners[i]!]!, doc)));
        const kept = docs.filter((_, i) => verdicts[i] === undefined);
        for (let a = 0; a < kept.length; a++) {
          for (let b = a + 1; b < kept.length; b++) expect(estimate(kept[a]!.sig, kept[b]!.sig)).toBeLessThan(THRESHOLD);
        }
        const keptIds = new Set(kept.map((doc) => doc.id));
        docs.forEach((doc, i) => {
          const match = verdicts[i];
          if (!match) return;
          expect(keptIds.has(match.duplicateOf)).toBe(true);
          expect(match.jaccard).toBeGreaterThanOrEqual(THRESHOLD);
          expect(estimate(doc.sig, docs.find((other) => other.id === match.duplicateOf)!.sig)).toBeCloseTo(match.jaccard, 12);
        });
        // Every admission replayed (a reclaimed chunk run again) on another worker: the same verdicts.
        const replayed = await Promise.all(docs.map((doc, i) => admit(workers[(owners[i]! + 1) % 3]!, doc)));
        docs.forEach((_, i) => {
          if (verdicts[i] === undefined) expect(replayed[i]).toBeUndefined();
          else expect(replayed[i]).toBeDefined();
        });
      }),
      { seed: 7, numRuns: 25 },
    );
  }, 60_000);

  it("Redis restarted while admissions are in flight: every one is answered, none twice kept, as if nothing happened", async () => {
    // Workers' connections wait for Redis to come back, as RunQueue.connect's do.
    const client = new Redis(redis.url, { enableAutoPipelining: true, maxRetriesPerRequest: null });
    client.on("error", () => {});
    defineScaleCommands(client);
    connections.push(client);
    const index = new RedisNearIndex(client, freshPrefix(), SHAPE);
    const docs = fc.sample(corpus, { seed: 99, numRuns: 200 }).flat().map((doc, i) => ({ ...doc, id: `doc:${i}` }));
    // 256 at a time, each answer sending the next, as nearDedup's stage does: many small pipelines, some
    // cut part-way when Redis stops (it answers what it read, then closes).
    const verdicts: (NearMatch | undefined)[] = new Array(docs.length);
    let next = 0;
    let stopped: Promise<void> | undefined;
    await Promise.all(
      Array.from({ length: 256 }, async () => {
        while (next < docs.length) {
          const i = next++;
          verdicts[i] = await admit(index, docs[i]!);
          if (i === 3_000) stopped = redis.stop().then(() => redis.restart());
        }
      }),
    );
    await stopped;
    const kept = docs.filter((_, i) => verdicts[i] === undefined);
    const keptIds = new Set(kept.map((doc) => doc.id));
    for (const match of verdicts) if (match) expect(keptIds.has(match.duplicateOf)).toBe(true);
    // Each kept document is in the index and finds itself; each rejected one still finds a kept match.
    const replayed = await Promise.all(docs.map((doc) => admit(index, doc)));
    docs.forEach((_, i) => expect(replayed[i] === undefined).toBe(verdicts[i] === undefined));
  }, 60_000);

  it("an id admitted with another text is compared like any other document, not taken for a replay", async () => {
    const index = new RedisNearIndex(connect(), freshPrefix(), SHAPE);
    const text = Array.from({ length: 30 }, (_, i) => VOCABULARY[i]).join(" ");
    const first = { id: "a", sig: hasher.signature(text) };
    expect(await admit(index, first)).toBeUndefined();
    const other = { id: "b", sig: hasher.signature(`${text} w59`) };
    const reusedId = { id: "a", sig: other.sig };
    expect((await admit(index, reusedId))?.duplicateOf).toBe("a");
    expect((await admit(index, other))?.duplicateOf).toBe("a");
  });

  it("workers asking for another shape of the same index get one line saying so", async () => {
    const prefix = freshPrefix();
    const doc = { id: "a", sig: hasher.signature("w1 w2 w3 w4 w5 w6") };
    await admit(new RedisNearIndex(connect(), prefix, SHAPE), doc);
    const other = new RedisNearIndex(connect(), prefix, { ...SHAPE, threshold: 0.9 });
    await expect(admit(other, doc)).rejects.toThrow(ConfigError);
    await expect(admit(other, doc)).rejects.toThrow(/made with 64\/\d+x\d+@0.7 .* asks for 64\/\d+x\d+@0.9/);
  });
});
