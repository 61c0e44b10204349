import { createServer } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { sweepEndpoint } from "../../src/bench/endpoint-sweep.ts";
import { EndpointError } from "../../src/errors.ts";
import { startSimulator, type Simulator } from "../../src/sim/index.ts";

const started: Simulator[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((sim) => sim.close()));
});

async function simulator(options: Parameters<typeof startSimulator>[0]): Promise<Simulator> {
  const sim = await startSimulator({ port: 0, seed: 14, ...options });
  started.push(sim);
  return sim;
}

/** A port nothing listens on: bound, then let go. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe("sweepEndpoint", () => {
  it("finds the knee of a simulator with 16 slots within a factor of 2 of them, and recommends it", async () => {
    // 300 ms a request, 53 a second at the cap: the simulator's slots, not this process's CPU (the stream's
    // parsing, 2-3 ms a request) are the limit, even on a machine busy with other work.
    const sim = await simulator({ latencyMs: 300, maxConcurrency: 16 });
    const result = await sweepEndpoint({ baseURL: sim.url, levels: [1, 4, 16, 64], requests: 4, seconds: 0.3 });
    expect(result.knee.knee).toBeGreaterThanOrEqual(8);
    expect(result.knee.knee).toBeLessThanOrEqual(32);
    expect(result.knee.reached).toBe(true);
    // 16 on a quiet machine; a busy one stretches the tail of a 16-request level past twice the unloaded p95.
    expect([4, 16]).toContain(result.knee.recommended);
    expect(result.knee.littleConcurrency).toBeGreaterThan(8);
    expect(result.knee.littleConcurrency).toBeLessThan(24);

    const [one, , sixteen, sixtyFour] = result.levels;
    expect(result.levels.map((l) => l.concurrency)).toEqual([1, 4, 16, 64]);
    for (const level of result.levels) {
      expect(level.errors).toBe(0);
      expect(level.requests).toBeGreaterThanOrEqual(Math.max(4, level.concurrency));
      expect(level.outputTokensPerS).toBeGreaterThan(0);
      expect(level.latencyMs.p50).toBeGreaterThanOrEqual(300);
      expect(level.latencyMs.p95).toBeGreaterThanOrEqual(level.latencyMs.p50);
      expect(level.latencyMs.p99).toBeGreaterThanOrEqual(level.latencyMs.p95);
      // The simulator waits its latency before the first byte: the first token comes with it.
      expect(level.ttftMs.p50).toBeGreaterThanOrEqual(300);
      expect(level.ttftMs.p50).toBeLessThanOrEqual(level.latencyMs.p50);
    }
    // Past the cap the queue shows: latency grows about fourfold while throughput stays within the server's.
    expect(sixtyFour!.latencyMs.p50).toBeGreaterThan(2.5 * one!.latencyMs.p50);
    expect(sixtyFour!.requestsPerS).toBeLessThan((16 / 0.3) * 1.15);
    expect(sixteen!.requestsPerS).toBeGreaterThan(4 * one!.requestsPerS);
    // The closed loop never has more in flight than the level's workers.
    const stats = sim.stats();
    expect(stats.peakConcurrency).toBe(16);
    expect(stats.peakConcurrency + stats.peakQueued).toBeLessThanOrEqual(64);
  }, 20_000);

  it("counts refused requests as errors of their level, by status, and still measures the level", async () => {
    const sim = await simulator({ latencyMs: 50, maxConcurrency: 2, maxQueue: 0 });
    const result = await sweepEndpoint({ baseURL: sim.url, levels: [1, 4], requests: 8, seconds: 0 });
    expect(result.levels[0]!.errors).toBe(0);
    expect(result.levels[1]!.errors).toBeGreaterThan(0);
    expect(Object.keys(result.levels[1]!.errorKinds)).toEqual(["http_429"]);
    expect(result.levels[1]!.requests).toBeGreaterThan(0);
  }, 10_000);

  it("stops at once with one line naming the URL when nothing listens there", async () => {
    const baseURL = `http://127.0.0.1:${await closedPort()}/v1`;
    for (const model of [undefined, "some-model"]) {
      const error = await sweepEndpoint({ baseURL, model, levels: [1], requests: 1, seconds: 0 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(EndpointError);
      expect((error as Error).message).toBe(`cannot reach ${baseURL} (ECONNREFUSED): check --base-url`);
    }
  });

  it("stops at once with one line about the key when the server refuses it", async () => {
    const sim = await simulator({ apiKey: "the-right-key" });
    for (const model of [undefined, "some-model"]) {
      const error = await sweepEndpoint({ baseURL: sim.url, apiKey: "a-wrong-key", model, levels: [1], requests: 1, seconds: 0 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(EndpointError);
      expect((error as Error).message).toMatch(/401|refused the API key/);
      expect((error as Error).message).toMatch(/OPENAI_API_KEY/);
      expect((error as Error).message).not.toContain("a-wrong-key");
      expect((error as Error).message).not.toContain("\n");
    }
  });
});
