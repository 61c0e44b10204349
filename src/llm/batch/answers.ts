import type { Capabilities } from "../capabilities.ts";
import { splitReasoning } from "../reasoning.ts";
import { countTokens } from "../tokens.ts";
import type { ChatChoice, ChatResult } from "../types.ts";
import type { CompletionBody } from "./lines.ts";


/** The completion tokens of each choice: the server's total split in tiktoken's proportions, summing to it exactly. */
function choiceTokens(texts: readonly string[], total: number | undefined, model: string): number[] {
  if (texts.length === 1 && total !== undefined) return [total];
  const counts = texts.map((text) => countTokens(text, model));
  if (total === undefined) return counts;
  const sum = counts.reduce((a, b) => a + b, 0);
  const exact = counts.map((count) => (sum > 0 ? (count / sum) * total : total / counts.length));
  const shares = exact.map(Math.floor);
  const order = exact.map((value, index) => [value - shares[index]!, index] as const).sort((a, b) => b[0] - a[0]);
  for (let left = total - shares.reduce((a, b) => a + b, 0), k = 0; left > 0; left--, k++) shares[order[k % order.length]![1]]!++;
  return shares;
}

/** A batch line's completion as the result `llm.chat` gives (before its cost is known). */
export function resultOf(body: CompletionBody, requestModel: string, requestId: string | undefined, capabilities: Capabilities): Omit<ChatResult, "costUsd" | "attempts" | "latencyMs"> & { cachedPromptTokens: number } {
  const model = body.model ?? requestModel;
  const choices = (body.choices ?? []).map((choice, position) => {
    const message = choice.message ?? {};
    const answer = splitReasoning(message.content ?? "", message, capabilities);
    return {
      index: choice.index ?? position,
      text: answer.text,
      finishReason: choice.finish_reason ?? "none",
      ...(message.refusal ? { refusal: message.refusal } : {}),
      ...(answer.reasoning ? { reasoning: answer.reasoning } : {}),
    };
  });
  const perChoice = choiceTokens(
    choices.map((choice) => `${choice.reasoning ?? ""}${choice.text || choice.refusal || ""}`),
    body.usage?.completion_tokens,
    model,
  );
  const withTokens: ChatChoice[] = choices.map((choice, i) => ({ ...choice, completionTokens: perChoice[i]! }));
  return {
    choices: withTokens,
    model,
    usage: { promptTokens: body.usage?.prompt_tokens ?? 0, completionTokens: body.usage?.completion_tokens ?? perChoice.reduce((a, b) => a + b, 0) },
    requestId,
    cached: false,
    cachedPromptTokens: body.usage?.prompt_tokens_details?.cached_tokens ?? 0,
  };
}


