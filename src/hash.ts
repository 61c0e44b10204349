import { createHash } from "node:crypto";

/** JSON with object keys sorted, so equal values always serialise (and hash) the same. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v && typeof v === "object" && !Array.isArray(v) && !(v instanceof Uint8Array)) {
      const sorted: Record<string, unknown> = {};
      for (const k of Object.keys(v as Record<string, unknown>).sort()) sorted[k] = (v as Record<string, unknown>)[k];
      return sorted;
    }
    return v;
  });
}

/** A short, stable content hash: 16 hex characters of SHA-256 (64 bits, ample for ids within a run). */
export function stableHash(value: unknown, length = 16): string {
  const text = typeof value === "string" ? value : canonicalJson(value);
  return createHash("sha256").update(text).digest("hex").slice(0, length);
}

/** murmur3's finaliser: a bijection on 32 bits where every input bit flips each output bit with p≈1/2. */
export function fmix32(h: number): number {
  return fmix32Signed(h) >>> 0;
}

/**
 * fmix32's bits as a signed int32: V8 keeps it a small integer, where an unsigned result past 2^31 is a heap
 * number, which allocates when a hot loop stores it outside a typed array.
 */
export function fmix32Signed(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}
