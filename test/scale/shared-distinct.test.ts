// The distinct counters a scaled-out run's workers share through Redis. Their promises: any split of the
// items over workers, merged in any order and with any part replayed (a chunk redone after a crash), gives
// exactly the count of one HyperLogLog fed every item; that count is Redis's own (PFCOUNT reads the
// registers we write) and within HyperLogLog's error of the truth; `status` reports it with the items
// counted. Against the tests' own redis-server.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { hashString } from "../../operators/dedup/minhash.ts";
import { HyperLogLog } from "../../operators/diversity/sketches.ts";
import { RunQueue } from "../../src/scale/queue.ts";
import { RedisDistinct, toRedisDense } from "../../src/scale/shared-distinct.ts";
import { skipRedis } from "../support/redis-server.ts";
import { suiteRedis } from "../support/suite-redis.ts";

const redis = suiteRedis("rxsynth-distinct-");
let counters = 0;

function sketchOf(items: Iterable<number>): HyperLogLog {
  const hll = new HyperLogLog(14);
  for (const item of items) hll.add(hashString(`item ${item}`, 0x1234567), hashString(`item ${item}`, 0x7654321));
  return hll;
}

function counter(): { distinct: RedisDistinct; key: string } {
  const name = `c${counters++}`;
  const keys = { counter: `t:{d}:${name}`, totals: `t:{d}:${name}:totals`, scratch: `t:{d}:${name}:scratch`, names: "t:{d}:names" };
  return { distinct: new RedisDistinct(redis.client, keys, name), key: keys.counter };
}

describe.skipIf(skipRedis)("shared distinct counters", () => {
  it("any split over workers, merged in any order with replays, counts exactly as one HyperLogLog of every item", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 30_000 }),
        fc.array(fc.tuple(fc.nat(), fc.nat()), { minLength: 1, maxLength: 12 }),
        fc.array(fc.nat(), { maxLength: 6 }),
        async (items, cuts, replays) => {
          // Parts overlap: each is a range of the items, and together they cover all of them.
          const bounds = [0, ...cuts.map(([a]) => a % items), items].sort((a, b) => a - b);
          const parts = bounds.slice(1).map((end, i) => {
            const start = Math.max(0, bounds[i]! - (cuts[i]?.[1] ?? 0) % 50);
            return Array.from({ length: end - start }, (_, k) => start + k);
          });
          const { distinct, key } = counter();
          const order = [...parts.keys(), ...replays.map((r) => r % parts.length)];
          for (const p of order.sort((a, b) => ((a * 7919 + items) % 13) - ((b * 7919 + items) % 13))) {
            await distinct.merge(sketchOf(parts[p]!).registerValues(), `part-${p}`, parts[p]!.length);
          }
          const whole = counter();
          await whole.distinct.merge(sketchOf(Array.from({ length: items }, (_, k) => k)).registerValues(), "all", items);
          const [merged, single] = [await redis.client.pfcount(key), await redis.client.pfcount(whole.key)];
          expect(merged).toBe(single);
          expect(Math.abs(single - items) / items).toBeLessThan(items < 200 ? 0.02 : 0.03);
          // No scratch key is left behind.
          expect(await redis.client.exists(`${key}:scratch`)).toBe(0);
        },
      ),
      { seed: 20261203, numRuns: 25 },
    );
  }, 120_000);

  it("writes Redis's dense encoding: PFADD-free counts agree with our own estimate", async () => {
    const hll = sketchOf(Array.from({ length: 50_000 }, (_, k) => k));
    await redis.client.set("t:{d}:dense", toRedisDense(hll.registerValues()));
    const count = await redis.client.pfcount("t:{d}:dense");
    expect(Math.abs(count - 50_000) / 50_000).toBeLessThan(0.03);
    expect(Math.abs(count - hll.estimate()) / hll.estimate()).toBeLessThan(0.02);
  });

  it("status shows every counter of the run with the items counted, a replayed part counted once", async () => {
    const queue = await RunQueue.connect(redis.server.url, "distinct-status");
    try {
      await queue.register({ graph: "g", overrides: {}, options: {}, out: "/nonexistent/distinct-status", chunkSize: 10, sources: [{ name: "s", size: 10 }], maxQueued: 4, maxAttempts: 3, reclaimMs: 1000, submittedAt: new Date().toISOString() });
      const words = queue.shared().distinct("diversity.distinct_1");
      await words.merge(sketchOf([1, 2, 3]).registerValues(), "chunk-a", 5);
      await words.merge(sketchOf([3, 4]).registerValues(), "chunk-b", 2);
      await words.merge(sketchOf([3, 4]).registerValues(), "chunk-b", 2);
      const status = await queue.status();
      expect(status.distinct).toEqual([{ name: "diversity.distinct_1", distinct: 4, total: 7 }]);
    } finally {
      await queue.close();
    }
  });
});
