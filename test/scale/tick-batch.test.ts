// The batcher behind the shared indexes' scripts: the calls of one event-loop turn travel as one request,
// in the order they were made, never more than the limit at once, and a failed request fails exactly its
// own calls.
import { describe, expect, it } from "vitest";
import { TickBatcher } from "../../src/scale/tick-batch.ts";

describe("TickBatcher", () => {
  it("sends one turn's calls as requests of at most the limit, in call order, each answer to its caller", async () => {
    const requests: number[][] = [];
    const batcher = new TickBatcher<number, number>(async (items) => {
      requests.push([...items]);
      return items.map((item) => item * 10);
    }, 4);
    const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => batcher.call(i)));
    expect(answers).toEqual(Array.from({ length: 10 }, (_, i) => i * 10));
    expect(requests).toEqual([[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]);
    // A later turn is a request of its own.
    expect(await batcher.call(42)).toBe(420);
    expect(requests.at(-1)).toEqual([42]);
  });

  it("sends a batch only once the one before it is answered, so a slow or resent request is still decided first", async () => {
    const decided: number[] = [];
    let first = true;
    const batcher = new TickBatcher<number, number>(async (items) => {
      // The first request takes long (a resend after a dropped connection): the later ones must wait for it.
      if (first) {
        first = false;
        await new Promise((done) => setTimeout(done, 50));
      }
      decided.push(...items);
      return items;
    }, 2);
    await Promise.all(Array.from({ length: 6 }, (_, i) => batcher.call(i)));
    expect(decided).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it("a failed request rejects its own calls and no others", async () => {
    let sent = 0;
    const batcher = new TickBatcher<string, string>(async (items) => {
      if (sent++ === 0) throw new Error("connection lost");
      return items.map((item) => item.toUpperCase());
    }, 2);
    const results = await Promise.allSettled(["a", "b", "c"].map((item) => batcher.call(item)));
    expect(results.map((result) => result.status)).toEqual(["rejected", "rejected", "fulfilled"]);
    expect((results[2] as PromiseFulfilledResult<string>).value).toBe("C");
  });
});
