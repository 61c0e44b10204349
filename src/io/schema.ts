import {
  Bool,
  Field,
  Float64,
  Int32,
  List,
  Map_,
  MapRow,
  RecordBatch,
  Schema,
  Struct,
  StructRow,
  TimestampMillisecond,
  Utf8,
  Vector,
  type Data,
  type DataType,
} from "apache-arrow";
import type { Sample, SampleData, StepRecord } from "../sample.ts";
import {
  boolColumn,
  float64Column,
  int32Column,
  listColumn,
  mapColumn,
  structColumn,
  timestampColumn,
  utf8Column,
} from "./columns.ts";
import type { OutputRow, RejectRow } from "./types.ts";

/*
 * The one place that knows how a sample becomes a typed Arrow row and back. Parquet and Arrow sinks
 * share it, so `provenance.depth` is an int32 and `provenance.steps` a list of structs in both, and
 * every reader decodes both the same way.
 *
 * `data` is a struct whose columns are inferred from the first batch a sink sees. What does not fit
 * them is never dropped: a key missing from the schema, a value of another type, an explicit null or
 * a string that is not well-formed UTF-16 goes, as JSON, into the `data._extra` column, and readers
 * merge it back.
 */

export type ShardKind = "accepted" | "rejects";

/** How a `data` key is stored: a typed column, or a JSON string for objects, arrays and mixed types. */
export type DataColumnType = "string" | "number" | "boolean" | "json";

export interface DataColumn {
  readonly name: string;
  readonly type: DataColumnType;
}

/** The `data` column holding, as a JSON object, whatever did not fit the inferred columns. */
export const EXTRA_FIELD = "_extra";
/** Field metadata marking a utf8 column whose values are JSON text. */
export const ENCODING_KEY = "rxsynth.encoding";
/** Schema metadata naming the row layout, so readers know a file holds samples. */
export const LAYOUT_KEY = "rxsynth.layout";
export const LAYOUT_VERSION = "sample/1";

const jsonMetadata = new Map([[ENCODING_KEY, "json"]]);

function utf8Field(name: string, nullable = true): Field {
  return new Field(name, new Utf8(), nullable);
}

const STEP_TYPE = new Struct([
  utf8Field("op"),
  utf8Field("version"),
  new Field("at", new TimestampMillisecond("UTC"), true),
  utf8Field("params"),
  utf8Field("model"),
  utf8Field("prompt_hash"),
  new Field("prompt_tokens", new Int32(), true),
  new Field("completion_tokens", new Int32(), true),
  new Field("latency_ms", new Float64(), true),
  utf8Field("note"),
  utf8Field("reasoning"),
]);
const PARENTS_TYPE = new List(utf8Field("item"));
const STEPS_TYPE = new List(new Field("item", STEP_TYPE, true));
const PROVENANCE_TYPE = new Struct([
  utf8Field("origin"),
  utf8Field("source"),
  new Field("parents", PARENTS_TYPE, true),
  new Field("depth", new Int32(), true),
  new Field("steps", STEPS_TYPE, true),
]);
const SCORE_ENTRY_TYPE = new Struct([utf8Field("key", false), new Field("value", new Float64(), true)]);
const SCORES_TYPE = new Map_(new Field("entries", SCORE_ENTRY_TYPE, false), false);
const REJECT_TYPE = new Struct([
  utf8Field("operator"),
  utf8Field("reason"),
  new Field("value", new Float64(), true),
  new Field("threshold", new Float64(), true),
  utf8Field("message"),
  utf8Field("raw"),
  utf8Field("duplicate_of"),
  new Field("at", new TimestampMillisecond("UTC"), true),
]);

// ---------------------------------------------------------------------------------------------------
// Inference

function typeOfValue(value: unknown): DataColumnType {
  if (typeof value === "string") return "string";
  if (typeof value === "number") return "number";
  if (typeof value === "boolean") return "boolean";
  return "json";
}

