/**
 * Spend at completion, extrapolated from the share of the work done: finished source records of a known
 * total, or accepted rows of the graph's own goal (a `target`). Undefined while nothing says how far along it is.
 */
export function projectedCost(spentUsd: number, done: { readonly finished: number; readonly total: number } | undefined): number | undefined {
  if (!done || done.total <= 0 || done.finished <= 0) return undefined;
  return spentUsd * Math.max(1, done.total / done.finished);
}
