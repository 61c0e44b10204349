import { ConfigError } from "../errors.ts";

/** Price of a model in USD per million tokens. */
export interface ModelPrice {
  readonly input: number;
  readonly output: number;
  /** Prompt tokens the provider served from its prompt cache (`usage.prompt_tokens_details.cached_tokens`); default `input`. */
  readonly cachedInput?: number;
}

/**
 * When the built-in prices were taken from the providers' published list prices (standard tier, no
 * batch discount). Prices change: check the provider's page, and override with RXSYNTH_PRICE or the
 * graphs' `price` option where they have.
 */
export const PRICES_AS_OF = "2025-08";

/**
 * Share of the list price an answer through the provider's Batch API costs (OpenAI, Groq and Together bill
 * batches at half price); a batch client's `batchPriceFactor` overrides it for a provider that differs.
 */
export const BATCH_PRICE_FACTOR = 0.5;

/** The model name ready graphs use for the built-in simulator; priced at 0 and labelled as such. */
export const SIMULATOR_MODEL = "rxsynth-sim";

const price = (input: number, output: number, cachedInput?: number): ModelPrice =>
  cachedInput === undefined ? { input, output } : { input, output, cachedInput };

/**
 * List prices in USD per 1M tokens, as of PRICES_AS_OF, by model name. Dated snapshots
 * (`gpt-4o-mini-2024-07-18`, `claude-sonnet-4-20250514`) resolve to their family's entry unless they
 * are listed themselves; a model not listed has no known price (its cost is reported as unknown, not 0).
 */
export const BUILTIN_PRICES: Readonly<Record<string, ModelPrice>> = Object.freeze({
  [SIMULATOR_MODEL]: price(0, 0),
  // OpenAI
  "gpt-5": price(1.25, 10, 0.125),
  "gpt-5-mini": price(0.25, 2, 0.025),
  "gpt-5-nano": price(0.05, 0.4, 0.005),
  "gpt-4.1": price(2, 8, 0.5),
  "gpt-4.1-mini": price(0.4, 1.6, 0.1),
  "gpt-4.1-nano": price(0.1, 0.4, 0.025),
  "gpt-4o": price(2.5, 10, 1.25),
  // The first gpt-4o snapshot kept its launch price.
  "gpt-4o-2024-05-13": price(5, 15),
  "gpt-4o-mini": price(0.15, 0.6, 0.075),
  o3: price(2, 8, 0.5),
  "o3-mini": price(1.1, 4.4, 0.55),
  "o4-mini": price(1.1, 4.4, 0.275),
  o1: price(15, 60, 7.5),
  "gpt-4-turbo": price(10, 30),
  "gpt-3.5-turbo": price(0.5, 1.5),
  // Anthropic (its OpenAI-compatible endpoint); cachedInput is the cache-read price.
  "claude-opus-4-1": price(15, 75, 1.5),
  "claude-opus-4": price(15, 75, 1.5),
  "claude-sonnet-4": price(3, 15, 0.3),
  "claude-3-7-sonnet": price(3, 15, 0.3),
  "claude-3-5-sonnet": price(3, 15, 0.3),
  "claude-3-5-haiku": price(0.8, 4, 0.08),
  "claude-3-haiku": price(0.25, 1.25, 0.03),
  // Groq
  "llama-3.3-70b-versatile": price(0.59, 0.79),
  "llama-3.1-8b-instant": price(0.05, 0.08),
});

/** A snapshot's or alias's suffix: `-2024-07-18`, `-20250514`, `-latest`, `-0` (Anthropic's `claude-sonnet-4-0`). */
const SNAPSHOT_SUFFIX = /-(?:\d{4}-\d{2}-\d{2}|\d{8}|latest|0)$/;

/**
 * The price of `model` in `table`: the exact name, else the name without a dated-snapshot suffix, else
 * (for routers such as OpenRouter, `openai/gpt-4o-mini`) the same after the provider prefix.
 */
export function lookupPrice(model: string, table: Readonly<Record<string, ModelPrice>> = BUILTIN_PRICES): ModelPrice | undefined {
  const names = [model];
  const slash = model.lastIndexOf("/");
  if (slash >= 0) names.push(model.slice(slash + 1));
  for (const name of names) {
    if (Object.hasOwn(table, name)) return table[name];
    const family = name.replace(SNAPSHOT_SUFFIX, "");
    if (family !== name && Object.hasOwn(table, family)) return table[family];
  }
  return undefined;
}