/**
 * Columns for `data`, in first-seen key order: a key whose non-null values all share a primitive type
 * gets that type; objects, arrays, mixed types and all-null keys become JSON columns.
 */
export function inferDataColumns(rows: readonly OutputRow[]): DataColumn[] {
  const seen = new Map<string, DataColumnType | undefined>();
  for (const row of rows) {
    const data = row.data as SampleData | undefined;
    if (!data) continue;
    for (const key of Object.keys(data)) {
      if (key === EXTRA_FIELD) continue;
      const value = data[key];
      const known = seen.get(key);
      if (value === null || value === undefined) {
        if (!seen.has(key)) seen.set(key, undefined);
        continue;
      }
      const type = typeOfValue(value);
      if (known === undefined) seen.set(key, type);
      else if (known !== type) seen.set(key, "json");
    }
  }
  return [...seen].map(([name, type]) => ({ name, type: type ?? "json" }));
}

// ---------------------------------------------------------------------------------------------------
// Layout

export interface SampleLayout {
  readonly kind: ShardKind;
  readonly columns: readonly DataColumn[];
  readonly schema: Schema;
}

function dataField(column: DataColumn): Field {
  switch (column.type) {
    case "string":
      return utf8Field(column.name);
    case "number":
      return new Field(column.name, new Float64(), true);
    case "boolean":
      return new Field(column.name, new Bool(), true);
    case "json":
      return new Field(column.name, new Utf8(), true, jsonMetadata);
  }
}

export function sampleLayout(kind: ShardKind, columns: readonly DataColumn[]): SampleLayout {
  const dataType = new Struct([...columns.map(dataField), new Field(EXTRA_FIELD, new Utf8(), true, jsonMetadata)]);
  const fields = [
    utf8Field("id", false),
    new Field("data", dataType, false),
    new Field("provenance", PROVENANCE_TYPE, false),
    new Field("scores", SCORES_TYPE, false),
  ];
  if (kind === "rejects") fields.push(new Field("reject", REJECT_TYPE, true));
  return { kind, columns, schema: new Schema(fields, new Map([[LAYOUT_KEY, LAYOUT_VERSION]])) };
}

// ---------------------------------------------------------------------------------------------------
// Encoding

function bigintSafe(_key: string, value: unknown): unknown {
  if (typeof value !== "bigint") return value;
  const asNumber = Number(value);
  return Number.isSafeInteger(asNumber) ? asNumber : value.toString();
}

/** JSON text of a value; BigInts become numbers when safe, else decimal strings. */
export function toJson(value: unknown): string | undefined {
  try {
    return JSON.stringify(value);
  } catch (error) {
    // A replacer slows every call down, so it is used only for the rare value that needs it.
    if (error instanceof TypeError) return JSON.stringify(value, bigintSafe);
    throw error;
  }
}

const isWellFormed: (text: string) => boolean =
  typeof (String.prototype as { isWellFormed?: unknown }).isWellFormed === "function"
    ? (text) => (text as string & { isWellFormed(): boolean }).isWellFormed()
    : (text) => !/\p{Surrogate}/u.test(text);

function fits(type: DataColumnType, value: unknown): boolean {
  switch (type) {
    case "string":
      // UTF-8 has no encoding for a lone surrogate; _extra keeps it as a JSON escape instead.
      return typeof value === "string" && isWellFormed(value);
    case "number":
      return typeof value === "number";
    case "boolean":
      return typeof value === "boolean";
    case "json":
      return value !== null && typeof value !== "function" && typeof value !== "symbol";
  }
}

