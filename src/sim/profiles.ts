// How the simulator plays each family of real server, from the servers' own code, docs and issue threads.
// Each profile is only what rxsynth must adapt to: the requests a family refuses (with its error body), what
// it ignores, where it puts a reasoning model's chain of thought, and the finish reasons it reports.

import { isReasoningModel } from "../llm/capabilities.ts";

/** The families `rxsynth sim --profile` plays. "openai" is the default: classic chat models. */
export const SIM_PROFILES = ["openai", "openai-reasoning", "azure", "vllm", "sglang", "ollama", "llamacpp", "groq", "together"] as const;
export type SimProfileName = (typeof SIM_PROFILES)[number];

/** Where a thinking model's chain of thought goes in the answer. */
export type ReasoningPlacement = "none" | "hidden" | "reasoning" | "reasoning_content" | "think-tags";

export interface SimRefusal {
  readonly status: number;
  readonly message: string;
  readonly type: string;
  readonly param: string | null;
  readonly code: string | null;
}

export interface SimProfile {
  readonly name: SimProfileName;
  /** The error this family answers a request with, or undefined when it serves it. */
  refuse(body: Readonly<Record<string, unknown>>): SimRefusal | undefined;
  /** How many choices it returns when asked for `n`. */
  choices(n: number): number;
  /** The completion cap it honours (Ollama reads only max_tokens). */
  cap(body: Readonly<Record<string, unknown>>): number | undefined;
  /** Where the chain of thought of `model` goes, by default. */
  reasoning(model: string): ReasoningPlacement;
  /** A finish reason other than stop/length it may report for an answer it did not finish (see faults). */
  readonly unfinished: "abort" | null | "content_filter";
  /** Unknown model names are a 404 (servers that load named models) rather than served anyway. */
  readonly strictModels: boolean;
  /**
   * How usage counts completion tokens: "tiktoken" as the client does, or "model" for a server that bills
   * with its own model's tokenizer (played as one token per 3 characters), so a client's own count drifts.
   */
  readonly billing?: "tiktoken" | "model";
  /**
   * Rate headers: OpenAI's per-minute ones (default), Groq's per-day request count, Azure's -1 remaining, or
   * Together's per-second x-ratelimit-limit / x-tokenlimit-limit.
   */
  readonly rateHeaders?: "per-minute" | "per-day-requests" | "unknown-remaining" | "per-second";
  /**
   * How error bodies look: OpenAI's `{"error": {...}}` (default), or the fields at the top level
   * (`{"object": "error", "message": ..., "code": 400}`), as SGLang and vLLM before 0.10 send them.
   */
  readonly errorShape?: "nested" | "flat";
  /** What GET /v1/models says owns each model: the servers' own words (vLLM "vllm", Ollama "library", ...). Default "rxsynth-sim". */
  readonly ownedBy?: string;
}

const unsupportedParameter = (param: string, instead: string): SimRefusal => ({
  status: 400,
  // OpenAI's wording for reasoning models (o-series, gpt-5).
  message: `Unsupported parameter: '${param}' is not supported with this model. Use '${instead}' instead.`,
  type: "invalid_request_error",
  param,
  code: "unsupported_parameter",
});

const unsupportedValue = (param: string, value: unknown): SimRefusal => ({
  status: 400,
  message: `Unsupported value: '${param}' does not support ${JSON.stringify(value)} with this model. Only the default (1) value is supported.`,
  type: "invalid_request_error",
  param,
  code: "unsupported_value",
});


function reasoningModelRefusal(body: Readonly<Record<string, unknown>>): SimRefusal | undefined {
  if (body.max_tokens !== undefined) return unsupportedParameter("max_tokens", "max_completion_tokens");
  for (const param of ["temperature", "top_p"] as const) {
    if (body[param] !== undefined && body[param] !== 1) return unsupportedValue(param, body[param]);
  }
  return undefined;
}

const capOf = (body: Readonly<Record<string, unknown>>, field: "max_tokens" | "max_completion_tokens") => {
  const value = body[field];
  return typeof value === "number" ? value : undefined;
};
const eitherCap = (body: Readonly<Record<string, unknown>>) => capOf(body, "max_completion_tokens") ?? capOf(body, "max_tokens");

