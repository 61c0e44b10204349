/**
 * Typed arrays as base64 strings, so the diversity operators can save their state as one JSON document
 * (readable when debugging a run folder) without writing every number out in decimal.
 */

type Typed = Uint8Array | Uint16Array | Int32Array | Uint32Array | Float64Array;

export function toBase64(array: Typed): string {
  return Buffer.from(array.buffer, array.byteOffset, array.byteLength).toString("base64");
}

/** The bytes of `text` in an own, aligned buffer (a Node Buffer may be a view into a shared pool). */
function bytesOf(text: string): ArrayBuffer {
  const decoded = Buffer.from(text, "base64");
  const own = new Uint8Array(decoded.byteLength);
  own.set(decoded);
  return own.buffer;
}

export const uint8FromBase64 = (text: string): Uint8Array => new Uint8Array(bytesOf(text));
export const uint16FromBase64 = (text: string): Uint16Array => new Uint16Array(bytesOf(text));
export const int32FromBase64 = (text: string): Int32Array => new Int32Array(bytesOf(text));
export const uint32FromBase64 = (text: string): Uint32Array => new Uint32Array(bytesOf(text));
export const float64FromBase64 = (text: string): Float64Array => new Float64Array(bytesOf(text));
