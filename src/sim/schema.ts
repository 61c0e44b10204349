import type { Rng } from "./random.ts";
import { instruction, paragraph, phrase, question, sentence, topic, word } from "./text.ts";

type Schema = Record<string, unknown>;

/** Deeper than this, recursive schemas get their smallest value (empty arrays, null where allowed). */
const MAX_DEPTH = 8;

function asSchema(value: unknown): Schema {
  if (value === true || value === undefined || value === null) return {};
  if (value === false) return { not: {} };
  return value as Schema;
}

function resolveRef(root: Schema, ref: string): Schema {
  if (!ref.startsWith("#")) return {};
  let node: unknown = root;
  for (const part of ref.slice(1).split("/").filter(Boolean)) {
    const key = decodeURIComponent(part.replace(/~1/g, "/").replace(/~0/g, "~"));
    node = (node as Record<string, unknown> | undefined)?.[key];
  }
  return asSchema(node);
}

function mergeAllOf(schema: Schema): Schema {
  const parts = (schema.allOf as unknown[]).map(asSchema);
  const merged: Schema = { ...schema, allOf: undefined };
  for (const part of parts) {
    for (const [key, value] of Object.entries(part)) {
      if (key === "properties") merged.properties = { ...(merged.properties as Schema), ...(value as Schema) };
      else if (key === "required") merged.required = [...((merged.required as string[]) ?? []), ...(value as string[])];
      else merged[key] = value;
    }
  }
  return merged;
}

function stringForName(rng: Rng, name: string): string {
  const n = name.toLowerCase();
  if (/question|query/.test(n)) return question(rng);
  if (/instruction|prompt|task|request/.test(n)) return instruction(rng);
  if (/answer|response|output|explanation|reason|rationale|content|text|body|description|summary|feedback|critique|solution|comment|passage|context|story/.test(n)) {
    return paragraph(rng, rng.int(2, 3));
  }
  if (/topic|subject|domain/.test(n)) return topic(rng);
  if (/name|title|label|category|tag|keyword|kind|type/.test(n)) return phrase(rng);
  return sentence(rng);
}

function formatted(rng: Rng, format: string): string | undefined {
  const hex = (length: number) => Array.from({ length }, () => rng.int(0, 15).toString(16)).join("");
  const pad = (value: number) => String(value).padStart(2, "0");
  const date = () => `${rng.int(1990, 2030)}-${pad(rng.int(1, 12))}-${pad(rng.int(1, 28))}`;
  const time = () => `${pad(rng.int(0, 23))}:${pad(rng.int(0, 59))}:${pad(rng.int(0, 59))}`;
  switch (format) {
    case "email":
      return `${word(rng)}.${word(rng)}${rng.int(1, 99)}@example.com`;
    case "uri":
    case "url":
      return `https://example.com/${word(rng)}/${rng.int(1, 9999)}`;
    case "uuid":
      return `${hex(8)}-${hex(4)}-4${hex(3)}-${rng.pick(["8", "9", "a", "b"])}${hex(3)}-${hex(12)}`;
    case "date":
      return date();
    case "time":
      return `${time()}Z`;
    case "date-time":
      return `${date()}T${time()}Z`;
    case "ipv4":
      return `${rng.int(1, 223)}.${rng.int(0, 255)}.${rng.int(0, 255)}.${rng.int(1, 254)}`;
    case "ipv6":
      return `2001:db8::${hex(4)}`;
    case "hostname":
      return `${word(rng)}.example.com`;
    default:
      return undefined;
  }
}

function stringValue(rng: Rng, schema: Schema, name: string): string {
  let text = (typeof schema.format === "string" && formatted(rng, schema.format)) || stringForName(rng, name);
  const min = typeof schema.minLength === "number" ? schema.minLength : 0;
  const max = typeof schema.maxLength === "number" ? schema.maxLength : Infinity;
  while (text.length < min) text += ` ${sentence(rng)}`;
  if (text.length > max) text = text.slice(0, max).trimEnd().padEnd(Math.min(min, max), "x");
  return text;
}

function numberValue(rng: Rng, schema: Schema, name: string, integer: boolean): number {
  const scoreLike = /score|rating|grade|rank|quality|level/i.test(name);
  const probabilityLike = /confidence|probability|prob|likelihood|weight/i.test(name);
  let lo = typeof schema.minimum === "number" ? schema.minimum : undefined;
  let hi = typeof schema.maximum === "number" ? schema.maximum : undefined;
  const step = integer ? 1 : 1e-6;
  if (typeof schema.exclusiveMinimum === "number") lo = Math.max(lo ?? -Infinity, schema.exclusiveMinimum + step);
  if (typeof schema.exclusiveMaximum === "number") hi = Math.min(hi ?? Infinity, schema.exclusiveMaximum - step);
  const defaultLo = probabilityLike && !integer ? 0 : scoreLike ? 1 : 0;
  const defaultHi = probabilityLike && !integer ? 1 : scoreLike ? 10 : 100;
  if (lo === undefined && hi === undefined) [lo, hi] = [defaultLo, defaultHi];
  else if (lo === undefined) lo = Math.min(hi! - (defaultHi - defaultLo), defaultLo);
  else if (hi === undefined) hi = Math.max(lo + (defaultHi - defaultLo), defaultHi);
  let value: number;
  if (integer) {
    value = rng.int(Math.ceil(lo!), Math.floor(hi!));
  } else {
    value = Math.round((lo! + rng.next() * (hi! - lo!)) * 100) / 100;
    value = Math.min(hi!, Math.max(lo!, value));
  }
  const multipleOf = typeof schema.multipleOf === "number" && schema.multipleOf > 0 ? schema.multipleOf : undefined;
  if (multipleOf) {
    let snapped = Math.ceil(lo! / multipleOf) * multipleOf;
    const count = Math.floor((hi! - snapped) / multipleOf);
    if (count > 0) snapped += rng.int(0, count) * multipleOf;
    value = Number(snapped.toFixed(10));
  }
  return value;
}

