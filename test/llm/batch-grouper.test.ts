import { describe, expect, it } from "vitest";
import { Grouper, type Queued } from "../../src/llm/batch/grouper.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const item = (n: number, tokens = 10, model = "m"): Queued => ({ id: `r${n}`, model, tokens });

function grouper(settings: { maxRequests?: number; maxTokens?: number; maxEnqueued?: number; lingerMs?: number; maxWaitMs?: number } = {}) {
  const groups: string[][] = [];
  let enqueued = 0;
  let batches = 0;
  const g = new Grouper<Queued>({
    maxRequests: settings.maxRequests ?? 4,
    maxTokens: settings.maxTokens ?? Infinity,
    maxEnqueued: settings.maxEnqueued ?? Infinity,
    lingerMs: settings.lingerMs ?? 30,
    maxWaitMs: settings.maxWaitMs ?? 10_000,
    enqueued: () => ({ tokens: enqueued, batches }),
    submit: async (group) => {
      groups.push(group.map((queued) => queued.id));
      enqueued += group.reduce((sum, queued) => sum + queued.tokens, 0);
      batches++;
    },
    onError: (error) => {
      throw error;
    },
  });
  return { g, groups, end: () => ((enqueued = 0), (batches = 0)) };
}

describe("the batch grouper", () => {
  it("sends a full group at once and the tail after the linger", async () => {
    const { g, groups } = grouper();
    for (let n = 0; n < 6; n++) g.add(item(n));
    await sleep(5);
    expect(groups).toEqual([["r0", "r1", "r2", "r3"]]);
    await sleep(60);
    expect(groups).toEqual([["r0", "r1", "r2", "r3"], ["r4", "r5"]]);
    await g.close();
  });

  it("a request that keeps the group lingering is sent by maxWaitMs at the latest", async () => {
    const { g, groups } = grouper({ lingerMs: 40, maxWaitMs: 60 });
    for (let n = 0; n < 3; n++) {
      g.add(item(n));
      await sleep(25);
    }
    await sleep(30);
    expect(groups).toEqual([["r0", "r1", "r2"]]);
    await g.close();
  });

  it("waits for room under the enqueued-token limit, one model a group, and fills it when a batch ends", async () => {
    const { g, groups, end } = grouper({ maxEnqueued: 25, lingerMs: 5 });
    g.add(item(0));
    g.add(item(1, 10, "other"));
    g.add(item(2));
    g.add(item(3));
    await sleep(30);
    // 20 tokens of model m fit; the third m would pass 25, and the other model waits for its own group.
    expect(groups).toEqual([["r0", "r2"]]);
    end();
    await g.flush(true);
    // Room for both: the other model's group, then the m left over.
    expect(groups).toEqual([["r0", "r2"], ["r1"], ["r3"]]);
    expect(g.size).toBe(0);
    await g.close();
  });

  it("a removed request is not sent", async () => {
    const { g, groups } = grouper();
    g.add(item(0));
    g.add(item(1));
    expect(g.remove("r0")).toBe(true);
    expect(g.remove("r0")).toBe(false);
    await sleep(50);
    expect(groups).toEqual([["r1"]]);
    await g.close();
  });
});
