// What an endpoint accepts, per base URL and model: known families start from a built-in profile, and any
// endpoint is adapted once when it refuses a parameter by name (400/422), then remembered for the client's
// life. Sources: OpenAI's reasoning-model docs (max_completion_tokens; only the default temperature), Groq's
// OpenAI-compatibility notes (n must be 1; no stream_options), Ollama's OpenAI layer (n and
// max_completion_tokens ignored), and the servers' error bodies reproduced in src/sim/profiles.ts.

import { ConfigError } from "../errors.ts";
import { SCHEMA_INSTRUCTION, withSchemaInstruction } from "./structured.ts";
import type { ChatMessage } from "./types.ts";

export interface Capabilities {
  /** The field that caps completion tokens. */
  readonly tokenLimitField: "max_tokens" | "max_completion_tokens";
  /** Non-default temperature, top_p and penalties are accepted (reasoning models take only the defaults). */
  readonly sampling: boolean;
  /** More than one choice per request. */
  readonly n: boolean;
  /** response_format json_schema (else json_object with the schema in the prompt). */
  readonly jsonSchema: boolean;
  /** stream_options.include_usage on streamed requests. */
  readonly streamUsage: boolean;
  /**
   * The server cuts a prompt longer than its context without an error (Ollama's num_ctx): the client counts
   * each prompt and rejects an answer whose usage shows far fewer prompt tokens (`context_length`).
   */
  readonly cutsLongPrompts: boolean;
  /**
   * How to read rate-limit headers: "per-minute" as OpenAI sends them (x-ratelimit-limit-requests/-tokens),
   * "per-day-requests" (Groq: x-ratelimit-limit-requests counts per day, x-ratelimit-limit-tokens per
   * minute), or "per-second" (Together: x-ratelimit-limit and x-tokenlimit-limit per second).
   */
  readonly rateHeaders: "per-minute" | "per-day-requests" | "per-second";
  /**
   * A chain of thought may come in the content, closed by </think> (DeepSeek-R1 and Qwen3 served raw by
   * llama.cpp, Groq, Together, vLLM without a reasoning parser): it is split off. False where models never
   * think in their content (OpenAI, Azure), so an answer that writes <think> itself keeps it.
   */
  readonly thinkTags: boolean;
}

/** The families with a built-in profile; "unknown" starts from classic OpenAI chat and adapts on refusals. */
export const ENDPOINT_FAMILIES = ["openai", "azure", "groq", "together", "openrouter", "ollama", "vllm", "sglang", "llamacpp", "unknown"] as const;
export type EndpointFamily = (typeof ENDPOINT_FAMILIES)[number];

const CLASSIC: Capabilities = {
  tokenLimitField: "max_tokens",
  sampling: true,
  n: true,
  jsonSchema: true,
  streamUsage: true,
  cutsLongPrompts: false,
  rateHeaders: "per-minute",
  thinkTags: true,
};

/** OpenAI's reasoning families (o1, o3, o4-mini, gpt-5...), on OpenAI and on Azure. */
export const isReasoningModel = (model: string) => /^(o\d|gpt-5)/.test(model);

/** The family a base URL names by its host (or Ollama's default port); "unknown" when it names none. */
export function endpointFamily(baseURL: string): EndpointFamily {
  const url = URL.canParse(baseURL) ? new URL(baseURL) : undefined;
  const host = url?.hostname ?? "";
  if (host === "api.openai.com") return "openai";
  if (/\.(openai\.azure\.com|cognitiveservices\.azure\.com|services\.ai\.azure\.com)$/.test(host)) return "azure";
  if (host === "api.groq.com") return "groq";
  if (host === "api.together.xyz" || host === "api.together.ai") return "together";
  if (host === "openrouter.ai") return "openrouter";
  if (url?.port === "11434") return "ollama";
  return "unknown";
}

/**
 * The family a server names in its `/v1/models` answer (`owned_by`), for servers on a port or host that
 * says nothing: vLLM answers "vllm", SGLang "sglang", llama.cpp's server "llamacpp", Ollama "library"
 * (or the namespace a model was pulled from, which no other family uses with these).
 */
export function familyFromModels(ownedBy: string | undefined): EndpointFamily {
  switch (ownedBy?.toLowerCase()) {
    case "vllm":
      return "vllm";
    case "sglang":
      return "sglang";
    case "llamacpp":
      return "llamacpp";
    case "library":
    case "ollama":
      return "ollama";
    default:
      return "unknown";
  }
}

/** Where a client starts for `model` on a server of `family`, before the endpoint has refused anything. */
export function familyCapabilities(family: EndpointFamily, model: string): Capabilities {
  if (family === "openai" || family === "azure") {
    return isReasoningModel(model) ? { ...CLASSIC, tokenLimitField: "max_completion_tokens", sampling: false, thinkTags: false } : { ...CLASSIC, thinkTags: false };
  }
  if (family === "groq") return { ...CLASSIC, n: false, streamUsage: false, rateHeaders: "per-day-requests" };
  if (family === "together") return { ...CLASSIC, rateHeaders: "per-second" };
  if (family === "ollama") return { ...CLASSIC, n: false, cutsLongPrompts: true };
  return CLASSIC;
}

/** Where a client starts for `model` at `baseURL`, by what the URL says. */
export function builtinCapabilities(baseURL: string, model: string): Capabilities {
  return familyCapabilities(endpointFamily(baseURL), model);
}

const CAPABILITY_VALUES: { readonly [K in keyof Capabilities]: readonly Capabilities[K][] } = {
  tokenLimitField: ["max_tokens", "max_completion_tokens"],
  sampling: [true, false],
  n: [true, false],
  jsonSchema: [true, false],
  streamUsage: [true, false],
  cutsLongPrompts: [true, false],
  rateHeaders: ["per-minute", "per-day-requests", "per-second"],
  thinkTags: [true, false],
};

