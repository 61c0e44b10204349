// Small steps the ready graphs share: one LLM call per sample that annotates it (a map, not a new
// generation), the same call inside custom fan-outs, the first N records of a source, and seeded picks.
import { z } from "zod";
import {
  ConfigError,
  LlmError,
  defineAsyncMap,
  drop,
  isDrop,
  stableHash,
  type DropVerdict,
  type Operator,
  type RunContext,
  type Sample,
  type SampleData,
  type Source,
  type StepExtras,
} from "../../src/index.ts";
import { extractJson, looksLikeRefusal, reportLlmMetrics, type ChatMessage, type ChatRequest, type Llm, type ResponseFormat } from "../../src/llm/index.ts";
import { Rng } from "../../src/sim/random.ts";

/** How an answer is read: a zod schema (asked for as structured output) or a function of the text. */
export type AnswerParser<T> = z.ZodType<T> | ((text: string) => T | DropVerdict);

export interface AskOptions<T> {
  readonly llm: Llm;
  /** Default: the answer text as it is. */
  readonly parse?: AnswerParser<T>;
  /** Default 0.7. */
  readonly temperature?: number;
  readonly maxTokens?: number;
  /** Request seed. Default: the client's. */
  readonly seed?: number;
  /** Name of the structured-output schema. Default "answer". */
  readonly schemaName?: string;
}

export type Answer<T> = { readonly ok: true; readonly value: T; readonly text: string; readonly step: StepExtras } | { readonly ok: false; readonly verdict: DropVerdict };

/** A way of asking resolved once per operator: the response format and the parser. */
export interface Asker<T> {
  ask(messages: readonly ChatMessage[], context: RunContext, signal: AbortSignal): Promise<Answer<T>>;
  /** Serialisable settings, hashed into the operator's params. */
  readonly params: Record<string, unknown>;
}

function isSchema(value: unknown): value is z.ZodType {
  return typeof value === "object" && value !== null && typeof (value as { safeParse?: unknown }).safeParse === "function";
}

/** Strict mode accepts only schemas whose objects require every property and allow no others. */
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

function issues(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((issue) => `${issue.path.length > 0 ? issue.path.join(".") : "(root)"}: ${issue.message}`)
    .join("; ");
}

/**
 * Prepares one LLM call per sample with generate's reject reasons: `refusal`, `truncated`, `empty`,
 * `unparseable`, `schema_mismatch`, a parser's own reasons, `llm_error`. The raw answer travels with every
 * reject. A zod schema is sent as json_schema when the endpoint honours it, else as json_object with the
 * schema in a system message.
 */
