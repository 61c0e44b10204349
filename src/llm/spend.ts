/** Told what one admitted request cost once it ends (0 when it failed): frees what its bound reserved. */
export type SpendSettle = (actualUsd: number) => void;

/**
 * The most a request can cost: `exact` when its `max_tokens` bounds the answer, otherwise an estimate
 * from the longest answer seen (twice it), which a longer answer can pass; `alone` while that estimate
 * rests on too few answers to send it beside others.
 */
export interface SpendBound {
  readonly usd: number;
  readonly exact: boolean;
  readonly alone?: boolean;
}

/**
 * A spending cap the client asks before it sends a priced request (the run's `--max-cost`). `bound` is
 * asked each time the gate decides, as a request that waits learns from the answers others get meanwhile;
 * undefined when nothing bounds the answer yet (no `max_tokens`, no answer seen). The promise may never
 * resolve once the cap is reached; it rejects when `signal` aborts.
 */
export interface SpendGate {
  admit(bound: () => SpendBound | undefined, signal: AbortSignal): Promise<SpendSettle>;
}

/** Tokenizers differ between the client's count and the server's bill by a few percent. */
const PROMPT_MARGIN = 1.1;

/** The most a request can cost at this price, or undefined when its answer has no bound yet. */
export function requestCostBound(
  price: { readonly input: number; readonly output: number },
  promptTokens: number,
  choices: number,
  answer: { readonly tokens: number; readonly exact: boolean; readonly alone?: boolean } | undefined,
): SpendBound | undefined {
  if (answer === undefined) return undefined;
  const usd = (promptTokens * PROMPT_MARGIN * price.input + choices * answer.tokens * price.output) / 1_000_000;
  return { usd, exact: answer.exact, ...(answer.alone ? { alone: true } : {}) };
}