function pickType(rng: Rng, types: unknown, shallow: boolean): string | undefined {
  if (typeof types === "string") return types;
  if (!Array.isArray(types) || types.length === 0) return undefined;
  const nonNull = types.filter((t) => t !== "null");
  if (nonNull.length === 0 || (shallow && types.includes("null"))) return "null";
  return rng.pick(nonNull) as string;
}

function generate(rng: Rng, node: unknown, root: Schema, name: string, depth: number): unknown {
  let schema = asSchema(node);
  const deep = depth > MAX_DEPTH;
  if (typeof schema.$ref === "string") return generate(rng, { ...resolveRef(root, schema.$ref), ...schema, $ref: undefined }, root, name, depth + 1);
  if (Array.isArray(schema.allOf)) schema = mergeAllOf(schema);
  if ("const" in schema) return schema.const;
  if (Array.isArray(schema.enum) && schema.enum.length > 0) return rng.pick(schema.enum);
  const branches = (schema.anyOf ?? schema.oneOf) as unknown[] | undefined;
  if (Array.isArray(branches) && branches.length > 0) {
    const nonNull = branches.filter((b) => asSchema(b).type !== "null");
    const choice = deep || nonNull.length === 0 ? branches.find((b) => asSchema(b).type === "null") ?? branches[0] : rng.pick(nonNull);
    const { anyOf: _a, oneOf: _o, ...rest } = schema;
    return generate(rng, { ...rest, ...asSchema(choice) }, root, name, depth + 1);
  }
  const type =
    pickType(rng, schema.type, deep) ??
    (schema.properties ? "object" : schema.items || schema.prefixItems ? "array" : "string");
  switch (type) {
    case "object": {
      const properties = (schema.properties ?? {}) as Record<string, unknown>;
      const required = new Set(Array.isArray(schema.required) ? (schema.required as string[]) : []);
      const out: Record<string, unknown> = {};
      for (const [key, child] of Object.entries(properties)) {
        if (required.has(key) || (!deep && rng.chance(0.5))) out[key] = generate(rng, child, root, key, depth + 1);
      }
      // A required key with no schema of its own still has to be present.
      for (const key of required) if (!(key in out)) out[key] = stringForName(rng, key);
      return out;
    }
    case "array": {
      const min = typeof schema.minItems === "number" ? schema.minItems : 0;
      const max = typeof schema.maxItems === "number" ? schema.maxItems : Math.max(min, 4);
      const prefix = Array.isArray(schema.prefixItems) ? (schema.prefixItems as unknown[]) : [];
      let count = deep ? min : Math.min(max, Math.max(min, rng.int(1, 3)));
      const items = asSchema(schema.items);
      if (schema.uniqueItems && Array.isArray(items.enum)) count = Math.min(count, items.enum.length);
      const out: unknown[] = [];
      const seen = new Set<string>();
      for (let i = 0; out.length < count && i < count * 10; i++) {
        const child = out.length < prefix.length ? prefix[out.length] : items;
        const value = generate(rng, child, root, name.replace(/s$/, ""), depth + 1);
        const key = JSON.stringify(value);
        if (schema.uniqueItems && seen.has(key)) continue;
        seen.add(key);
        out.push(value);
      }
      return out;
    }
    case "string":
      return stringValue(rng, schema, name);
    case "integer":
      return numberValue(rng, schema, name, true);
    case "number":
      return numberValue(rng, schema, name, false);
    case "boolean":
      return rng.chance(0.5);
    case "null":
      return null;
    default:
      return stringValue(rng, schema, name);
  }
}

/**
 * A value that satisfies `schema` (JSON Schema as zod's toJSONSchema and OpenAI's structured outputs use it:
 * objects, required, arrays with min/max items, enums, const, anyOf/oneOf, $ref/$defs, formats, numeric
 * bounds). Strings read as English chosen by the property name. `pattern` is not honoured.
 */
export function valueFromSchema(rng: Rng, schema: unknown, name = "value"): unknown {
  const root = asSchema(schema);
  return generate(rng, root, root, name, 0);
}
