// The concurrency slots a scaled-out run's workers share for one endpoint. Their promises: however the
// workers' requests interleave, no more than the limit are in flight at once, and every request gets its
// turn; a held slot is renewed, so a long request keeps it; a worker that dies holding slots frees them
// within one lease time; a waiter that gives up takes no slot with it. Against the tests' own redis-server.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { defineScaleCommands } from "../../src/scale/queue.ts";
import { RedisSlots } from "../../src/scale/shared-slots.ts";
import { REDIS_SKIPPED_MESSAGE, RedisServer, skipRedis } from "../support/redis-server.ts";

const dir = mkdtempSync(join(tmpdir(), "rxsynth-slots-"));
let redis: RedisServer;
const connections: Redis[] = [];
const slotSets: RedisSlots[] = [];
let keys = 0;

const connect = () => {
  const client = new Redis(redis.url, { enableAutoPipelining: true });
  defineScaleCommands(client);
  connections.push(client);
  return client;
};
const slots = (key: string, limit: number, owner: string, leaseMs?: number) => {
  const made = new RedisSlots(connect(), key, limit, owner, leaseMs);
  slotSets.push(made);
  return made;
};
const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

if (skipRedis) console.warn(REDIS_SKIPPED_MESSAGE);
beforeAll(async () => {
  if (!skipRedis) redis = await RedisServer.start(dir);
}, 30_000);
afterAll(async () => {
  for (const made of slotSets) made.close();
  await Promise.all(connections.map((client) => client.quit().catch(() => client.disconnect())));
  await redis?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(skipRedis)("shared concurrency slots", () => {
  it("three workers' requests in any interleaving: never more than the limit in flight, every one served", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 6 }),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 15 }), fc.integer({ min: 0, max: 10 })), { minLength: 1, maxLength: 40 }),
        async (limit, requests) => {
          const key = `t:slots:${keys++}`;
          const workers = [0, 1, 2].map((w) => slots(key, limit, `w${w}`));
          let inFlight = 0;
          let peak = 0;
          let served = 0;
          await Promise.all(
            requests.map(async ([worker, holdMs, delayMs]) => {
              await sleep(delayMs);
              const release = await workers[worker]!.acquire();
              inFlight++;
              peak = Math.max(peak, inFlight);
              await sleep(holdMs);
              inFlight--;
              served++;
              release();
            }),
          );
          expect(peak).toBeLessThanOrEqual(limit);
          expect(served).toBe(requests.length);
          for (const worker of workers) worker.close();
        },
      ),
      { seed: 20261203, numRuns: 30 },
    );
  }, 120_000);

  it("a slot held past its lease time is renewed, not given away", async () => {
    const key = `t:slots:${keys++}`;
    const holder = slots(key, 1, "holder", 300);
    const other = slots(key, 1, "other", 300);
    const release = await holder.acquire();
    let otherGot = false;
    const waiting = other.acquire().then((done) => ((otherGot = true), done));
    await sleep(1_000);
    expect(otherGot).toBe(false);
    release();
    (await waiting)();
    expect(otherGot).toBe(true);
  });

  it("a worker that dies holding slots frees them within one lease time", async () => {
    const key = `t:slots:${keys++}`;
    const doomed = slots(key, 2, "doomed", 400);
    await doomed.acquire();
    await doomed.acquire();
    // Killed: no release, no renewal.
    doomed.close();
    const survivor = slots(key, 2, "survivor", 400);
    const started = performance.now();
    const [a, b] = await Promise.all([survivor.acquire(), survivor.acquire()]);
    const waited = performance.now() - started;
    expect(waited).toBeGreaterThan(150);
    expect(waited).toBeLessThan(2_000);
    a();
    b();
  });

  it("a waiter that gives up takes no slot with it", async () => {
    const key = `t:slots:${keys++}`;
    const worker = slots(key, 1, "w", 5_000);
    const release = await worker.acquire();
    const stop = new AbortController();
    const gaveUp = worker.acquire(stop.signal).then(
      () => "served",
      () => "aborted",
    );
    await sleep(30);
    stop.abort(new Error("stopped"));
    expect(await gaveUp).toBe("aborted");
    release();
    await sleep(20);
    const next = await Promise.race([worker.acquire(), sleep(1_000).then(() => undefined)]);
    expect(next).toBeTypeOf("function");
    next!();
  });
});
