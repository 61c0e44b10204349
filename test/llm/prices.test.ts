import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError } from "../../src/errors.ts";
import {
  BUILTIN_PRICES,
  PRICES_AS_OF,
  PRICE_FORMAT,
  createLlm,
  lookupPrice,
  parsePriceSetting,
  resolvePrices,
  type Llm,
  type LlmOptions,
} from "../../src/llm/index.ts";
import { startSimulator, type Simulator } from "../../src/sim/index.ts";

const sims: Simulator[] = [];
const clients: Llm[] = [];
async function simulated(options: Omit<LlmOptions, "baseURL">): Promise<Llm> {
  const sim = await startSimulator({ latencyMs: 1 });
  sims.push(sim);
  const client = createLlm({ baseURL: sim.url, ...options });
  clients.push(client);
  return client;
}
afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await Promise.all(sims.map((s) => s.close()));
});

const user = (content: string) => [{ role: "user" as const, content }];

describe("the built-in price table", () => {
  it("says when its prices were taken", () => {
    expect(PRICES_AS_OF).toMatch(/^\d{4}-\d{2}(-\d{2})?$/);
  });

  it("resolves exact names, dated snapshots and router prefixes to the family's price", () => {
    expect(lookupPrice("gpt-4o-mini")).toEqual(BUILTIN_PRICES["gpt-4o-mini"]);
    expect(lookupPrice("gpt-4o-mini-2024-07-18")).toEqual(BUILTIN_PRICES["gpt-4o-mini"]);
    expect(lookupPrice("gpt-4.1-nano-2025-04-14")).toEqual(BUILTIN_PRICES["gpt-4.1-nano"]);
    expect(lookupPrice("claude-sonnet-4-20250514")).toEqual(BUILTIN_PRICES["claude-sonnet-4"]);
    expect(lookupPrice("claude-3-5-haiku-latest")).toEqual(BUILTIN_PRICES["claude-3-5-haiku"]);
    expect(lookupPrice("openai/gpt-5-mini")).toEqual(BUILTIN_PRICES["gpt-5-mini"]);
    for (const model of ["gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "o3", "o4-mini", "gpt-5", "gpt-5-mini", "gpt-5-nano"]) {
      expect(lookupPrice(model), model).toBeDefined();
    }
  });

  it("keeps a snapshot listed on its own at its own price, and never matches a longer family by prefix", () => {
    expect(lookupPrice("gpt-4o-2024-05-13")).toEqual({ input: 5, output: 15 });
    expect(lookupPrice("gpt-4o-2024-08-06")).toEqual(BUILTIN_PRICES["gpt-4o"]);
    expect(lookupPrice("gpt-4o-mini-tts")).toBeUndefined();
    expect(lookupPrice("my-finetune")).toBeUndefined();
  });
});

describe("price settings", () => {
  it("reads the short form for the run's model and the JSON form by model name", () => {
    expect(parsePriceSetting("input=0.15, output=0.6", "m", "X")).toEqual({ m: { input: 0.15, output: 0.6 } });
    expect(parsePriceSetting("input=1,output=2,cached=0.5", "m", "X")).toEqual({ m: { input: 1, output: 2, cachedInput: 0.5 } });
    expect(parsePriceSetting('{"a":{"input":1,"output":2},"b":{"input":0,"output":0}}', "m", "X")).toEqual({
      a: { input: 1, output: 2 },
      b: { input: 0, output: 0 },
    });
    expect(parsePriceSetting("  ", "m", "X")).toEqual({});
  });

  it("rejects malformed settings with a ConfigError that names the setting and the expected format", () => {
    for (const bad of ["0.15", "input=0.15", "input=cheap,output=1", "input=-1,output=1", "input=1,output=1,extra=2", "{not json", '{"m":{"input":1}}']) {
      const error = (() => {
        try {
          parsePriceSetting(bad, "m", "RXSYNTH_PRICE");
        } catch (caught) {
          return caught;
        }
      })();
      expect(error, bad).toBeInstanceOf(ConfigError);
      expect((error as Error).message, bad).toContain("RXSYNTH_PRICE");
      expect((error as Error).message, bad).toContain(PRICE_FORMAT);
    }
  });

  it("lets RXSYNTH_PRICE win over the graph option, which wins over the table", () => {
    expect(resolvePrices({ model: "gpt-4o", option: "", env: "" })).toEqual({});
    expect(resolvePrices({ model: "gpt-4o", option: "input=1,output=2", env: "" })).toEqual({ "gpt-4o": { input: 1, output: 2 } });
    expect(resolvePrices({ model: "gpt-4o", option: "input=1,output=2", env: "input=3,output=4" })).toEqual({ "gpt-4o": { input: 3, output: 4 } });
  });
});

describe("createLlm costs over HTTP", () => {
  it("prices a dated snapshot's answers from the table", async () => {
    const client = await simulated({ model: "gpt-4o-mini-2024-07-18" });
    const result = await client.chat({ messages: user("price me") });
    const { input, output } = BUILTIN_PRICES["gpt-4o-mini"]!;
    const expected = (result.usage.promptTokens * input + result.usage.completionTokens * output) / 1e6;
    expect(result.costUsd).toBeGreaterThan(0);
    expect(result.costUsd).toBeCloseTo(expected, 15);
    expect(client.stats()).toMatchObject({ costUsd: result.costUsd, unpricedTokens: 0, simulatedTokens: 0 });
  });

  it("lets `prices` override the table", async () => {
    const client = await simulated({ model: "gpt-4o-mini", prices: { "gpt-4o-mini": { input: 1000, output: 0 } } });
    const result = await client.chat({ messages: user("override") });
    expect(result.costUsd).toBeCloseTo((result.usage.promptTokens * 1000) / 1e6, 12);
  });

  it("counts a model with no price as unpriced tokens, not as free", async () => {
    const client = await simulated({ model: "my-finetune" });
    const result = await client.chat({ messages: user("unknown") });
    expect(result.costUsd).toBe(0);
    expect(client.stats().unpricedTokens).toBe(result.usage.promptTokens + result.usage.completionTokens);
  });

  it("counts the simulator's answers as simulated, whatever model they name", async () => {
    const client = await simulated({ model: "gpt-4o", simulator: true });
    const result = await client.chat({ messages: user("simulated") });
    expect(result.costUsd).toBe(0);
    expect(client.stats()).toMatchObject({ costUsd: 0, unpricedTokens: 0, simulatedTokens: result.usage.promptTokens + result.usage.completionTokens });
  });

  it("charges prompt tokens served from the provider's cache at the cached price", async () => {
    // The simulator reports no cached tokens; this endpoint reports 600 of 1000 prompt tokens cached.
    const server = createServer((req, res) => {
      req.resume();
      req.on("end", () => {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(
          JSON.stringify({
            id: "chatcmpl-1",
            object: "chat.completion",
            created: 0,
            model: "gpt-4.1-2025-04-14",
            choices: [{ index: 0, message: { role: "assistant", content: "ok" }, finish_reason: "stop" }],
            usage: { prompt_tokens: 1000, completion_tokens: 100, total_tokens: 1100, prompt_tokens_details: { cached_tokens: 600 } },
          }),
        );
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const client = createLlm({ model: "gpt-4.1", baseURL: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1` });
      clients.push(client);
      const result = await client.chat({ messages: user("cached") });
      const { input, output, cachedInput } = BUILTIN_PRICES["gpt-4.1"]!;
      expect(result.costUsd).toBeCloseTo((400 * input + 600 * cachedInput! + 100 * output) / 1e6, 15);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
