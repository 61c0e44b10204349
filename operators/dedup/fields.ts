import type { Sample } from "../../src/index.ts";

/** The data fields whose text an operator compares: one name or several (joined with a blank line). */
export type Fields = string | readonly string[];

export function fieldList(fields: Fields): string[] {
  return typeof fields === "string" ? [fields] : [...fields];
}

/** Text of one field: strings as they are, missing or null as "", anything else (chat messages, numbers) as JSON. */
export function fieldValue(sample: Sample, field: string): string {
  const value = sample.data[field];
  if (typeof value === "string") return value;
  if (value === undefined || value === null) return "";
  return JSON.stringify(value, (_key, v: unknown) => (typeof v === "bigint" ? v.toString() : v));
}

/** Reads the fields as one text, non-empty parts joined with a blank line. */
export function textOf(sample: Sample, fields: readonly string[]): string {
  if (fields.length === 1) return fieldValue(sample, fields[0]!);
  let text = "";
  for (const field of fields) {
    const part = fieldValue(sample, field);
    if (part.length > 0) text = text.length === 0 ? part : `${text}\n\n${part}`;
  }
  return text;
}
