// Asking for structured output and reading an answer: the parts every LLM operator shares, so a refusal,
// a cut-off answer or a schema mismatch is classified the same way wherever it happens.
import { z } from "zod";
import { errorMessage } from "../errors.ts";
import type { Llm } from "./client.ts";
import { extractJson, looksLikeRefusal } from "./parse.ts";
import type { ChatChoice, ChatMessage, ResponseFormat } from "./types.ts";

/** How a zod schema is asked for, resolved once per operator. */
export interface StructuredFormat {
  /** The schema as JSON Schema (input side, `$schema` removed): what is sent and hashed into params. */
  readonly jsonSchema: Record<string, unknown>;
  readonly structured: "json_schema" | "json_object";
  readonly responseFormat: ResponseFormat;
  /** The prompt as sent: a leading system message describes the schema, in both modes. */
  messages(prompt: readonly ChatMessage[]): ChatMessage[];
}

/** OpenAI's strict mode accepts only schemas whose objects list every property as required and allow no others. */
function strictCompatible(node: unknown): boolean {
  if (Array.isArray(node)) return node.every(strictCompatible);
  if (!node || typeof node !== "object") return true;
  const schema = node as Record<string, unknown>;
  if (schema.properties && typeof schema.properties === "object") {
    const required = new Set(Array.isArray(schema.required) ? (schema.required as string[]) : []);
    if (schema.additionalProperties !== false || !Object.keys(schema.properties).every((key) => required.has(key))) return false;
  }
  return Object.values(schema).every(strictCompatible);
}

/**
 * The prompt with the schema described in its leading system message: appended to the prompt's own system
 * message when it has one (templates such as Mistral's refuse a second system message), else a new one
 * first. `shapeBody` finds SCHEMA_INSTRUCTION there and does not describe it twice.
 */
export function withSchemaInstruction(prompt: readonly ChatMessage[], jsonSchema: unknown): ChatMessage[] {
  const instruction = `${SCHEMA_INSTRUCTION}\n${JSON.stringify(jsonSchema)}`;
  const [first, ...rest] = prompt;
  if (first?.role === "system" && typeof first.content === "string") return [{ ...first, content: `${first.content}\n\n${instruction}` }, ...rest];
  return [{ role: "system", content: instruction }, ...prompt];
}

export const SCHEMA_INSTRUCTION = "Reply with a single JSON object and nothing else. It must satisfy this JSON schema:";

/**
 * The response format for `schema`: json_schema (with `strict` only when the schema qualifies) when the
 * endpoint honours it, else json_object. Either way the prompt describes the schema in a leading system
 * message: some servers accept json_schema and ignore it (older llama.cpp builds, several OpenAI-compatible
 * layers), and a model that was never told the shape answers free text that no parser can use.
 */
export function structuredFormat(llm: Pick<Llm, "supportsJsonSchema">, schema: z.ZodType, name: string): StructuredFormat {
  const { $schema: _ignored, ...jsonSchema } = z.toJSONSchema(schema, { io: "input", unrepresentable: "any" }) as Record<string, unknown>;
  const messages = (prompt: readonly ChatMessage[]) => withSchemaInstruction(prompt, jsonSchema);
  if (llm.supportsJsonSchema) {
    return {
      jsonSchema,
      structured: "json_schema",
      responseFormat: { type: "json_schema", json_schema: { name, schema: jsonSchema, strict: strictCompatible(jsonSchema) } },
      messages,
    };
  }
  return { jsonSchema, structured: "json_object", responseFormat: { type: "json_object" }, messages };
}

/** "path.to.field: message" for the first few issues, so a reject says where the answer went wrong. */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((issue) => `${issue.path.length > 0 ? issue.path.join(".") : "(root)"}: ${issue.message}`)
    .join("; ");
}