/** What a price setting looks like; said by every parse error. */
export const PRICE_FORMAT =
  'input=<usd>,output=<usd>[,cached=<usd>] in USD per 1M tokens for the run\'s model (e.g. "input=0.15,output=0.6"), ' +
  'or JSON by model name (e.g. \'{"my-model":{"input":0.15,"output":0.6}}\')';

function checkedNumber(value: unknown, what: string, where: string): number {
  const number = typeof value === "string" && value.trim() !== "" ? Number(value) : value;
  if (typeof number !== "number" || !Number.isFinite(number) || number < 0) {
    throw new ConfigError(`${where}: ${what} must be a number >= 0 (USD per 1M tokens), got ${JSON.stringify(value)}; expected ${PRICE_FORMAT}`);
  }
  return number;
}

function checkedPrice(value: unknown, where: string): ModelPrice {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ConfigError(`${where}: each model's price must be an object with input and output; expected ${PRICE_FORMAT}`);
  }
  const record = value as Record<string, unknown>;
  const unknown = Object.keys(record).filter((key) => !["input", "output", "cached", "cachedInput"].includes(key));
  if (unknown.length > 0) throw new ConfigError(`${where}: unknown price field ${unknown.map((k) => `"${k}"`).join(", ")}; expected ${PRICE_FORMAT}`);
  if (record.input === undefined || record.output === undefined) {
    throw new ConfigError(`${where}: a price needs both input and output; expected ${PRICE_FORMAT}`);
  }
  const cached = record.cached ?? record.cachedInput;
  return price(
    checkedNumber(record.input, "input", where),
    checkedNumber(record.output, "output", where),
    cached === undefined ? undefined : checkedNumber(cached, "cached", where),
  );
}

/**
 * Reads a price setting (PRICE_FORMAT): the short form prices `model`, the JSON form names its models.
 * `where` names the setting in errors (e.g. "RXSYNTH_PRICE"). An empty setting sets no price.
 */
export function parsePriceSetting(text: string, model: string, where: string): Record<string, ModelPrice> {
  const trimmed = text.trim();
  if (trimmed === "") return {};
  if (trimmed.startsWith("{")) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(trimmed);
    } catch (error) {
      throw new ConfigError(`${where}: not valid JSON (${(error as Error).message}); expected ${PRICE_FORMAT}`, { cause: error });
    }
    const out: Record<string, ModelPrice> = {};
    for (const [name, value] of Object.entries(parsed as Record<string, unknown>)) out[name] = checkedPrice(value, `${where} (${name})`);
    return out;
  }
  const fields: Record<string, string> = {};
  for (const part of trimmed.split(",")) {
    const equals = part.indexOf("=");
    if (equals <= 0) throw new ConfigError(`${where}: "${part.trim()}" is not key=value; expected ${PRICE_FORMAT}`);
    fields[part.slice(0, equals).trim()] = part.slice(equals + 1).trim();
  }
  return { [model]: checkedPrice(fields, where) };
}

export interface PriceSettings {
  /** The model the short form prices (the run's model). */
  readonly model: string;
  /** A graph's `price` option (PRICE_FORMAT); "" or unset: none. */
  readonly option?: string;
  /** RXSYNTH_PRICE (PRICE_FORMAT); wins over the option. Default: process.env.RXSYNTH_PRICE. */
  readonly env?: string;
}

/**
 * The prices a run uses, in increasing precedence: the built-in table, the graph's `price` option,
 * RXSYNTH_PRICE. Pass the result as `createLlm({ prices })` (which lays it over the built-in table).
 */
export function resolvePrices(settings: PriceSettings): Record<string, ModelPrice> {
  const env = settings.env ?? process.env.RXSYNTH_PRICE ?? "";
  return {
    ...parsePriceSetting(settings.option ?? "", settings.model, "the price option"),
    ...parsePriceSetting(env, settings.model, "RXSYNTH_PRICE"),
  };
}

/** "$0.15/$0.60 per 1M tokens in/out" for a price, for a log line. */
export function describePrice(p: ModelPrice): string {
  const usd = (n: number) => `$${n < 0.01 && n > 0 ? n.toString() : n.toFixed(2)}`;
  return `${usd(p.input)}/${usd(p.output)} per 1M tokens in/out${p.cachedInput !== undefined ? ` (${usd(p.cachedInput)} cached)` : ""}`;
}
