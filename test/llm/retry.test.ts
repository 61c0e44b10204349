import { describe, expect, it } from "vitest";
import { AdaptiveConcurrency, TokenBucket, backoffMs, retryAfterMs } from "../../src/llm/index.ts";
import { scrubSecrets, seededRandom } from "../../src/llm/retry.ts";

describe("retryAfterMs", () => {
  it("prefers retry-after-ms, reads Retry-After seconds of any length, and HTTP dates", () => {
    expect(retryAfterMs(new Headers({ "retry-after-ms": "250", "retry-after": "9" }))).toBe(250);
    expect(retryAfterMs(new Headers({ "retry-after": "120" }))).toBe(120_000);
    expect(retryAfterMs(new Headers({ "retry-after": "3600" }))).toBe(3_600_000);
    const now = Date.parse("2025-01-01T00:00:00Z");
    expect(retryAfterMs(new Headers({ "retry-after": "Wed, 01 Jan 2025 00:01:30 GMT" }), now)).toBe(90_000);
    expect(retryAfterMs(new Headers({ "retry-after": "soon" }))).toBeUndefined();
    expect(retryAfterMs(new Headers())).toBeUndefined();
  });
});

describe("backoffMs", () => {
  it("draws full jitter under an exponential ceiling capped at the maximum", () => {
    const random = seededRandom(1);
    const draws = Array.from({ length: 2_000 }, (_, i) => backoffMs((i % 8) + 1, 100, 3_000, random));
    draws.forEach((d, i) => {
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThanOrEqual(Math.min(3_000, 100 * 2 ** (i % 8)));
    });
    const late = draws.filter((_, i) => i % 8 === 7);
    expect(Math.max(...late)).toBeGreaterThan(2_500);
    expect(Math.min(...late)).toBeLessThan(500);
  });
});

describe("scrubSecrets", () => {
  it("removes the configured key, key-like strings and bearer tokens", () => {
    const text = "key my-secret-value, other sk-abcdefghijklmnopqrstuvwxyz, header Authorization: Bearer abc.def";
    const clean = scrubSecrets(text, ["my-secret-value"]);
    expect(clean).not.toContain("my-secret-value");
    expect(clean).not.toContain("defghijklmnop");
    expect(clean).not.toContain("abc.def");
  });
});

describe("TokenBucket", () => {
  it("lets a burst through at once and paces the rest at the limit's rate", async () => {
    const bucket = new TokenBucket(60_000, 10); // 1 per ms, capacity 10
    const started = performance.now();
    await Promise.all(Array.from({ length: 60 }, () => bucket.take(1)));
    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(45);
    expect(elapsed).toBeLessThan(500);
  });

  it("lowers its level to what a server reports, allowing for what was sent since", () => {
    let now = 0;
    const bucket = new TokenBucket(600, 1_000, () => now); // capacity 10, 0.01 per ms
    bucket.charge(2);
    const mark = bucket.consumed;
    bucket.charge(3);
    bucket.correct(4, mark, 0); // the server had 4 left after our first 2; 3 more went out since
    expect(bucket.available()).toBeCloseTo(1);
    now = 100;
    expect(bucket.available()).toBeCloseTo(2);
  });
});

describe("AdaptiveConcurrency", () => {
  it("halves on a 429 once per round and adds about one slot per round of successes", () => {
    const limit = new AdaptiveConcurrency(16);
    const permits = Array.from({ length: 16 }, () => ({ epoch: 0 }));
    limit.release(permits[0]!, "overloaded");
    expect(limit.limit).toBe(8);
    limit.release(permits[1]!, "overloaded"); // started before the cut: no second cut
    expect(limit.limit).toBe(8);
    for (let i = 0; i < 8; i++) limit.release({ epoch: 1 }, "ok");
    expect(limit.limit).toBe(8);
    for (let i = 0; i < 10; i++) limit.release({ epoch: 1 }, "ok");
    expect(limit.limit).toBe(10);
  });
});