/** Why an answer could not be used. Operators report these as drop reasons, some under a prefix of their own. */
export const BAD_ANSWER_REASONS = ["refusal", "truncated", "incomplete", "empty", "unparseable", "schema_mismatch"] as const;
export type BadAnswerReason = (typeof BAD_ANSWER_REASONS)[number];

/** A classified bad answer; `raw` is the text it came with (the refusal text for a refusal field). */
export interface BadAnswer {
  readonly reason: BadAnswerReason;
  readonly raw: string;
  readonly message: string;
}

/**
 * How an answer is read: a zod schema (the text is read as JSON, leniently, then validated), a function of
 * the text (a throw is `unparseable`), or nothing (the text as it is).
 */
export type AnswerReader<T> = z.ZodType<T> | ((text: string) => T);

export type ReadAnswer<T> = { readonly ok: true; readonly value: T; readonly raw: string } | { readonly ok: false; readonly bad: BadAnswer };

export function isZodSchema(value: unknown): value is z.ZodType {
  return typeof value === "object" && value !== null && typeof (value as { safeParse?: unknown }).safeParse === "function";
}

/** Finish reasons of a complete answer. */
const FINISHED: ReadonlySet<string> = new Set(["stop", "tool_calls", "function_call"]);

/** The JSON value of an answer: strict first, then the lenient readings of `extractJson`. */
function readJson(text: string): { value: unknown } | { error: string } {
  try {
    return { value: JSON.parse(text) };
  } catch (error) {
    return extractJson(text) ?? { error: errorMessage(error) };
  }
}

/**
 * Reads one choice into a value, or classifies what is wrong with it, in this order: `refusal` (the refusal
 * field, finish_reason "content_filter", or plain text that opens like one; a JSON answer asked for by
 * schema may quote a refusal inside it), `truncated` (finish_reason "length"), `incomplete` (any other
 * finish reason but "stop": aborted, none given), `empty`, then `unparseable` / `schema_mismatch` from
 * reading. Only the answer is read, never the model's reasoning (see splitReasoning).
 * The raw text always travels with a bad answer.
 */
export function readAnswer<T = string>(choice: ChatChoice | undefined, reader?: AnswerReader<T>): ReadAnswer<T> {
  const bad = (reason: BadAnswerReason, raw: string, message: string): ReadAnswer<T> => ({ ok: false, bad: { reason, raw, message } });
  if (!choice) return bad("empty", "", "the endpoint returned no choice");
  const raw = choice.text;
  const schema = isZodSchema(reader) ? (reader as z.ZodType<T>) : undefined;
  if (choice.refusal) return bad("refusal", choice.refusal, "the model declined (refusal field)");
  if (choice.finishReason === "content_filter") return bad("refusal", raw, "the provider's content filter stopped the answer (finish_reason: content_filter)");
  if (!(schema && /^\s*[[{]/.test(raw)) && looksLikeRefusal(raw)) return bad("refusal", raw, "the model declined");
  if (choice.finishReason === "length") {
    const thinking = raw.trim() === "" ? ": no answer within the token cap (a reasoning model spends it thinking first); raise max_tokens" : "";
    return bad("truncated", raw, `finish_reason: length${thinking}`);
  }
  if (!FINISHED.has(choice.finishReason)) {
    return bad("incomplete", raw, `finish_reason: ${choice.finishReason}: the server did not finish the answer (not cached; a rerun asks again)`);
  }
  if (raw.trim().length === 0) return bad("empty", raw, "the model returned no text");
  if (schema) {
    const json = readJson(raw);
    if ("error" in json) return bad("unparseable", raw, json.error);
    const checked = schema.safeParse(json.value);
    return checked.success ? { ok: true, value: checked.data, raw } : bad("schema_mismatch", raw, describeIssues(checked.error));
  }
  if (typeof reader === "function") {
    try {
      return { ok: true, value: reader(raw), raw };
    } catch (error) {
      return bad("unparseable", raw, errorMessage(error));
    }
  }
  return { ok: true, value: raw as T, raw };
}
