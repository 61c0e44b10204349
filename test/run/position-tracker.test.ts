import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { PositionTracker } from "../../src/run/position-tracker.ts";

/** The obvious model: a set of finished positions. */
function modelProgress(finished: ReadonlySet<number>, start: number) {
  let watermark = start;
  while (finished.has(watermark)) watermark++;
  return { watermark, done: [...finished].filter((position) => position > watermark).sort((a, b) => a - b) };
}

describe("PositionTracker", () => {
  it("agrees with a set of finished positions, whatever order records finish in and however far apart", () => {
    fc.assert(
      fc.property(
        fc.nat({ max: 50 }),
        // Spans past the initial 4096-bit window, so the ring is widened while positions are held in it.
        fc.array(fc.nat({ max: 20_000 }), { maxLength: 400 }),
        fc.array(fc.nat({ max: 20_000 }), { maxLength: 50 }),
        (start, order, probes) => {
          const tracker = new PositionTracker({ watermark: start, done: [] });
          const finished = new Set<number>(Array.from({ length: start }, (_, i) => i));
          for (const offset of order) {
            tracker.finish(offset);
            finished.add(offset);
            const expected = modelProgress(finished, 0);
            expect(tracker.watermark).toBe(expected.watermark);
          }
          const expected = modelProgress(finished, 0);
          expect(tracker.progress()).toEqual(expected);
          for (const probe of probes) expect(tracker.isDone(probe)).toBe(finished.has(probe));
          // What a manifest carries restores the same tracker.
          const restored = new PositionTracker(tracker.progress());
          expect(restored.progress()).toEqual(expected);
          for (const probe of probes) expect(restored.isDone(probe)).toBe(finished.has(probe));
        },
      ),
      { seed: 20261202, numRuns: 200 },
    );
  });

  it("keeps a record stuck a million positions back in one bit each, not a set entry", () => {
    const tracker = new PositionTracker();
    for (let position = 1; position <= 1_000_000; position++) tracker.finish(position);
    expect(tracker.watermark).toBe(0);
    expect(tracker.isDone(0)).toBe(false);
    expect(tracker.isDone(999_999)).toBe(true);
    tracker.finish(0);
    expect(tracker.watermark).toBe(1_000_001);
    expect(tracker.progress()).toEqual({ watermark: 1_000_001, done: [] });
  });
});
