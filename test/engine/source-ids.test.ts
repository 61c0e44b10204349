import fc from "fast-check";
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

  /** The rule as a plain Map of every id seen: what the hashed table must decide, record by record. */
  function expectedOutcome(records: readonly { position: number; id?: unknown }[]): { size: number; repeat?: string } {
    const seen = new Map<string, number>();
    let firstOwn: number | undefined;
    for (const record of records) {
      const own =
        typeof record.id === "string" && record.id.length > 0 ? record.id : typeof record.id === "number" && Number.isFinite(record.id) ? String(record.id) : undefined;
      if (own === undefined && firstOwn === undefined) continue;
      if (own !== undefined) {
        firstOwn ??= record.position;
        // Positions before the first own id took their position as id, whichever later record names one.
        if (/^(0|[1-9][0-9]*)$/.test(own) && Number(own) < firstOwn) return { size: seen.size, repeat: `record id "${own}" appears twice in source "s", at position ${own} and position ${record.position}` };
      }
      const id = own ?? String(record.position);
      const earlier = seen.get(id);
      if (earlier === undefined) seen.set(id, record.position);
      else if (earlier !== record.position)
        return { size: seen.size, repeat: `record id "${id}" appears twice in source "s", at position ${Math.min(earlier, record.position)} and position ${Math.max(earlier, record.position)}` };
    }
    return { size: seen.size };
  }

  it("decides in batches of any split exactly as record by record: the first repeat, with both positions, or none (seeded property)", () => {
    const idOf = fc.oneof(
      fc.constant(undefined),
      fc.constantFrom("", "a", "b", "c", "d", "e"),
      fc.nat({ max: 40 }),
      fc.nat({ max: 40 }).map(String),
      fc.integer({ min: 100, max: 100_000 }).map((n) => `unique-${n}`),
    );
    fc.assert(
      fc.property(
        fc.array(idOf, { maxLength: 120 }),
        fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 10 }),
        fc.nat({ max: 60 }),
        (ids, batchSizes, replayFrom) => {
          const records = ids.map((id, position) => ({ position, id }));
          // A resume reads a tail again at the same positions: the same records, which pass.
          const fed = [...records, ...records.slice(Math.min(replayFrom, records.length))];
          const expected = expectedOutcome(fed);
          const table = new SourceIds("s");
          let repeat: string | undefined;
          try {
            for (let start = 0, k = 0; start < fed.length; k++) {
              const size = batchSizes[k % batchSizes.length]!;
              const batch = fed.slice(start, start + size + 3);
              table.checkRecords(batch, Math.min(size, batch.length));
              start += size;
            }
          } catch (error) {
            expect(error).toBeInstanceOf(InputError);
            repeat = (error as Error).message;
          }
          if (expected.repeat === undefined) {
            expect(repeat).toBeUndefined();
            expect(table.size).toBe(expected.size);
          } else {
            expect(repeat).toContain(expected.repeat);
          }
        },
      ),
      { seed: 902, numRuns: 400 },
    );
  });

  it("holds at most maxIds ids: records read again take no room, the first new id past them stops the check", () => {
    const table = new SourceIds("s");
    const records = [0, 1, 2, 3, 4].map((position) => ({ position, id: `r${position}` }));
    expect(table.checkRecords(records.slice(0, 3), 3, 3)).toBe(true);
    // A resume replays the three: they pass and take no room.
    expect(table.checkRecords(records.slice(0, 3), 3, 3)).toBe(true);
    expect(table.checkRecords(records.slice(3), 2, 3)).toBe(false);
    expect(table.size).toBe(3);
    // Records without an id before the first with one add nothing, so they never use up the room.
    const late = new SourceIds("s");
    const blanks = Array.from({ length: 10 }, (_, position) => ({ position }));
    expect(late.checkRecords([...blanks, { position: 10, id: "x" }, { position: 11, id: "x" }].slice(0, 11), 11, 2)).toBe(true);
    expect(() => late.checkRecords([{ position: 11, id: "x" }], 1, 2)).toThrow(/"x" appears twice in source "s", at position 10 and position 11/);
  });

  it("catches any later record id naming a position before the first record with an id, not only the first one's", () => {
    const table = new SourceIds("s");
    const records = [...Array.from({ length: 10 }, (_, position) => ({ position })), { position: 10, id: "k10" }, { position: 11, id: "3" }];
    expect(() => table.checkRecords(records)).toThrow(/"3" appears twice in source "s", at position 3 and position 11/);
  });

  it("checks only the first `end` records of a batch, as the runner's --limit reads no further", () => {
    const table = new SourceIds("s");
    const batch = [0, 1, 2, 3].map((position) => ({ position, id: position < 3 ? `r${position}` : "r0" }));
    expect(() => table.checkRecords(batch, 3)).not.toThrow();
    expect(table.size).toBe(3);
    expect(() => table.checkRecords(batch, 4)).toThrow(/"r0" appears twice in source "s", at position 0 and position 3/);
  });
});