function encodeData(layout: SampleLayout, rows: readonly OutputRow[]): Data<Struct> {
  const { columns } = layout;
  const n = rows.length;
  const index = new Map(columns.map((column, i) => [column.name, i]));
  const values = columns.map(() => new Array<unknown>(n).fill(null));
  const extras = new Array<string | null>(n).fill(null);
  for (let i = 0; i < n; i++) {
    const data = rows[i]!.data as SampleData;
    let extra: Record<string, unknown> | undefined;
    for (const key of Object.keys(data)) {
      const value = data[key];
      if (value === undefined) continue;
      const j = index.get(key);
      const column = j === undefined ? undefined : columns[j]!;
      if (column && fits(column.type, value)) {
        values[j!]![i] = column.type === "json" ? toJson(value) : value;
      } else {
        (extra ??= {})[key] = value;
      }
    }
    if (extra) extras[i] = toJson(extra) ?? null;
  }
  const children = columns.map((column, j) => {
    const columnValues = values[j]!;
    switch (column.type) {
      case "string":
      case "json":
        return utf8Column(columnValues as (string | null)[]);
      case "number":
        return float64Column(columnValues as (number | null)[]);
      case "boolean":
        return boolColumn(columnValues as (boolean | null)[]);
    }
  });
  children.push(utf8Column(extras));
  return structColumn(layout.schema.fields[1]!.type as Struct, n, children);
}

function encodeSteps(rows: readonly OutputRow[]): Data<List> {
  const lengths = rows.map((row) => row.provenance.steps.length);
  const steps: StepRecord[] = [];
  for (const row of rows) for (const step of row.provenance.steps) steps.push(step);
  const pick = <T>(get: (step: StepRecord) => T | undefined): (T | null)[] => steps.map((step) => get(step) ?? null);
  const entries = structColumn(STEP_TYPE, steps.length, [
    utf8Column(pick((s) => s.op)),
    utf8Column(pick((s) => s.version)),
    timestampColumn(pick((s) => s.at)),
    utf8Column(pick((s) => s.params)),
    utf8Column(pick((s) => s.model)),
    utf8Column(pick((s) => s.promptHash)),
    int32Column(pick((s) => s.promptTokens)),
    int32Column(pick((s) => s.completionTokens)),
    float64Column(pick((s) => s.latencyMs)),
    utf8Column(pick((s) => s.note)),
    utf8Column(pick((s) => s.reasoning)),
  ]);
  return listColumn(STEPS_TYPE, lengths, entries);
}

function encodeProvenance(rows: readonly OutputRow[]): Data<Struct> {
  const parents: string[] = [];
  for (const row of rows) for (const parent of row.provenance.parents) parents.push(parent);
  return structColumn(PROVENANCE_TYPE, rows.length, [
    utf8Column(rows.map((row) => row.provenance.origin)),
    utf8Column(rows.map((row) => row.provenance.source)),
    listColumn(PARENTS_TYPE, rows.map((row) => row.provenance.parents.length), utf8Column(parents)),
    int32Column(rows.map((row) => row.provenance.depth)),
    encodeSteps(rows),
  ]);
}

function encodeScores(rows: readonly OutputRow[]): Data<Map_> {
  const lengths: number[] = [];
  const keys: string[] = [];
  const values: number[] = [];
  for (const row of rows) {
    const scores = row.scores ?? {};
    let count = 0;
    for (const key of Object.keys(scores)) {
      keys.push(key);
      values.push(scores[key]!);
      count++;
    }
    lengths.push(count);
  }
  const entries = structColumn(SCORE_ENTRY_TYPE, keys.length, [utf8Column(keys), float64Column(values)]);
  return mapColumn(SCORES_TYPE, lengths, entries);
}

function encodeReject(rows: readonly OutputRow[]): Data<Struct> {
  const rejects = rows.map((row) => (row as Partial<RejectRow>).reject);
  const pick = <T>(get: (reject: RejectRow["reject"]) => T | undefined): (T | null)[] =>
    rejects.map((reject) => (reject ? (get(reject) ?? null) : null));
  return structColumn(
    REJECT_TYPE,
    rows.length,
    [
      utf8Column(pick((r) => r.operator)),
      utf8Column(pick((r) => r.reason)),
      float64Column(pick((r) => r.value)),
      float64Column(pick((r) => r.threshold)),
      utf8Column(pick((r) => r.message)),
      utf8Column(pick((r) => r.raw)),
      utf8Column(pick((r) => r.duplicateOf)),
      timestampColumn(pick((r) => r.at)),
    ],
    (i) => rejects[i] === undefined,
  );
}

