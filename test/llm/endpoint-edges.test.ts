// What real servers do at the edges of the OpenAI protocol: error bodies in other shapes, refusals worded
// without quotes, out-of-credit statuses, prompt counts of 0, system messages that templates refuse, think
// tags in answers of models that never think aloud. Each over real HTTP against a small server that answers
// the way the named server does.
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { ConfigError, EndpointError, LlmError } from "../../src/errors.ts";
import { parseCapabilities } from "../../src/llm/capabilities.ts";
import { structuredFormat } from "../../src/llm/index.ts";
import { useSimulators } from "../support/llm-fixtures.ts";

const { sim, llm } = useSimulators({ outageSeconds: 2 });
const user = (content: string) => [{ role: "user" as const, content }];
const closers: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const close of closers) await close();
});

interface Reply {
  readonly status: number;
  readonly body?: unknown;
  readonly headers?: Record<string, string>;
  /** Send the headers and part of the body, then nothing more. */
  readonly hang?: boolean;
}

/** A server that answers every request with `reply`; chat bodies are kept in `bodies`. */
async function serve(reply: (req: IncomingMessage, body: Record<string, unknown> | undefined) => Reply) {
  const bodies: Record<string, unknown>[] = [];
  const server = createServer((req, res) => {
    let raw = "";
    req.on("data", (chunk) => (raw += chunk));
    req.on("end", () => {
      const body = raw ? (JSON.parse(raw) as Record<string, unknown>) : undefined;
      if (body) bodies.push(body);
      const answer = reply(req, body);
      res.writeHead(answer.status, { "content-type": "application/json", ...answer.headers });
      if (answer.hang) res.write('{"object":"list","data":[');
      else res.end(JSON.stringify(answer.body ?? {}));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  closers.push(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`, bodies };
}

const completion = (content: string, usage = { prompt_tokens: 5, completion_tokens: 5 }) => ({
  status: 200,
  body: { id: "x", object: "chat.completion", created: 0, model: "sim-1", choices: [{ index: 0, message: { role: "assistant", content }, finish_reason: "stop" }], usage: { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens } },
});
const isChat = (req: IncomingMessage) => req.method === "POST";
const notFound = { status: 404, body: { error: { message: "not found" } } };

describe("error bodies in other shapes than OpenAI's", () => {
  it("sglang: fields at the top level ({object: error}) are read: a prompt too long is context_length", async () => {
    const server = await sim({ profile: "sglang", models: ["sim-1"], contextTokens: 60, reasoning: "none" });
    const long = await llm(server).chat({ messages: user("word ".repeat(200)) }).catch((e: unknown) => e);
    expect(long).toMatchObject({ reason: "context_length" });
  });

  it("a flat 'System role not supported' repeated stops the run instead of failing every sample", async () => {
    const server = await serve((req) => (isChat(req) ? { status: 400, body: { object: "error", message: "System role not supported", type: "BadRequestError", param: null, code: 400 } } : notFound));
    const client = llm(server.url, { family: "unknown" });
    const errors: unknown[] = [];
    for (let i = 0; i < 8; i++) errors.push(await client.chat({ messages: user(`sample ${i}`) }).catch((e: unknown) => e));
    expect(errors.slice(0, 4).every((error) => error instanceof LlmError && /System role not supported/.test(error.message))).toBe(true);
    expect(errors[4]).toBeInstanceOf(EndpointError);
    expect((errors[4] as Error).message).toMatch(/the last 5 calls all failed the same way \(400 System role not supported\)/);
  });

  it("mistral: a pydantic 422 naming stream_options is learned from", async () => {
    const server = await serve((req, body) => {
      if (!isChat(req)) return notFound;
      if (body?.stream_options !== undefined) {
        return { status: 422, body: { object: "error", message: { detail: [{ type: "extra_forbidden", loc: ["body", "stream_options"], msg: "Extra inputs are not permitted" }] }, type: "invalid_request_error", param: null, code: null } };
      }
      return completion("plain");
    });
    const lines: string[] = [];
    const client = llm(server.url, { family: "unknown", log: (line) => lines.push(line) });
    // Not streamed back by this server; what matters is the second request no longer carries stream_options.
    await client.chat({ messages: user("stream me"), stream: true }).catch(() => undefined);
    expect(lines.join("\n")).toMatch(/refuses stream_options/);
    expect(server.bodies.at(-1)).not.toHaveProperty("stream_options");
  });
});

describe("refusals and statuses waiting does not fix", () => {
  it("learns max_completion_tokens from an unquoted refusal", async () => {
    const server = await serve((req, body) => {
      if (!isChat(req)) return notFound;
      if (body?.max_tokens !== undefined) return { status: 400, body: { error: { message: "Unsupported parameter: max_tokens is not supported with this model. Use max_completion_tokens instead.", param: null } } };
      return completion("ok");
    });
    const result = await llm(server.url, { family: "unknown" }).chat({ messages: user("hi"), max_tokens: 20 });
    expect(result.choices[0]!.text).toBe("ok");
    expect(server.bodies.at(-1)).toMatchObject({ max_completion_tokens: 20 });
  });

  it("402 (out of credit) stops at once with one line", async () => {
    const server = await serve((req) => (isChat(req) ? { status: 402, body: { error: { message: "Insufficient credits. Add more using https://openrouter.ai/settings/credits", code: 402 } } } : notFound));
    const error = await llm(server.url, { family: "unknown" }).chat({ messages: user("hi") }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EndpointError);
    expect((error as Error).message).toMatch(/out of credit/);
    expect(server.bodies).toHaveLength(1);
  });

  it("with no outage wait, a Retry-After of an hour stops the call instead of sleeping through it", async () => {
    const server = await serve((req) =>
      isChat(req) ? { status: 429, body: { error: { message: "Rate limit reached", code: "rate_limit_exceeded" } }, headers: { "retry-after": "3600" } } : notFound,
    );
    const started = performance.now();
    const error = await llm(server.url, { family: "unknown", outageSeconds: 0 }).chat({ messages: user("hi") }).catch((e: unknown) => e);
    expect(performance.now() - started).toBeLessThan(2_000);
    expect((error as Error).message).toMatch(/asked to wait 3600 s \(Retry-After\)/);
  });
});

describe("ollama's prompt counts", () => {
  it("a prompt_tokens of 0 (its KV cache held the prefix) is no count, not a prompt cut to nothing", async () => {
    let calls = 0;
    const server = await serve((req) => {
      if (!isChat(req)) return { status: 200, body: { object: "list", data: [{ id: "sim-1", object: "model", owned_by: "library" }] } };
      calls++;
      return completion("hello there", { prompt_tokens: calls === 1 ? 80 : 0, completion_tokens: 3 });
    });
    const client = llm(server.url);
    const prompt = "You are a helpful generator. ".repeat(10);
    for (const seed of [1, 2]) expect((await client.chat({ messages: user(prompt), seed })).choices[0]!.text).toBe("hello there");
  });
});

describe("system messages and think tags", () => {
  it("structured output adds the schema to the prompt's own system message instead of sending a second one", async () => {
    const client = llm("http://127.0.0.1:9/v1", { family: "unknown" });
    const format = structuredFormat(client, z.object({ name: z.string() }), "out");
    const messages = format.messages([{ role: "system", content: "You write product names." }, ...user("one")]);
    expect(messages.filter((message) => message.role === "system")).toHaveLength(1);
    expect(messages[0]!.content).toMatch(/^You write product names\.\n\nReply with a single JSON object/);
  });

  it("a model that never thinks aloud (OpenAI's family) keeps a <think> it wrote in its answer; elsewhere it is reasoning", async () => {
    const text = "<think>\nThe user asks for 2+2.\n</think>\n\nThe answer is 4.";
    const server = await serve((req) => (isChat(req) ? completion(text) : notFound));
    const openai = await llm(server.url, { family: "openai" }).chat({ messages: user("an R1-style example") });
    expect(openai.choices[0]).toMatchObject({ text });
    expect(openai.choices[0]!.reasoning).toBeUndefined();
    const raw = await llm(server.url, { family: "unknown" }).chat({ messages: user("an R1-style example") });
    expect(raw.choices[0]).toMatchObject({ text: "The answer is 4.", reasoning: "The user asks for 2+2." });
  });
});

describe("family detection", () => {
  it("a /models that sends its headers and never its body costs at most its timer, with either transport", async () => {
    const server = await serve((req) => (isChat(req) ? completion("ok") : { status: 200, hang: true }));
    for (const transport of ["fetch", "node"] as const) {
      const started = performance.now();
      const result = await llm(server.url, { transport }).chat({ messages: user(`hi ${transport}`) });
      expect(result.choices[0]!.text).toBe("ok");
      expect(performance.now() - started).toBeLessThan(5_000);
    }
  }, 20_000);
});

describe("RXSYNTH_CAPABILITIES", () => {
  it("refuses what it cannot read, naming it", () => {
    expect(() => parseCapabilities("__proto__=1", "RXSYNTH_CAPABILITIES")).toThrow(ConfigError);
    expect(() => parseCapabilities("toString=false", "RXSYNTH_CAPABILITIES")).toThrow(/unknown capability "toString"/);
    expect(() => parseCapabilities("n=false=true", "RXSYNTH_CAPABILITIES")).toThrow(/n must be one of true, false, got "false=true"/);
    expect(() => parseCapabilities("n=false,n=true", "RXSYNTH_CAPABILITIES")).toThrow(/n is given twice/);
    expect(parseCapabilities(" jsonSchema=false , thinkTags=false ", "x")).toEqual({ jsonSchema: false, thinkTags: false });
    expect(parseCapabilities("", "x")).toEqual({});
  });
});
