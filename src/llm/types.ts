/** One message of a chat prompt (the OpenAI shape; content parts other than text are passed through). */
export interface ChatMessage {
  readonly role: "system" | "developer" | "user" | "assistant";
  readonly content: string | null | ReadonlyArray<{ readonly type: "text"; readonly text: string } | { readonly type: string; readonly [key: string]: unknown }>;
  readonly name?: string;
}

export interface JsonSchemaFormat {
  readonly type: "json_schema";
  readonly json_schema: {
    readonly name: string;
    readonly schema: Record<string, unknown>;
    readonly strict?: boolean;
    readonly description?: string;
  };
}
export type ResponseFormat = { readonly type: "text" } | { readonly type: "json_object" } | JsonSchemaFormat;

/** A chat-completions request; every field but `messages` may be left to the client's defaults. */
export interface ChatRequest {
  readonly messages: readonly ChatMessage[];
  /** Defaults to the client's model. */
  readonly model?: string;
  readonly temperature?: number;
  readonly top_p?: number;
  readonly max_tokens?: number;
  /** Completions wanted for this prompt; default 1. */
  readonly n?: number;
  /** Defaults to the client's seed. */
  readonly seed?: number;
  readonly stop?: string | readonly string[];
  readonly presence_penalty?: number;
  readonly frequency_penalty?: number;
  readonly response_format?: ResponseFormat;
  /** Stream the answer over SSE; the result is the same, `onDelta` sees it arrive. */
  readonly stream?: boolean;
}

/**
 * Why the server stopped. Only "stop" is a finished answer; "length" is cut at the cap; "content_filter" is
 * the provider's filter (read as a refusal); "abort" (vLLM, SGLang), "none" (the server gave no reason, as
 * Ollama may) or anything else is unfinished work, never cached.
 */
export type FinishReason = "stop" | "length" | "content_filter" | "tool_calls" | "function_call" | "abort" | "none" | (string & {});

export interface ChatChoice {
  readonly index: number;
  /** The answer text; "" when the model returned none (or only a refusal). */
  readonly text: string;
  readonly finishReason: FinishReason;
  /** Set when the server reported a refusal in its own field (structured outputs). */
  readonly refusal?: string;
  /** A reasoning model's chain of thought, kept apart from `text` (see splitReasoning). */
  readonly reasoning?: string;
  /** Tokens of this choice (the usage figure for n = 1, counted with tiktoken for n > 1). */
  readonly completionTokens: number;
}

export interface ChatUsage {
  readonly promptTokens: number;
  readonly completionTokens: number;
}

export interface ChatResult {
  readonly choices: readonly ChatChoice[];
  readonly model: string;
  readonly usage: ChatUsage;
  /** Wall time of the request that produced the answer (0 for a cache hit). */
  readonly latencyMs: number;
  readonly requestId: string | undefined;
  /** True when every choice came from the response cache and nothing was sent. */
  readonly cached: boolean;
  /** HTTP requests this call sent (0 when cached or coalesced with an identical call). */
  readonly attempts: number;
  readonly costUsd: number;
}

/** Running totals of one client. */
export interface LlmStats {
  /** HTTP requests sent, retries included. */
  readonly requests: number;
  readonly retries: number;
  readonly cacheHits: number;
  /** Calls that joined an identical call already in flight instead of sending their own. */
  readonly coalesced: number;
  readonly promptTokens: number;
  readonly completionTokens: number;
  /** USD of the answers whose model has a price (see `LlmOptions.prices`). */
  readonly costUsd: number;
  /** Tokens (prompt + completion) of answers whose model has no known price: not in `costUsd`. */
  readonly unpricedTokens: number;
  /** Tokens of the simulator's answers, which cost nothing. */
  readonly simulatedTokens: number;
  /** 429 answers received. */
  readonly rateLimited: number;
  /** Calls that failed for good. */
  readonly failures: number;
}

/**
 * A change to the totals, as reported to `ChatCallOptions.meter` while a call runs. An answered request's
 * report also carries its wall time, `latencySeconds`: an observation, not a total to add up.
 */
export type LlmStatsDelta = Partial<Record<keyof LlmStats, number>> & { readonly latencySeconds?: number };
