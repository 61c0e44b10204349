import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LevelResult, SweepResult } from "../../src/bench/endpoint-sweep.ts";
import { findKnee } from "../../src/bench/knee.ts";
import { renderSweepPage } from "../../src/bench/sweep-html.ts";
import { launchChromium, openReport } from "../report/report-browser.ts";

/** A sweep of a 16-slot server at 200 ms, as the simulator answers it. */
function sweep(model: string): SweepResult {
  const levels: LevelResult[] = [1, 4, 16, 64].map((concurrency) => {
    const latency = 200 * Math.max(1, concurrency / 16);
    const spread = { p50: latency, p95: latency * 1.1, p99: latency * 1.2, mean: latency };
    return {
      concurrency,
      requests: 40,
      errors: 0,
      errorKinds: {},
      seconds: 2,
      requestsPerS: Math.min(concurrency, 16) / 0.2,
      outputTokensPerS: (Math.min(concurrency, 16) / 0.2) * 70,
      latencyMs: spread,
      ttftMs: spread,
      clientCpu: 0.2,
    };
  });
  const knee = findKnee(levels.map((l) => ({ concurrency: l.concurrency, throughput: l.requestsPerS, latencyP50: l.latencyMs.p50 / 1000, latencyP95: l.latencyMs.p95 / 1000 })));
  return {
    baseURL: "http://127.0.0.1:8000/v1",
    model,
    client: "rxsynth createLlm",
    promptMix: [],
    settings: { requests: 32, seconds: 2, levels: [1, 4, 16, 64] },
    levels,
    knee,
    startedAt: "2026-12-03T16:00:00.000Z",
    elapsedS: 12,
  };
}

let browser: Browser;
let dir: string;
beforeAll(async () => {
  browser = await launchChromium();
  dir = await mkdtemp(join(tmpdir(), "sweep-html-"));
});
afterAll(async () => {
  await browser?.close();
  await rm(dir, { recursive: true, force: true });
});

describe("renderSweepPage", () => {
  it("draws the throughput and latency curve with the knee marked, offline, whatever the model is called", async () => {
    const model = "evil</script><script>window.hacked=1</script>";
    const file = join(dir, "sweep.html");
    await writeFile(file, await renderSweepPage(sweep(model)));
    const opened = await openReport(browser, file);
    try {
      expect(opened.errors).toEqual([]);
      expect(opened.requests).toEqual([]);
      const drawn = await opened.page.evaluate(() => {
        const lib = (window as unknown as { echarts: { getInstanceByDom(el: Element): { getOption(): { series: Array<{ name: string; data: number[]; markLine?: { data: Array<{ xAxis: string }> } }> } } | undefined } }).echarts;
        const option = lib.getInstanceByDom(document.getElementById("curve")!)!.getOption();
        return {
          hacked: (window as unknown as { hacked?: number }).hacked,
          title: document.querySelector("h1")!.textContent,
          series: option.series.map((s) => [s.name, s.data.length]),
          knee: option.series[0]!.markLine?.data[0]?.xAxis,
          rows: document.querySelectorAll("tbody tr").length,
        };
      });
      expect(drawn.hacked).toBeUndefined();
      expect(drawn.title).toContain(model);
      expect(drawn.series).toEqual([
        ["requests/s", 4],
        ["p50 latency", 4],
        ["p95 latency", 4],
        ["p50 time to first token", 4],
      ]);
      expect(drawn.knee).toBe("16");
      expect(drawn.rows).toBe(4);
    } finally {
      await opened.close();
    }
  }, 30_000);
});
