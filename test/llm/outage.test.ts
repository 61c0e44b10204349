import { describe, expect, it } from "vitest";
import { EndpointError, LlmError, stopsRun } from "../../src/errors.ts";
import { closedPort, useSimulators } from "../support/llm-fixtures.ts";

const { sim, llm } = useSimulators({ maxRetries: 2 });

const user = (content: string) => [{ role: "user" as const, content }];
const outageLine = /^llm: endpoint 127\.0\.0\.1:\d+ unreachable since \d\d:\d\d \(.+\): pausing requests, probing every [\d.]+m?s at most; stops after [\d.]+m?s$/;

describe("an endpoint that goes away", () => {
  it("pauses every request while it answers 503, probes one at a time, and continues when it is back: nothing fails", async () => {
    const server = await sim();
    const lines: string[] = [];
    const client = llm(server.url, { log: (line) => lines.push(line), outageSeconds: 30 });
    await server.down({ ms: 700 });
    const started = performance.now();
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => client.chat({ messages: user(`during an outage ${i}`) })));
    expect(performance.now() - started).toBeGreaterThanOrEqual(650);
    expect(results.every((result) => result.choices[0]!.text.length > 0)).toBe(true);
    expect(client.stats().failures).toBe(0);
    expect(lines.filter((line) => outageLine.test(line))).toHaveLength(1);
    expect(lines.filter((line) => /answers again after [\d.]+m?s: requests continue$/.test(line))).toHaveLength(1);
    // Each call tries 1 + maxRetries times before the outage; during it only the one probe is sent
    // (at most every 50 ms here), not every waiting call.
    const refused = server.stats().errors5xx;
    expect(refused).toBeLessThanOrEqual(20 * 3 + 700 / 5);
    expect(refused).toBeLessThan(20 * 3 + 40);
    expect(client.stats().requests).toBe(20 + client.stats().retries);
  });

  it("waits out refused connections on the same URL, and needs no retries of its own to see them", async () => {
    const server = await sim();
    const lines: string[] = [];
    const client = llm(server.url, { log: (line) => lines.push(line), outageSeconds: 30, maxRetries: 6 });
    await client.chat({ messages: user("before") });
    await server.down({ mode: "refuse", ms: 500 });
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => client.chat({ messages: user(`refused ${i}`) })));
    expect(results).toHaveLength(8);
    expect(client.stats().failures).toBe(0);
    expect(lines.filter((line) => outageLine.test(line))).toHaveLength(1);
    expect(lines.find((line) => outageLine.test(line))).toContain("ECONNREFUSED");
    // No call spent its six retries on a port that refuses (a connection cut as the server went may
    // cost one): the outage's probes replaced them.
    expect(lines.filter((line) => /; retry [2-6]\/6 in/.test(line))).toHaveLength(0);
  });

  it("fails every waiting request with one EndpointError line once outageSeconds have passed, and says a rerun resumes", async () => {
    const dead = await closedPort();
    const lines: string[] = [];
    const client = llm(dead, { log: (line) => lines.push(line), outageSeconds: 0.4 });
    const started = performance.now();
    const errors = await Promise.all(Array.from({ length: 5 }, (_, i) => client.chat({ messages: user(`dead ${i}`) }).catch((e: unknown) => e)));
    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(390);
    expect(elapsed).toBeLessThan(5_000);
    for (const error of errors) {
      expect(error).toBeInstanceOf(EndpointError);
      expect(stopsRun(error)).toBe(true);
      const message = (error as EndpointError).message;
      expect(message).not.toContain("\n");
      expect(message).toMatch(/^endpoint 127\.0\.0\.1:\d+ unreachable since \d\d:\d\d \(connection error \(.*ECONNREFUSED.*\)\); gave up after 400ms of waiting .*rerun the same command to resume$/);
    }
    expect(client.stats().failures).toBe(5);
    expect(lines.filter((line) => outageLine.test(line))).toHaveLength(1);
  });

  it("with outageSeconds 0 fails as soon as the retries are spent, still as an EndpointError", async () => {
    const server = await sim();
    const client = llm(server.url, { outageSeconds: 0 });
    await server.down();
    const error = await client.chat({ messages: user("no patience") }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EndpointError);
    expect((error as EndpointError).status).toBe(503);
    expect((error as EndpointError).message).toContain("not waiting for it (outageSeconds 0)");
    expect(server.stats().requests).toBe(3);
  });

  it("reads RXSYNTH_OUTAGE_SECONDS when outageSeconds is not given, and refuses a malformed one", async () => {
    const dead = await closedPort();
    const saved = process.env.RXSYNTH_OUTAGE_SECONDS;
    try {
      process.env.RXSYNTH_OUTAGE_SECONDS = "0";
      const error = await llm(dead).chat({ messages: user("env") }).catch((e: unknown) => e);
      expect((error as Error).message).toContain("outageSeconds 0");
      process.env.RXSYNTH_OUTAGE_SECONDS = "soon";
      expect(() => llm(dead)).toThrow(/RXSYNTH_OUTAGE_SECONDS must be a number of seconds >= 0, got soon/);
    } finally {
      if (saved === undefined) delete process.env.RXSYNTH_OUTAGE_SECONDS;
      else process.env.RXSYNTH_OUTAGE_SECONDS = saved;
    }
  });

  it("keeps a request that fails while the endpoint answers others its own failure (an LlmError), not an outage", async () => {
    // At 200 tokens/s a long answer takes far over the 100 ms limit, a 5-token one 25 ms: only the long request times out.
    const server = await sim({ tokensPerS: 200 });
    const lines: string[] = [];
    const client = llm(server.url, { timeoutMs: 100, log: (line) => lines.push(line), outageSeconds: 30 });
    let settled = false;
    const long = client
      .chat({ messages: user("Write a long essay about the history of bridges."), max_tokens: 400 })
      .catch((e: unknown) => e)
      .finally(() => (settled = true));
    let i = 0;
    while (!settled) await client.chat({ messages: user(`short ${i++}`), max_tokens: 5 });
    const error = await long;
    expect(error).toBeInstanceOf(LlmError);
    expect(error).not.toBeInstanceOf(EndpointError);
    // Retried once, not until the retries run out: each timeout re-sends work the server may still be doing.
    expect((error as LlmError).message).toMatch(/no complete answer within 100 ms \(attempt 2, timed out twice\)/);
    expect(lines.some((line) => outageLine.test(line))).toBe(false);
  });
});

