/** What one concurrency level of a sweep measured, as the knee needs it. */
export interface LevelPoint {
  readonly concurrency: number;
  /** Answered requests per second (successes only). */
  readonly throughput: number;
  /** Median and 95th-percentile latency of the answered requests, in seconds (the knee reads only their ratios). */
  readonly latencyP50: number;
  readonly latencyP95: number;
}

export interface KneeOptions {
  /**
   * A higher level moves the knee only when its power beats the best so far by more than this fraction:
   * a few percent is within the noise of a level measured for seconds, and the lower level then serves the
   * same throughput with less queueing. Default 0.05.
   */
  readonly margin?: number;
  /** The recommended level keeps its p95 within this factor of the lowest level's p95. Default 2. */
  readonly latencyFactor?: number;
}

export const KNEE_DEFAULTS = { margin: 0.05, latencyFactor: 2 } as const;

export interface Knee {
  /** The level with the highest power (throughput / p50 latency): where latency starts to rise faster than throughput. */
  readonly knee: number;
  /** False when the knee is the highest level measured: power was still rising, so the sweep stopped short of the server's limit. */
  readonly reached: boolean;
  /** The concurrency to use: the highest level up to the knee whose p95 is within `latencyFactor` of the unloaded p95. */
  readonly recommended: number;
  /**
   * Little's law: the highest throughput times the unloaded median latency, the number of requests the
   * server can serve at once without queueing (a figure between the levels, not one of them).
   */
  readonly littleConcurrency: number;
  /** Power of each level, in the order given. */
  readonly power: readonly number[];
}

/**
 * The knee of a throughput/latency curve, by Kleinrock's power, throughput / latency. Below a server's
 * capacity throughput grows with concurrency and latency stays flat, so power rises; past it throughput
 * stays flat and latency grows with the queue, so power falls. Power rises from one level to the next
 * exactly when throughput grows by a larger factor than latency does, so its maximum is the level after
 * which latency rises faster than throughput. Only ratios enter, so the knee does not move when every
 * latency (or every throughput) is multiplied by the same constant.
 *
 * Levels that answered nothing (throughput 0, or no latency) are left out; at least one must remain.
 */
export function findKnee(levels: readonly LevelPoint[], options: KneeOptions = {}): Knee {
  const margin = options.margin ?? KNEE_DEFAULTS.margin;
  const latencyFactor = options.latencyFactor ?? KNEE_DEFAULTS.latencyFactor;
  const power = levels.map((level) => (level.throughput > 0 && level.latencyP50 > 0 ? level.throughput / level.latencyP50 : Number.NaN));
  const usable = levels
    .map((level, index) => ({ level, power: power[index]! }))
    .filter((entry) => Number.isFinite(entry.power) && Number.isFinite(entry.level.latencyP95))
    .sort((a, b) => a.level.concurrency - b.level.concurrency);
  if (usable.length === 0) throw new RangeError("findKnee: no level answered any request");

  let best = usable[0]!;
  for (const entry of usable.slice(1)) if (entry.power > best.power * (1 + margin)) best = entry;

  const base = usable[0]!.level;
  let recommended = base.concurrency;
  for (const { level } of usable) {
    if (level.concurrency > best.level.concurrency) break;
    if (level.latencyP95 <= base.latencyP95 * latencyFactor) recommended = level.concurrency;
  }
  const topThroughput = Math.max(...usable.map((entry) => entry.level.throughput));
  return {
    knee: best.level.concurrency,
    reached: best !== usable[usable.length - 1],
    recommended,
    littleConcurrency: topThroughput * base.latencyP50,
    power,
  };
}