const always = (placement: ReasoningPlacement) => () => placement;
const reasoningBody = (body: Readonly<Record<string, unknown>>) => typeof body.model === "string" && isReasoningModel(body.model);
const byModel = (body: Readonly<Record<string, unknown>>) => (reasoningBody(body) ? reasoningModelRefusal(body) : undefined);
const reasoningCap = (body: Readonly<Record<string, unknown>>) => (reasoningBody(body) ? capOf(body, "max_completion_tokens") : eitherCap(body));

// OpenAI: classic models take max_tokens and any temperature; reasoning models refuse both.
const OPENAI: SimProfile = {
  name: "openai",
  refuse: byModel,
  choices: (n) => n,
  cap: reasoningCap,
  // A reasoning model's chain of thought is billed (completion_tokens_details.reasoning_tokens), never returned.
  reasoning: (model) => (isReasoningModel(model) ? "hidden" : "none"),
  unfinished: "content_filter",
  strictModels: false,
};

const PROFILES: Record<SimProfileName, SimProfile> = {
  openai: OPENAI,
  // Every model treated as a reasoning one, whatever its name (sim-1 included).
  "openai-reasoning": {
    name: "openai-reasoning",
    refuse: reasoningModelRefusal,
    choices: (n) => n,
    cap: (body) => capOf(body, "max_completion_tokens"),
    reasoning: always("hidden"),
    unfinished: "content_filter",
    strictModels: false,
  },
  // Azure serves OpenAI's models the same way, but only deployments that exist.
  azure: { ...OPENAI, name: "azure", strictModels: true, rateHeaders: "unknown-remaining" },
  // vLLM >= 0.10 with --reasoning-parser: message.reasoning; aborted requests finish with "abort".
  vllm: { name: "vllm", refuse: () => undefined, choices: (n) => n, cap: eitherCap, reasoning: always("reasoning"), unfinished: "abort", strictModels: true, ownedBy: "vllm" },
  sglang: { name: "sglang", refuse: () => undefined, choices: (n) => n, cap: eitherCap, reasoning: always("reasoning_content"), unfinished: "abort", strictModels: true, ownedBy: "sglang", errorShape: "flat" },
  // Ollama's OpenAI layer: one choice whatever n, max_completion_tokens ignored, `reasoning` for thinking models.
  ollama: { name: "ollama", refuse: () => undefined, choices: () => 1, cap: (body) => capOf(body, "max_tokens"), reasoning: always("reasoning"), unfinished: null, strictModels: true, ownedBy: "library" },
  // llama.cpp's server without --reasoning-format: the chain of thought stays in content, closed by </think>.
  llamacpp: { name: "llamacpp", refuse: () => undefined, choices: (n) => n, cap: eitherCap, reasoning: always("think-tags"), unfinished: null, strictModels: false, billing: "model", ownedBy: "llamacpp" },
  groq: {
    name: "groq",
    refuse(body) {
      if (typeof body.n === "number" && body.n > 1) {
        return { status: 400, message: "'n' : number must be at most 1", type: "invalid_request_error", param: "n", code: null };
      }
      if (body.stream_options !== undefined) {
        return { status: 400, message: "'stream_options' : property 'stream_options' is unsupported", type: "invalid_request_error", param: "stream_options", code: null };
      }
      return undefined;
    },
    choices: (n) => n,
    cap: eitherCap,
    reasoning: always("none"),
    unfinished: null,
    strictModels: false,
    rateHeaders: "per-day-requests",
  },
  // Together serves OpenAI's API with its rate limits per second, under its own header names.
  together: { ...OPENAI, name: "together", reasoning: always("none"), rateHeaders: "per-second" },
};

export function simProfile(name: SimProfileName = "openai"): SimProfile {
  return PROFILES[name];
}

/** A thinking model's chain of thought for an answer: deterministic, and long enough to hold a decoy. */
export function chainOfThought(answer: string): string {
  // A draft JSON object inside the reasoning: a client that reads JSON from the reasoning takes the wrong one.
  return `Let me think about this step by step. A first draft would be {"draft": true}, but that misses the point. The answer should be: ${answer.slice(0, 60)}`;
}