describe("an endpoint that cannot serve this client", () => {
  it("fails a wrong API key (401) at once with an EndpointError that names status, endpoint and what to check", async () => {
    const keyed = await sim({ apiKey: "sk-right-key-0123456789" });
    const client = llm(keyed.url, { apiKey: "sk-wrong-key-0123456789", maxRetries: 5 });
    const error = await client.chat({ messages: user("let me in") }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EndpointError);
    const endpointError = error as EndpointError;
    expect(endpointError).toMatchObject({ status: 401, attempt: 1 });
    expect(endpointError.message).not.toContain("\n");
    expect(endpointError.message).toMatch(/^sim-1 at 127\.0\.0\.1:\d+ refused the request: 401 Incorrect API key provided: .*: check the API key \(OPENAI_API_KEY\)$/);
    expect(endpointError.message).not.toContain("sk-wrong-key-0123456789");
    expect(keyed.stats().requests).toBe(1);
  });

  it("fails a wrong base URL or model (404) at once, naming RXSYNTH_MODEL and OPENAI_BASE_URL", async () => {
    const server = await sim();
    const client = llm(server.url.replace(/\/v1$/, "/api"), { maxRetries: 5 });
    const error = await client.chat({ messages: user("where") }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EndpointError);
    expect((error as EndpointError).status).toBe(404);
    expect((error as EndpointError).message).toMatch(/404 .*: check the model name \(RXSYNTH_MODEL\) and the base URL \(OPENAI_BASE_URL, usually ending in \/v1\)$/);
    expect(server.stats().requests).toBe(0);
  });

  it("still rejects a request the endpoint finds malformed (400) as that request's LlmError", async () => {
    const server = await sim();
    const error = await llm(server.url).chat({ messages: user("hot"), temperature: 9 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LlmError);
    expect(stopsRun(error)).toBe(false);
  });
});
