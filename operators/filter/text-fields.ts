import { InputError, type Sample } from "../../src/index.ts";

/**
 * Where a text filter finds its text: one data field, several (joined with a blank line and judged as one
 * text, each field a paragraph), or a function of the sample for anything else (chat messages, nested data).
 */
export type TextFields = string | readonly string[] | ((sample: Sample) => string);

/** Reads the text a filter judges. A missing or null field is empty text; any other non-string is an InputError. */
export type TextReader = (sample: Sample) => string;

export function textReader(fields: TextFields): TextReader {
  if (typeof fields === "function") return fields;
  if (typeof fields === "string") return (sample) => fieldText(sample, fields);
  if (fields.length === 1) {
    const only = fields[0]!;
    return (sample) => fieldText(sample, only);
  }
  return (sample) => {
    let text = "";
    for (let i = 0; i < fields.length; i++) {
      const part = fieldText(sample, fields[i]!);
      if (part.length === 0) continue;
      text = text.length === 0 ? part : `${text}\n\n${part}`;
    }
    return text;
  };
}

export function fieldText(sample: Sample, field: string): string {
  const value = sample.data[field];
  if (typeof value === "string") return value;
  if (value === undefined || value === null) return "";
  throw new InputError(`expected text, got ${Array.isArray(value) ? "array" : typeof value}`, { field });
}

/** The data fields named, for an operator's `reads`; a function reads what it likes, so it declares none. */
export function fieldNames(fields: TextFields): string[] {
  if (typeof fields === "function") return [];
  return typeof fields === "string" ? [fields] : [...fields];
}

/**
 * Fields as serialisable params: a function is hashed by its source text, so editing it changes the
 * provenance hash while an unchanged graph keeps its cache.
 */
export function fieldsParam(fields: TextFields): string | string[] {
  if (typeof fields === "function") return `fn:${fields.toString()}`;
  return typeof fields === "string" ? fields : [...fields];
}