export function asker<T = string>(options: AskOptions<T>): Asker<T> {
  const { llm } = options;
  if (!llm || typeof llm.chat !== "function") throw new ConfigError("asker: `llm` must be a client made by createLlm()");
  const schema = isSchema(options.parse) ? (options.parse as z.ZodType<T>) : undefined;
  const parser = typeof options.parse === "function" ? options.parse : undefined;
  const temperature = options.temperature ?? 0.7;
  let jsonSchema: Record<string, unknown> | undefined;
  if (schema) {
    const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { io: "input", unrepresentable: "any" }) as Record<string, unknown>;
    jsonSchema = rest;
  }
  const structured = jsonSchema ? (llm.supportsJsonSchema ? "json_schema" : "json_object") : "text";
  const responseFormat: ResponseFormat | undefined = !jsonSchema
    ? undefined
    : structured === "json_schema"
      ? { type: "json_schema", json_schema: { name: options.schemaName ?? "answer", schema: jsonSchema, strict: strictCompatible(jsonSchema) } }
      : { type: "json_object" };
  const schemaMessage: ChatMessage | undefined =
    structured === "json_object"
      ? { role: "system", content: `Reply with a single JSON object and nothing else. It must satisfy this JSON schema:\n${JSON.stringify(jsonSchema)}` }
      : undefined;

  const read = (text: string): { value: T } | DropVerdict => {
    if (schema) {
      const json = extractJson(text);
      if (!json) return drop("unparseable", { raw: text, message: "no JSON value in the answer" });
      const checked = schema.safeParse(json.value);
      return checked.success ? { value: checked.data } : drop("schema_mismatch", { raw: text, message: issues(checked.error) });
    }
    if (parser) {
      const parsed = parser(text);
      return isDrop(parsed) ? { ...parsed, raw: parsed.raw ?? text } : { value: parsed };
    }
    return { value: text as T };
  };

  return {
    params: {
      model: llm.model,
      temperature,
      maxTokens: options.maxTokens ?? null,
      seed: options.seed ?? null,
      structured,
      schema: jsonSchema ?? null,
      parse: parser ? stableHash(parser.toString()) : null,
    },
    async ask(prompt, context, signal) {
      const messages = schemaMessage ? [schemaMessage, ...prompt] : [...prompt];
      const request: ChatRequest = {
        messages,
        temperature,
        ...(options.maxTokens !== undefined ? { max_tokens: options.maxTokens } : {}),
        ...(options.seed !== undefined ? { seed: options.seed } : {}),
        ...(responseFormat ? { response_format: responseFormat } : {}),
      };
      let result;
      try {
        result = await llm.chat(request, {
          signal,
          meter: (delta) => reportLlmMetrics(context.metrics, delta),
          log: (line) => context.log(line),
        });
      } catch (error) {
        if (signal.aborted || !(error instanceof LlmError)) throw error;
        return { ok: false, verdict: drop("llm_error", { message: error.message }) };
      }
      const choice = result.choices[0];
      const bad = (verdict: DropVerdict): Answer<T> => ({ ok: false, verdict });
      if (!choice) return bad(drop("empty", { raw: "", message: "the endpoint returned no choice" }));
      const text = choice.text;
      if (choice.refusal) return bad(drop("refusal", { raw: choice.refusal }));
      if (!(schema && /^\s*[[{]/.test(text)) && looksLikeRefusal(text)) return bad(drop("refusal", { raw: text }));
      if (choice.finishReason === "length") return bad(drop("truncated", { raw: text, message: "finish_reason: length" }));
      if (text.trim().length === 0) return bad(drop("empty", { raw: text }));
      const parsed = read(text);
      if (isDrop(parsed)) return bad(parsed);
      return {
        ok: true,
        value: parsed.value,
        text,
        step: {
          model: result.model,
          promptHash: stableHash(messages),
          promptTokens: result.usage.promptTokens,
          completionTokens: choice.completionTokens,
          latencyMs: Math.round(result.latencyMs),
          ...(result.cached ? { note: "cached" } : {}),
        },
      };
    },
  };
}

export interface LlmMapOptions<T> extends AskOptions<T> {
  /** Operator name in metrics, rejects and steps. */
  readonly name: string;
  readonly prompt: (sample: Sample) => readonly ChatMessage[];
  /** The sample's new data from the answer. */
  readonly write: (value: T, sample: Sample) => SampleData;
  /** A note for the step (why this answer, which variant). */
  readonly note?: (value: T, sample: Sample) => string | undefined;
  readonly reads?: readonly string[];
  readonly writes?: readonly string[];
  /** Samples in flight in this operator. Default: the client's concurrency. */
  readonly concurrency?: number;
  /** Further serialisable settings to hash into provenance (the graph's own options). */
  readonly params?: Record<string, unknown>;
}

/**
 * One LLM call per sample whose answer annotates the same sample (a label, a translation back, a reply
 * to judge): a map, so the id and depth stay; `generate` is for answers that are new samples.
 *
 * Reads: `reads`. Writes: `writes`; a step with model, prompt hash, tokens and latency.
 * Drop reasons: as `asker` (refusal, truncated, empty, unparseable, schema_mismatch, llm_error).
 */
export function llmMap<T = string>(options: LlmMapOptions<T>): Operator {
  const ask = asker(options);
  return defineAsyncMap({
    name: options.name,
    params: { ...ask.params, prompt: stableHash(options.prompt.toString()), write: stableHash(options.write.toString()), ...options.params },
    reads: options.reads,
    writes: options.writes,
    concurrency: options.concurrency ?? options.llm.concurrency,
    async map(sample, _state, context, signal) {
      const answer = await ask.ask(options.prompt(sample), context, signal);
      if (!answer.ok) return answer.verdict;
      const note = options.note?.(answer.value, sample);
      const step = note ? { ...answer.step, note: answer.step.note ? `${note}; ${answer.step.note}` : note } : answer.step;
      return { data: options.write(answer.value, sample), step };
    },
  });
}

/** The first `count` records of a source (positions 0 .. count-1), so a graph's `count` option caps any input. */
export function firstRecords(source: Source, count: number): Source {
  if (!Number.isInteger(count) || count < 0) throw new ConfigError(`count must be a non-negative integer, got ${count}`);
  return {
    name: source.name,
    origin: source.origin,
    fields: source.fields,
    async size() {
      const size = await source.size?.();
      return size === undefined ? undefined : Math.min(size, count);
    },
    async *batches(options) {
      if (options.from >= count) return;
      for await (const batch of source.batches(options)) {
        const kept = batch.filter((item) => item.position < count);
        if (kept.length > 0) yield kept;
        if (kept.length < batch.length || (kept.at(-1)?.position ?? count) >= count - 1) return;
      }
    },
  };
}

/** A generator seeded by a key: the same key picks the same items, in any run and any order of work. */
export function seededRng(...key: readonly unknown[]): Rng {
  return new Rng(key.map(String).join("\u0000"));
}

/** `k` distinct items of `items`, in random order (a partial Fisher-Yates shuffle). */
export function pickDistinct<T>(rng: Rng, items: readonly T[], k: number): T[] {
  const pool = [...items];
  const count = Math.min(k, pool.length);
  for (let i = 0; i < count; i++) {
    const j = i + Math.floor(rng.next() * (pool.length - i));
    [pool[i], pool[j]] = [pool[j]!, pool[i]!];
  }
  return pool.slice(0, count);
}

/** Whitespace-separated words; the unit the graphs' length rules count. */
export function wordCount(text: string): number {
  const trimmed = text.trim();
  return trimmed.length === 0 ? 0 : trimmed.split(/\s+/).length;
}

/** A string data field, "" when missing. */
export function text(sample: Sample, field: string): string {
  const value = sample.data[field];
  return typeof value === "string" ? value : value === undefined || value === null ? "" : String(value);
}

/** The data without the named keys (working fields a graph does not want in its output). */
export function without(data: SampleData, ...keys: readonly string[]): SampleData {
  const out: SampleData = {};
  for (const [key, value] of Object.entries(data)) if (!keys.includes(key)) out[key] = value;
  return out;
}
