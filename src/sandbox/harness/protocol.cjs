// The only thing that crosses from the program's process to the checker's: plain data, one JSON line per
// message. Whatever the program returns is rebuilt from plain values on the checker's side, so an object
// with a forged valueOf, getter or prototype never reaches the tests.
"use strict";

const MAX_MESSAGE = 16 * 1024 * 1024;
const MAX_DEPTH = 200;

class NotPlain extends TypeError {}

const NUMBERS = new Map([["NaN", NaN], ["Infinity", Infinity], ["-Infinity", -Infinity], ["-0", -0]]);

function encode(value, depth = 0) {
  if (depth > MAX_DEPTH) throw new NotPlain(`a value nested more than ${MAX_DEPTH} deep (or one that contains itself)`);
  if (value === null || typeof value === "boolean" || typeof value === "string") return value;
  if (typeof value === "number") {
    if (Number.isFinite(value) && !Object.is(value, -0)) return value;
    return { n: Object.is(value, -0) ? "-0" : String(value) };
  }
  if (value === undefined) return { u: 0 };
  if (typeof value === "bigint") return { big: value.toString() };
  if (Array.isArray(value)) {
    const out = new Array(value.length);
    for (let i = 0; i < value.length; i++) out[i] = encode(value[i], depth + 1);
    return out;
  }
  if (value instanceof Map) return { m: [...value].map(([k, v]) => [encode(k, depth + 1), encode(v, depth + 1)]) };
  if (value instanceof Set) return { s: [...value].map((item) => encode(item, depth + 1)) };
  if (value instanceof Date) return { date: value.getTime() };
  if (typeof value === "object") {
    const proto = Object.getPrototypeOf(value);
    if (proto === Object.prototype || proto === null) {
      return { o: Object.keys(value).map((key) => [key, encode(value[key], depth + 1)]) };
    }
    throw new NotPlain(`an object of class ${proto?.constructor?.name ?? "unknown"}`);
  }
  throw new NotPlain(`a ${typeof value}`);
}

function decode(value) {
  if (Array.isArray(value)) return value.map(decode);
  if (value === null || typeof value !== "object") return value;
  const [tag, inner] = Object.entries(value)[0] ?? [];
  switch (tag) {
    case "n":
      if (!NUMBERS.has(inner)) throw new Error(`unknown number ${inner}`);
      return NUMBERS.get(inner);
    case "u":
      return undefined;
    case "big":
      return BigInt(inner);
    case "m":
      return new Map(inner.map(([k, v]) => [decode(k), decode(v)]));
    case "s":
      return new Set(inner.map(decode));
    case "date":
      return new Date(inner);
    case "o": {
      const out = {};
      for (const [key, item] of inner) Object.defineProperty(out, String(key), { value: decode(item), enumerable: true, writable: true, configurable: true });
      return out;
    }
    default:
      throw new Error(`unknown tag ${tag}`);
  }
}

module.exports = { MAX_MESSAGE, NotPlain, encode, decode };
