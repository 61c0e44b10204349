import { canonicalJson } from "../hash.ts";
import { extractJson } from "../llm/parse.ts";
import { countTokens, truncateToTokens } from "../llm/tokens.ts";
import type { ChatMessage } from "../llm/types.ts";
import { mathAnswer } from "./math.ts";
import { Rng } from "./random.ts";
import { valueFromSchema } from "./schema.ts";
import { answer, listRequest, numberedList, paragraph } from "./text.ts";

/** The refusal the simulator gives when a `refusal` fault fires. */
export const SIM_REFUSAL = "I'm sorry, but as an AI language model I cannot assist with that request.";

/** What the simulator reads of a chat request. */
export interface SimRequest {
  readonly model: string;
  readonly messages: readonly ChatMessage[];
  readonly n: number;
  readonly temperature?: number;
  readonly top_p?: number;
  readonly max_tokens?: number;
  readonly seed?: number;
  readonly stop?: string | readonly string[];
  readonly response_format?: { type: string; json_schema?: { name?: string; schema?: unknown } };
  /**
   * The server took json_schema and ignored it (the format reads as text): the model answers free text,
   * or, when the prompt describes a schema, JSON in a fence, as unconstrained models do.
   */
  readonly formatIgnored?: boolean;
}

export type ContentFault = "length" | "refusal" | "malformed" | "empty" | "unfinished";

export interface SimChoice {
  readonly content: string | null;
  readonly refusal: string | null;
  /** "unfinished": cut like "length"; the server reports its profile's finish reason for unfinished work. */
  readonly finishReason: "stop" | "length" | "unfinished";
  readonly tokens: number;
  readonly fault: ContentFault | undefined;
}

/**
 * The part of a request that decides its content. `n`, `stream`, `max_tokens` and `stop` are left out:
 * like a real model's, a capped answer is a prefix of the uncapped one.
 */
export function contentKey(request: SimRequest): string {
  return canonicalJson({
    model: request.model,
    messages: request.messages,
    temperature: request.temperature,
    top_p: request.top_p,
    seed: request.seed,
    response_format: request.response_format,
  });
}

function text(content: ChatMessage["content"]): string {
  if (typeof content === "string") return content;
  if (!content) return "";
  return content.map((part) => (part.type === "text" && typeof part.text === "string" ? part.text : "")).join("");
}

function lastUserText(messages: readonly ChatMessage[]): string {
  for (let i = messages.length - 1; i >= 0; i--) if (messages[i]!.role === "user") return text(messages[i]!.content);
  return messages.length > 0 ? text(messages[messages.length - 1]!.content) : "";
}

/** A JSON schema written into the prompt (the json_object fallback for servers without structured outputs). */
function schemaInPrompt(messages: readonly ChatMessage[]): unknown {
  for (let i = messages.length - 1; i >= 0; i--) {
    const body = text(messages[i]!.content);
    if (!body.includes('"properties"') && !body.includes('"type"')) continue;
    const found = extractJson(body.slice(Math.max(0, body.indexOf("{"))));
    const value = found?.value as Record<string, unknown> | undefined;
    if (value && typeof value === "object" && (value.properties || value.type === "object")) return value;
  }
  return undefined;
}