/** One Arrow record batch of rows in `layout`. */
export function encodeSamples(layout: SampleLayout, rows: readonly OutputRow[]): RecordBatch {
  const children: Data[] = [
    utf8Column(rows.map((row) => row.id)),
    encodeData(layout, rows),
    encodeProvenance(rows),
    encodeScores(rows),
  ];
  if (layout.kind === "rejects") children.push(encodeReject(rows));
  const root = structColumn(new Struct(layout.schema.fields), rows.length, children);
  return new RecordBatch(layout.schema, root);
}

// ---------------------------------------------------------------------------------------------------
// Decoding

/** Arrow values as plain JS: structs and maps as objects, lists as arrays, safe BigInts as numbers. */
export function toPlain(value: unknown): unknown {
  if (value === null || value === undefined) return null;
  if (typeof value === "bigint") {
    const asNumber = Number(value);
    return Number.isSafeInteger(asNumber) ? asNumber : value;
  }
  if (typeof value !== "object") return value;
  if (value instanceof StructRow) {
    const out: Record<string, unknown> = {};
    for (const [key, inner] of Object.entries(value.toJSON())) out[key] = toPlain(inner);
    return out;
  }
  if (value instanceof MapRow) {
    const out: Record<string, unknown> = {};
    for (const [key, inner] of value) out[String(key)] = toPlain(inner);
    return out;
  }
  if (value instanceof Vector) return Array.from(value, toPlain);
  return value;
}

/** Every row of a batch as a plain object, column by column. */
export function plainRows(batch: RecordBatch): Record<string, unknown>[] {
  const rows = Array.from({ length: batch.numRows }, () => ({}) as Record<string, unknown>);
  batch.schema.fields.forEach((field, j) => {
    const vector = batch.getChildAt(j)!;
    for (let i = 0; i < rows.length; i++) rows[i]![field.name] = toPlain(vector.get(i));
  });
  return rows;
}

/** True when a schema has the sample columns our sinks write (so readers can unwrap `data`). */
export function isSampleSchema(schema: Schema): boolean {
  const byName = new Map(schema.fields.map((field) => [field.name, field]));
  const data = byName.get("data");
  return (
    byName.get("id")?.type instanceof Utf8 &&
    data?.type instanceof Struct &&
    byName.get("provenance")?.type instanceof Struct &&
    byName.has("scores")
  );
}

/** Names of the `data` columns holding JSON text (marked in field metadata; `_extra` always is). */
export function jsonDataFields(schema: Schema): Set<string> {
  const json = new Set([EXTRA_FIELD]);
  const data = schema.fields.find((field) => field.name === "data");
  if (data?.type instanceof Struct) {
    for (const child of data.type.children as Field[]) {
      if (child.metadata.get(ENCODING_KEY) === "json") json.add(child.name);
    }
  }
  return json;
}

function parseJson(text: unknown): unknown {
  return typeof text === "string" ? JSON.parse(text) : text;
}

/** The record a sink was given as `data`, rebuilt from the struct: JSON columns parsed, `_extra` merged. */
export function decodeData(struct: Record<string, unknown> | null, jsonFields: ReadonlySet<string>): SampleData {
  const data: SampleData = {};
  if (!struct) return data;
  for (const [key, value] of Object.entries(struct)) {
    if (key === EXTRA_FIELD || value === null || value === undefined) continue;
    data[key] = jsonFields.has(key) ? parseJson(value) : value;
  }
  const extra = struct[EXTRA_FIELD];
  if (typeof extra === "string") Object.assign(data, JSON.parse(extra) as SampleData);
  return data;
}

