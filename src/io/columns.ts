import {
  Bool,
  Float64,
  Int32,
  List,
  Map_,
  Struct,
  TimestampMillisecond,
  Utf8,
  makeData,
  type Data,
} from "apache-arrow";

/*
 * Arrow column data built straight from JS arrays. apache-arrow's row builders cost about 10 µs per
 * 1 KB row (per-value encode, pending maps, resizes); writing offsets and bytes into preallocated typed
 * arrays is several times faster, and the Parquet sink's throughput is bounded by this step.
 * A value of `null` or `undefined` is a null slot everywhere.
 */

type Maybe<T> = T | null | undefined;

/** Validity bitmap (bit set = valid) and null count; no bitmap at all when every slot is valid. */
function validity(length: number, isNull: (index: number) => boolean): { nullBitmap?: Uint8Array; nullCount: number } {
  let bitmap: Uint8Array | undefined;
  let nullCount = 0;
  for (let i = 0; i < length; i++) {
    if (!isNull(i)) continue;
    if (!bitmap) bitmap = new Uint8Array((length + 7) >> 3).fill(0xff);
    bitmap[i >> 3]! &= ~(1 << (i & 7));
    nullCount++;
  }
  return bitmap ? { nullBitmap: bitmap, nullCount } : { nullCount: 0 };
}

export function utf8Column(values: readonly Maybe<string>[]): Data<Utf8> {
  const length = values.length;
  const offsets = new Int32Array(length + 1);
  // ASCII text needs exactly one byte per UTF-16 unit; the 3x headroom for the longest value means the
  // buffer grows only when a batch is mostly non-ASCII.
  let units = 0;
  let longest = 0;
  for (let i = 0; i < length; i++) {
    const value = values[i];
    if (typeof value === "string") {
      units += value.length;
      if (value.length > longest) longest = value.length;
    }
  }
  // Buffer#write is Node's direct UTF-8 encoder; TextEncoder#encodeInto costs a result object and a
  // subarray view per value, which shows at 10,000 values per column.
  let bytes = Buffer.allocUnsafe(units + longest * 3 + 16);
  let position = 0;
  for (let i = 0; i < length; i++) {
    const value = values[i];
    if (typeof value === "string" && value.length > 0) {
      const worst = position + value.length * 3;
      if (worst > bytes.length) {
        const grown = Buffer.allocUnsafe(Math.max(worst, bytes.length * 2));
        bytes.copy(grown, 0, 0, position);
        bytes = grown;
      }
      position += bytes.write(value, position);
    }
    offsets[i + 1] = position;
  }
  return makeData({
    type: new Utf8(),
    length,
    valueOffsets: offsets,
    data: new Uint8Array(bytes.buffer, bytes.byteOffset, position),
    ...validity(length, (i) => typeof values[i] !== "string"),
  });
}

export function float64Column(values: readonly Maybe<number>[]): Data<Float64> {
  const data = new Float64Array(values.length);
  for (let i = 0; i < values.length; i++) data[i] = values[i] ?? 0;
  return makeData({
    type: new Float64(),
    length: values.length,
    data,
    ...validity(values.length, (i) => typeof values[i] !== "number"),
  });
}

export function int32Column(values: readonly Maybe<number>[]): Data<Int32> {
  const data = new Int32Array(values.length);
  for (let i = 0; i < values.length; i++) data[i] = values[i] ?? 0;
  return makeData({
    type: new Int32(),
    length: values.length,
    data,
    ...validity(values.length, (i) => typeof values[i] !== "number"),
  });
}

export function boolColumn(values: readonly Maybe<boolean>[]): Data<Bool> {
  const data = new Uint8Array((values.length + 7) >> 3);
  for (let i = 0; i < values.length; i++) if (values[i] === true) data[i >> 3]! |= 1 << (i & 7);
  return makeData({
    type: new Bool(),
    length: values.length,
    data,
    ...validity(values.length, (i) => typeof values[i] !== "boolean"),
  });
}

/** Epoch milliseconds, written as a UTC timestamp so engines show instants, not wall-clock times. */
export function timestampColumn(values: readonly Maybe<number>[]): Data<TimestampMillisecond> {
  const data = new BigInt64Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    if (typeof value === "number" && Number.isFinite(value)) data[i] = BigInt(Math.trunc(value));
  }
  return makeData({
    type: new TimestampMillisecond("UTC"),
    length: values.length,
    data,
    ...validity(values.length, (i) => typeof values[i] !== "number" || !Number.isFinite(values[i])),
  });
}

/** Offsets from per-row lengths; a negative length marks a null list. */
function listOffsets(lengths: readonly number[]): Int32Array {
  const offsets = new Int32Array(lengths.length + 1);
  for (let i = 0; i < lengths.length; i++) offsets[i + 1] = offsets[i]! + Math.max(0, lengths[i]!);
  return offsets;
}

export function listColumn<T extends List>(type: T, lengths: readonly number[], child: Data<T["valueType"]>): Data<T> {
  return makeData({
    type,
    length: lengths.length,
    valueOffsets: listOffsets(lengths),
    child,
    ...validity(lengths.length, (i) => lengths[i]! < 0),
  });
}

export function structColumn<T extends Struct>(
  type: T,
  length: number,
  children: readonly Data[],
  isNull?: (index: number) => boolean,
): Data<T> {
  return makeData({
    type,
    length,
    children: [...children],
    ...(isNull ? validity(length, isNull) : { nullCount: 0 }),
  });
}

/** A map column from per-row entry counts (negative = null map) and the flattened entries struct. */
export function mapColumn(type: Map_, lengths: readonly number[], entries: Data<Struct>): Data<Map_> {
  return makeData({
    type,
    length: lengths.length,
    valueOffsets: listOffsets(lengths),
    child: entries,
    ...validity(lengths.length, (i) => lengths[i]! < 0),
  });
}