/**
 * `key=value,...` (RXSYNTH_CAPABILITIES), e.g. "jsonSchema=false,n=false": what a user knows of an endpoint
 * before it refuses anything. A key or value this client does not know is a ConfigError naming the choices.
 */
export function parseCapabilities(text: string, where: string): Partial<Capabilities> {
  const parsed: Record<string, unknown> = {};
  for (const part of text.split(",").map((item) => item.trim()).filter(Boolean)) {
    const [key = "", raw, ...extra] = part.split("=").map((item) => item.trim());
    if (!Object.hasOwn(CAPABILITY_VALUES, key)) throw new ConfigError(`${where}: unknown capability "${key}"; known: ${Object.keys(CAPABILITY_VALUES).join(", ")}`);
    if (Object.hasOwn(parsed, key)) throw new ConfigError(`${where}: ${key} is given twice`);
    const allowed = CAPABILITY_VALUES[key as keyof Capabilities] as readonly unknown[];
    const value = raw === "true" ? true : raw === "false" ? false : raw;
    if (extra.length > 0 || !allowed.includes(value)) throw new ConfigError(`${where}: ${key} must be one of ${allowed.join(", ")}, got "${[raw, ...extra].join("=")}"`);
    parsed[key] = value;
  }
  return parsed as Partial<Capabilities>;
}

/** A family named by the user (option or RXSYNTH_ENDPOINT_FAMILY), checked. */
export function parseFamily(text: string, where: string): EndpointFamily {
  const family = text.trim().toLowerCase();
  if (!(ENDPOINT_FAMILIES as readonly string[]).includes(family)) throw new ConfigError(`${where}: unknown endpoint family "${text}"; known: ${ENDPOINT_FAMILIES.join(", ")}`);
  return family as EndpointFamily;
}

const SAMPLING = ["temperature", "top_p", "presence_penalty", "frequency_penalty"] as const;

/** The request body as this endpoint takes it: the cap under its field, sampling left to defaults where refused. */
export function shapeBody(body: Record<string, unknown>, capabilities: Capabilities): Record<string, unknown> {
  const shaped = { ...body };
  if (capabilities.tokenLimitField === "max_completion_tokens" && shaped.max_tokens !== undefined) {
    shaped.max_completion_tokens = shaped.max_tokens;
    delete shaped.max_tokens;
  }
  if (!capabilities.sampling) for (const field of SAMPLING) delete shaped[field];
  const format = shaped.response_format as { type?: string; json_schema?: { schema?: unknown } } | undefined;
  if (!capabilities.jsonSchema && format?.type === "json_schema") {
    // Nothing else carries the schema in json_object mode, so the prompt does.
    shaped.response_format = { type: "json_object" };
    const messages = (shaped.messages as ChatMessage[] | undefined) ?? [];
    const described = messages.some((message) => message.role === "system" && typeof message.content === "string" && message.content.includes(SCHEMA_INSTRUCTION));
    if (!described) shaped.messages = withSchemaInstruction(messages, format.json_schema?.schema ?? {});
  }
  return shaped;
}

export interface RefusedParameter {
  readonly status?: number;
  readonly message?: string;
  readonly param?: string | null;
  readonly code?: string | null;
}

/**
 * What a 400/422 says the endpoint does not take, as a change to its capabilities; undefined when it names
 * nothing this client can do without (the error is then the request's, or the configuration's).
 */
export function learnFromRefusal(error: RefusedParameter, current: Capabilities): Partial<Capabilities> | undefined {
  if (error.status !== 400 && error.status !== 422) return undefined;
  const message = error.message ?? "";
  // Named in quotes ('max_tokens') by OpenAI, bare by some compatible servers ("max_tokens is not supported").
  const param = error.param ?? /'([a-z_]+)'/.exec(message)?.[1] ?? /\b(max_tokens|temperature|top_p|presence_penalty|frequency_penalty|stream_options|response_format)\b/.exec(message)?.[1] ?? undefined;
  const says = (pattern: RegExp) => pattern.test(message);
  if (current.tokenLimitField === "max_tokens" && (param === "max_tokens" || says(/use '?max_completion_tokens'?/i)) && says(/not supported|unsupported/i)) {
    return { tokenLimitField: "max_completion_tokens" };
  }
  if (current.sampling && param !== undefined && (SAMPLING as readonly string[]).includes(param) && (error.code === "unsupported_value" || says(/only the default|not supported|unsupported/i))) {
    return { sampling: false };
  }
  if (current.streamUsage && (param === "stream_options" || says(/stream_options/))) return { streamUsage: false };
  if (current.n && (param === "n" || says(/'n'|\bn\b must be|number of choices/i))) return { n: false };
  // Only a refusal of the feature, never "Invalid schema": that is the request's own schema at fault.
  const unsupported = says(/not supported|unsupported|unknown|does not support/i) && !says(/invalid schema/i);
  if (current.jsonSchema && unsupported && (param === "response_format" || says(/json_schema/))) return { jsonSchema: false };
  return undefined;
}

/** One line for the log when the client adapts. */
export function describeChange(change: Partial<Capabilities>): string {
  if (change.tokenLimitField) return "it refuses max_tokens: sending the cap as max_completion_tokens";
  if (change.sampling === false) return "it takes only the default sampling: temperature and top_p are left out";
  if (change.streamUsage === false) return "it refuses stream_options: streamed usage is counted on this side";
  if (change.n === false) return "it serves one choice per request: n > 1 becomes n requests with distinct seeds";
  if (change.jsonSchema === false) return "it refuses json_schema: asking for json_object with the schema in the prompt";
  return "adapting";
}