/** A plausible object for json_object mode: the schema in the prompt if there is one, else the keys it names. */
function plausibleObject(rng: Rng, messages: readonly ChatMessage[]): unknown {
  const schema = schemaInPrompt(messages);
  if (schema) return valueFromSchema(rng, schema);
  const keys = new Set<string>();
  for (const match of lastUserText(messages).matchAll(/["`']([A-Za-z_][A-Za-z0-9_]{1,30})["`']\s*[:,)\]]?/g)) {
    keys.add(match[1]!);
    if (keys.size >= 6) break;
  }
  if (keys.size === 0) return { answer: paragraph(rng, rng.int(2, 3)), confidence: Math.round(rng.next() * 100) / 100 };
  const properties: Record<string, unknown> = {};
  for (const key of keys) properties[key] = /score|rating|count|number|confidence/i.test(key) ? { type: "number" } : { type: "string" };
  return valueFromSchema(rng, { type: "object", properties, required: [...keys] });
}

/** Broken JSON of the three kinds models produce: cut off, wrapped in prose, or JavaScript-ish. */
function corrupt(rng: Rng, json: string): string {
  switch (rng.int(0, 2)) {
    case 0:
      return json.slice(0, Math.max(1, Math.floor(json.length * 0.6)));
    case 1:
      return `Sure! Here is the JSON you asked for:\n\`\`\`json\n${json}\n\`\`\`\nLet me know if you need anything else.`;
    default:
      return json.replace(/"([A-Za-z_][A-Za-z0-9_]*)":/g, "'$1':").replace(/}$/, ",}");
  }
}

function applyStop(content: string, stop: SimRequest["stop"]): { content: string; stopped: boolean } {
  const stops = typeof stop === "string" ? [stop] : (stop ?? []);
  let cut = -1;
  for (const s of stops) {
    const at = s ? content.indexOf(s) : -1;
    if (at >= 0 && (cut < 0 || at < cut)) cut = at;
  }
  return cut >= 0 ? { content: content.slice(0, cut), stopped: true } : { content, stopped: false };
}

/**
 * Choice `index` of the answer to `request`: deterministic in (server seed, request, index). `fault` is
 * decided by the caller (it varies between repeats of a request; the content does not).
 */
export function composeChoice(request: SimRequest, key: string, index: number, seed: number, fault: ContentFault | undefined): SimChoice {
  const rng = new Rng(`${seed}\u0000${key}\u0000${index}`);
  const format = request.response_format?.type;
  const wantsJson = format === "json_object" || format === "json_schema";
  let content: string;
  if (format === "json_schema") {
    content = JSON.stringify(valueFromSchema(rng, request.response_format?.json_schema?.schema ?? {}));
  } else if (format === "json_object") {
    content = JSON.stringify(plausibleObject(rng, request.messages));
  } else if (request.formatIgnored && schemaInPrompt(request.messages)) {
    content = `\`\`\`json\n${JSON.stringify(valueFromSchema(rng, schemaInPrompt(request.messages)))}\n\`\`\``;
  } else {
    const prompt = lastUserText(request.messages);
    const list = listRequest(prompt);
    content = list ? numberedList(rng, list.kind, list.count ?? rng.int(5, 8)) : (mathAnswer(rng, prompt) ?? answer(rng));
  }

  const model = request.model;
  let applied = fault;
  if (fault === "refusal") {
    const tokens = countTokens(SIM_REFUSAL, model);
    // Structured outputs report a refusal in its own field; plain chat says it in the text.
    if (format === "json_schema") return { content: null, refusal: SIM_REFUSAL, finishReason: "stop", tokens, fault };
    return { content: SIM_REFUSAL, refusal: null, finishReason: "stop", tokens, fault };
  }
  if (fault === "empty") return { content: "", refusal: null, finishReason: "stop", tokens: 0, fault };
  if (fault === "malformed") {
    if (wantsJson) content = corrupt(rng, content);
    else applied = undefined;
  }

  let finishReason: "stop" | "length" | "unfinished" = "stop";
  const stopped = applyStop(content, request.stop);
  content = stopped.content;
  let tokens: number;
  const half = fault === "length" || fault === "unfinished" ? Math.max(1, Math.floor(countTokens(content, model) / 2)) : undefined;
  const cap = half !== undefined && request.max_tokens !== undefined ? Math.min(half, request.max_tokens) : (half ?? request.max_tokens);
  if (cap !== undefined) {
    const cut = truncateToTokens(content, cap, model);
    if (cut.text !== content) finishReason = "length";
    content = cut.text;
    tokens = cut.tokens;
  } else {
    tokens = countTokens(content, model);
  }
  if (fault === "unfinished") finishReason = "unfinished";
  if (fault === "length" && finishReason !== "length") applied = undefined;
  return { content, refusal: null, finishReason, tokens, fault: applied };
}