function optional<T>(value: T | null | undefined): T | undefined {
  return value === null ? undefined : value;
}

function withoutUndefined<T extends object>(value: T): T {
  for (const key of Object.keys(value) as (keyof T)[]) if (value[key] === undefined) delete value[key];
  return value;
}

type Plain = Record<string, unknown>;

function decodeStep(step: Plain): StepRecord {
  return withoutUndefined({
    op: step.op as string,
    version: step.version as string,
    at: step.at as number,
    params: optional(step.params as string | null),
    model: optional(step.model as string | null),
    promptHash: optional(step.prompt_hash as string | null),
    promptTokens: optional(step.prompt_tokens as number | null),
    completionTokens: optional(step.completion_tokens as number | null),
    latencyMs: optional(step.latency_ms as number | null),
    note: optional(step.note as string | null),
    reasoning: optional(step.reasoning as string | null),
  });
}

/** A sample (or reject row) from a plain row in the stored layout (snake_case provenance and reject). */
export function decodeSampleRow(row: Plain, jsonFields: ReadonlySet<string>): OutputRow {
  const provenance = (row.provenance ?? {}) as Plain;
  const sample: Sample = {
    id: row.id as string,
    data: decodeData(row.data as Plain | null, jsonFields),
    provenance: {
      origin: provenance.origin as Sample["provenance"]["origin"],
      source: provenance.source as string,
      parents: (provenance.parents as string[] | null) ?? [],
      depth: provenance.depth as number,
      steps: ((provenance.steps as Plain[] | null) ?? []).map(decodeStep),
    },
    scores: (row.scores as Record<string, number> | null) ?? {},
  };
  const reject = row.reject as Plain | null | undefined;
  if (!reject) return sample;
  return {
    ...sample,
    reject: withoutUndefined({
      operator: reject.operator as string,
      reason: reject.reason as string,
      value: optional(reject.value as number | null),
      threshold: optional(reject.threshold as number | null),
      message: optional(reject.message as string | null),
      raw: optional(reject.raw as string | null),
      duplicateOf: optional(reject.duplicate_of as string | null),
      at: reject.at as number,
    }),
  };
}

/** Rows of a batch: samples when the batch has the sample layout, plain objects otherwise. */
export function decodeBatch(batch: RecordBatch): Record<string, unknown>[] {
  const rows = plainRows(batch);
  if (!isSampleSchema(batch.schema)) return rows;
  const jsonFields = jsonDataFields(batch.schema);
  return rows.map((row) => decodeSampleRow(row, jsonFields) as unknown as Record<string, unknown>);
}

/** A schema as indented text, one field per line, for `rxsynth inspect`. */
export function describeSchema(schema: Schema): string {
  const lines: string[] = [];
  const walk = (fields: readonly Field[], depth: number): void => {
    for (const field of fields) {
      const json = field.metadata.get(ENCODING_KEY) === "json" ? " (json)" : "";
      let typeName: string;
      if (field.type instanceof Struct) typeName = "struct";
      else if (field.type instanceof List) typeName = `list<${describeType((field.type as List).valueType)}>`;
      else if (field.type instanceof Map_) typeName = `map<${describeType(field.type.keyType)}, ${describeType(field.type.valueType)}>`;
      else typeName = describeType(field.type);
      lines.push(`${"  ".repeat(depth)}${field.name}: ${typeName}${field.nullable ? "" : " not null"}${json}`);
      if (field.type instanceof Struct) walk(field.type.children as Field[], depth + 1);
      else if (field.type instanceof List && (field.type as List).valueType instanceof Struct) {
        walk(((field.type as List).valueType as Struct).children as Field[], depth + 1);
      }
    }
  };
  walk(schema.fields, 0);
  return lines.join("\n");
}

function describeType(type: DataType): string {
  return type instanceof Struct ? "struct" : String(type).toLowerCase();
}
