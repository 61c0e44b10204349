import { describe, expect, it } from "vitest";
import { InputError, SourceIds, sourceSampleId } from "../../src/index.ts";

describe("sourceSampleId", () => {
  it("namespaces a record's own id, or its position, by the source", () => {
    expect(sourceSampleId("seeds", 4, "task-7")).toBe("seeds:task-7");
    expect(sourceSampleId("seeds", 4, 7)).toBe("seeds:7");
    expect(sourceSampleId("seeds", 4)).toBe("seeds:4");
    expect(sourceSampleId("seeds", 4, "")).toBe("seeds:4");
    expect(sourceSampleId("seeds", 4, Number.NaN)).toBe("seeds:4");
    expect(sourceSampleId("a", 0, 1)).not.toBe(sourceSampleId("b", 0, 1));
  });
});

describe("SourceIds", () => {
  const repeatOf = (check: () => void): InputError => {
    try {
      check();
    } catch (error) {
      return error as InputError;
    }
    throw new Error("no error");
  };

  it("names the source, the id and both positions when a record id repeats within one source", () => {
    const ids = new SourceIds("shards", { locate: (position) => `part-${position < 3 ? "a" : "b"}.jsonl` });
    ids.check(0, 1);
    ids.check(1, 2);
    ids.check(2, 3);
    const error = repeatOf(() => ids.check(3, "2"));
    expect(error).toBeInstanceOf(InputError);
    expect(error.message).toContain('record id "2" appears twice in source "shards", at position 1 (part-a.jsonl) and position 3 (part-b.jsonl)');
    expect(error.field).toBe("id");
  });

  it("passes the same record read again at its position, as a resume replays it", () => {
    const ids = new SourceIds("s");
    for (let position = 0; position < 5; position++) ids.check(position, `r${position}`);
    expect(() => ids.check(3, "r3")).not.toThrow();
    expect(ids.size).toBe(5);
  });

  it("holds nothing for a source without ids", () => {
    const ids = new SourceIds("s");
    for (let position = 0; position < 10_000; position++) ids.check(position);
    expect(ids.size).toBe(0);
    expect(ids.memoryBytes()).toBe(0);
  });

  it("catches a record id equal to the position-based id of a record without one", () => {
    const before = new SourceIds("s");
    before.check(0);
    before.check(1);
    expect(repeatOf(() => before.check(2, 1)).message).toContain("at position 1 and position 2");
    const after = new SourceIds("s");
    after.check(0, "5");
    expect(repeatOf(() => after.check(5)).message).toContain('"5"');
  });

  it("grows past many ids without a false repeat, and survives serialize and deserialize", () => {
    const ids = new SourceIds("big");
    for (let position = 0; position < 100_000; position++) ids.check(position, `id-${position}`);
    expect(ids.size).toBe(100_000);
    const restored = SourceIds.deserialize("big", ids.serialize());
    expect(restored.size).toBe(100_000);
    expect(() => restored.check(99_999, "id-99999")).not.toThrow();
    expect(repeatOf(() => restored.check(100_000, "id-42")).message).toContain("at position 42 and position 100000");
  });

  it("restores a table saved in the first format (hashes and positions in two blocks), as folders checkpointed before keep it", () => {
    const ids = new SourceIds("old");
    for (let position = 0; position < 2000; position++) ids.check(position, `id-${position}`);
    const current = ids.serialize();
    const view = new DataView(current.buffer, current.byteOffset);
    const slots = view.getUint32(4, true);
    const first = new Uint8Array(16 + slots * 16);
    const out = new DataView(first.buffer);
    out.setUint32(0, slots, true);
    out.setUint32(4, view.getUint32(8, true), true);
    out.setFloat64(8, view.getFloat64(16, true), true);
    for (let slot = 0; slot < slots; slot++) {
      const at = 24 + slot * 16;
      out.setFloat64(16 + slot * 8, view.getFloat64(at + 8, true), true);
      out.setUint32(16 + slots * 8 + slot * 8, view.getUint32(at, true), true);
      out.setUint32(16 + slots * 8 + slot * 8 + 4, view.getUint32(at + 4, true), true);
    }
    const restored = SourceIds.deserialize("old", first);
    expect(restored.size).toBe(2000);
    expect(() => restored.check(1999, "id-1999")).not.toThrow();
    expect(repeatOf(() => restored.check(2000, "id-1234")).message).toContain("at position 1234 and position 2000");
    expect(() => SourceIds.deserialize("old", first.subarray(0, first.byteLength - 8))).toThrow(/truncated/);
  });

  it("sized once by reserve: the table holds every reserved id without growing", () => {
    const ids = new SourceIds("sized");
    ids.reserve(100_000);
    ids.check(0, "first");
    const bytes = ids.memoryBytes();
    for (let position = 1; position < 100_000; position++) ids.check(position, `id-${position}`);
    expect(ids.memoryBytes()).toBe(bytes);
    expect(bytes).toBeLessThanOrEqual(2 * 16 * (100_000 / 0.75));
  });
});
