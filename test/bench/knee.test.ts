import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { findKnee, type LevelPoint } from "../../src/bench/knee.ts";
import { percentile, spread } from "../../src/bench/percentile.ts";

/** A closed-loop server with `cap` slots and a fixed service time: what the simulator plays. */
function idealCurve(levels: readonly number[], cap: number, serviceS: number): LevelPoint[] {
  return levels.map((concurrency) => {
    const latency = serviceS * Math.max(1, concurrency / cap);
    return { concurrency, throughput: Math.min(concurrency, cap) / serviceS, latencyP50: latency, latencyP95: latency * 1.02 };
  });
}

const LEVELS = [1, 4, 16, 64, 256];

describe("findKnee", () => {
  it("puts the knee at the server's capacity when the capacity is one of the levels", () => {
    const knee = findKnee(idealCurve(LEVELS, 64, 0.2));
    expect(knee.knee).toBe(64);
    expect(knee.reached).toBe(true);
    expect(knee.recommended).toBe(64);
    expect(knee.littleConcurrency).toBeCloseTo(64, 6);
  });

  it("says the knee was not reached when power still rises at the highest level", () => {
    const knee = findKnee(idealCurve([1, 4, 16], 64, 0.2));
    expect(knee).toMatchObject({ knee: 16, reached: false, recommended: 16 });
  });

  it("recommends a lower level than the knee when latency at the knee is beyond the factor", () => {
    // Throughput keeps rising to 16, but latency doubles and more on the way (a batching server).
    const levels: LevelPoint[] = [
      { concurrency: 1, throughput: 1, latencyP50: 1, latencyP95: 1 },
      { concurrency: 4, throughput: 3.6, latencyP50: 1.1, latencyP95: 1.3 },
      { concurrency: 16, throughput: 12, latencyP50: 1.33, latencyP95: 2.5 },
      { concurrency: 64, throughput: 14, latencyP50: 4.6, latencyP95: 6 },
    ];
    const knee = findKnee(levels);
    expect(knee.knee).toBe(16);
    expect(knee.recommended).toBe(4);
  });

  it("keeps the lower level when the higher one gains less power than the margin", () => {
    const levels: LevelPoint[] = [
      { concurrency: 8, throughput: 40, latencyP50: 0.2, latencyP95: 0.2 },
      { concurrency: 16, throughput: 42, latencyP50: 0.2, latencyP95: 0.25 },
    ];
    expect(findKnee(levels).knee).toBe(8);
    expect(findKnee(levels, { margin: 0 }).knee).toBe(16);
  });

  it("leaves out levels that answered nothing and refuses a sweep with no answers", () => {
    const levels = [...idealCurve([1, 4, 16], 4, 0.05), { concurrency: 64, throughput: 0, latencyP50: Number.NaN, latencyP95: Number.NaN }];
    expect(findKnee(levels).knee).toBe(4);
    expect(() => findKnee([{ concurrency: 1, throughput: 0, latencyP50: Number.NaN, latencyP95: Number.NaN }])).toThrow(/no level answered/);
  });

  const curve = fc
    .record({
      levels: fc.uniqueArray(fc.integer({ min: 1, max: 1024 }), { minLength: 1, maxLength: 8 }),
      throughput: fc.array(fc.double({ min: 0.01, max: 1e4, noNaN: true }), { minLength: 8, maxLength: 8 }),
      latency: fc.array(fc.double({ min: 1e-3, max: 100, noNaN: true }), { minLength: 8, maxLength: 8 }),
      tail: fc.array(fc.double({ min: 1, max: 5, noNaN: true }), { minLength: 8, maxLength: 8 }),
    })
    .map(({ levels, throughput, latency, tail }) =>
      levels.map((concurrency, i) => ({ concurrency, throughput: throughput[i]!, latencyP50: latency[i]!, latencyP95: latency[i]! * tail[i]! })),
    );
  // Powers of two: multiplying by them is exact in floating point, so a tie stays a tie.
  const factor = fc.integer({ min: -20, max: 20 }).map((e) => 2 ** e);

  it("does not move the knee or the recommendation when every latency is scaled by one constant", () => {
    fc.assert(
      fc.property(curve, factor, (levels, k) => {
        const scaled = levels.map((l) => ({ ...l, latencyP50: l.latencyP50 * k, latencyP95: l.latencyP95 * k }));
        const [a, b] = [findKnee(levels), findKnee(scaled)];
        expect([b.knee, b.recommended, b.reached]).toEqual([a.knee, a.recommended, a.reached]);
      }),
      { seed: 14, numRuns: 500 },
    );
  });

  it("does not move the knee or the recommendation when every throughput is scaled by one constant", () => {
    fc.assert(
      fc.property(curve, factor, (levels, k) => {
        const scaled = levels.map((l) => ({ ...l, throughput: l.throughput * k }));
        const [a, b] = [findKnee(levels), findKnee(scaled)];
        expect([b.knee, b.recommended]).toEqual([a.knee, a.recommended]);
        expect(b.littleConcurrency).toBeCloseTo(a.littleConcurrency * k, 6);
      }),
      { seed: 15, numRuns: 500 },
    );
  });

  it("does not depend on the order the levels are given in, and picks a level that was measured", () => {
    fc.assert(
      fc.property(curve, (levels) => {
        const knee = findKnee(levels);
        const reversed = findKnee([...levels].reverse());
        expect([reversed.knee, reversed.recommended]).toEqual([knee.knee, knee.recommended]);
        const measured = levels.map((l) => l.concurrency);
        expect(measured).toContain(knee.knee);
        expect(knee.recommended).toBeLessThanOrEqual(knee.knee);
        expect(knee.reached).toBe(knee.knee !== Math.max(...measured));
      }),
      { seed: 16, numRuns: 500 },
    );
  });

  it("finds the knee within the square root of the level spacing of an ideal server's capacity", () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 8 }), fc.integer({ min: 2, max: 500 }), fc.double({ min: 0.001, max: 10, noNaN: true }), (ratio, cap, service) => {
        const levels = Array.from({ length: 7 }, (_, i) => ratio ** i).filter((c) => c <= 4096);
        fc.pre(cap * ratio <= levels[levels.length - 1]!);
        const knee = findKnee(idealCurve(levels, cap, service), { margin: 0 });
        expect(knee.reached).toBe(true);
        expect(knee.knee / cap).toBeGreaterThanOrEqual(1 / Math.sqrt(ratio) - 1e-9);
        expect(knee.knee / cap).toBeLessThanOrEqual(Math.sqrt(ratio) + 1e-9);
        expect(knee.littleConcurrency).toBeGreaterThanOrEqual(Math.min(cap, levels[levels.length - 1]!) * (1 - 1e-9));
      }),
      { seed: 17, numRuns: 300 },
    );
  });
});

describe("percentile", () => {
  it("is the nearest rank: an observed value, the slowest for a small set's p99", () => {
    const values = Array.from({ length: 20 }, (_, i) => i + 1);
    expect(percentile(values, 0.5)).toBe(10);
    expect(percentile(values, 0.95)).toBe(19);
    expect(percentile(values, 0.99)).toBe(20);
    expect(spread([3, 1, 2])).toEqual({ p50: 2, p95: 3, p99: 3, mean: 2 });
    expect(percentile([], 0.5)).toBeNaN();
  });
});
