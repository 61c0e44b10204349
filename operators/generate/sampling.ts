import { ConfigError } from "../../src/index.ts";
import type { ChatRequest } from "../../src/llm/index.ts";

/**
 * Sampling settings beyond the temperature, as the papers' code sends them (Self-Instruct: top_p 0.5 and
 * presence_penalty 2 for instructions; Evol-Instruct: top_p 0.95). Unset ones are not sent: the server's
 * default applies, and the operator's provenance and cache key stay what they were.
 */
export interface SamplingOptions {
  /** Nucleus sampling, in (0, 1]. */
  readonly topP?: number;
  /** In [-2, 2]: positive values favour tokens not yet in the answer. */
  readonly presencePenalty?: number;
  /** In [-2, 2]: positive values penalise tokens by how often they already appear. */
  readonly frequencyPenalty?: number;
}

/** Checks the settings once, where the operator is built, and returns what goes into each request. */
export function samplingRequest(options: SamplingOptions, where: string): Pick<ChatRequest, "top_p" | "presence_penalty" | "frequency_penalty"> {
  const { topP, presencePenalty, frequencyPenalty } = options;
  if (topP !== undefined && !(topP > 0 && topP <= 1)) throw new ConfigError(`${where}: topP must be in (0, 1], got ${topP}`);
  for (const [name, value] of [["presencePenalty", presencePenalty], ["frequencyPenalty", frequencyPenalty]] as const) {
    if (value !== undefined && !(value >= -2 && value <= 2)) throw new ConfigError(`${where}: ${name} must be in [-2, 2], got ${value}`);
  }
  return {
    ...(topP !== undefined ? { top_p: topP } : {}),
    ...(presencePenalty !== undefined ? { presence_penalty: presencePenalty } : {}),
    ...(frequencyPenalty !== undefined ? { frequency_penalty: frequencyPenalty } : {}),
  };
}
