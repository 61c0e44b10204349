import { mkdtemp, rm } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import parsePrometheusTextFormat, { type ParsedFamily, type ParsedSample } from "parse-prometheus-text-format";
import { afterEach, describe, expect, it } from "vitest";
import { HISTOGRAM_BOUNDS, Metrics, countReason, defineFilter, drop, run, type BuiltGraph, type RunProgress } from "../../src/index.ts";
import { memorySource } from "../../src/io/memory-source.ts";
import { createLlm, type Llm } from "../../src/llm/index.ts";
import { LLM_LATENCY_HISTOGRAM } from "../../src/llm/metrics.ts";
import { serveMetrics, type MetricsServer } from "../../src/report/prometheus.ts";
import { startSimulator, type Simulator } from "../../src/sim/index.ts";
import { llmMap } from "../../operators/generate/llm-map.ts";

const closing: Array<{ close(): Promise<void> }> = [];
const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(closing.splice(0).map((c) => c.close()));
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

async function serve(feed: () => RunProgress, labels?: Record<string, string>): Promise<MetricsServer> {
  const server = await serveMetrics({ port: 0, feed, ...(labels ? { labels } : {}) });
  closing.push(server);
  return server;
}

/** A run's progress as RunOptions.live would give it, from a Metrics the test drives. */
function progressOf(metrics: Metrics, extra: Partial<RunProgress> = {}): RunProgress {
  return { ...metrics.snapshot(), inFlight: 0, budget: 16, expected: undefined, ...extra };
}

async function scrapeText(url: string): Promise<string> {
  const response = await fetch(url);
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
  return response.text();
}

/**
 * Parsed families. The parser reads a histogram's buckets, sum and count only when the histogram has no
 * labels of its own (it then drops its labels too), so tests that read histograms serve without labels.
 */
async function scrape(url: string): Promise<ParsedFamily[]> {
  return parsePrometheusTextFormat(await scrapeText(url));
}

function family(families: readonly ParsedFamily[], name: string): ParsedFamily | undefined {
  return families.find((f) => f.name === name);
}

/** The samples of a family whose labels include `labels`. */
function samples(families: readonly ParsedFamily[], name: string, labels: Record<string, string> = {}): ParsedSample[] {
  return (family(families, name)?.metrics ?? []).filter((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
}

/** The one sample's value, or undefined when the series is absent. */
function value(families: readonly ParsedFamily[], name: string, labels: Record<string, string> = {}): number | undefined {
  const found = samples(families, name, labels);
  expect(found.length, `${name} ${JSON.stringify(labels)}`).toBeLessThanOrEqual(1);
  return found[0] ? Number(found[0].value) : undefined;
}

/** Every rxsynth counter's series (histogram buckets included) as "name{labels}" -> value, to compare two scrapes. */
function counters(families: readonly ParsedFamily[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const f of families.filter((f) => f.name.startsWith("rxsynth_"))) {
    if (f.type === "COUNTER") for (const m of f.metrics) out.set(`${f.name}${JSON.stringify(m.labels ?? {})}`, Number(m.value));
    if (f.type === "HISTOGRAM") {
      for (const m of f.metrics) {
        for (const [le, n] of Object.entries(m.buckets ?? {})) out.set(`${f.name}_bucket{le=${le}}`, Number(n));
        out.set(`${f.name}_count`, Number(m.count));
      }
    }
  }
  return out;
}

function expectNoCounterWentDown(before: Map<string, number>, after: Map<string, number>): void {
  for (const [series, was] of before) {
    expect(after.has(series), `${series} disappeared`).toBe(true);
    expect(after.get(series)!, series).toBeGreaterThanOrEqual(was);
  }
}

/** A run's figures as a worker's chunk leaves them: `n` in and out of "gen", rejects of "check" by reason. */
function chunk(figures: { gen: number; checked: number; reasons: Record<string, number>; requests: number; latencies: number[] }): Metrics {
  const metrics = new Metrics();
  const gen = metrics.counters("gen");
  gen.in = gen.out = figures.gen;
  const check = metrics.counters("check");
  check.in = figures.checked;
  for (const [reason, n] of Object.entries(figures.reasons)) for (let i = 0; i < n; i++) countReason(check, reason);
  check.out = figures.checked - check.rejected;
  metrics.source.pulled = figures.gen;
  metrics.add("llm.requests", figures.requests);
  for (const seconds of figures.latencies) metrics.observe(LLM_LATENCY_HISTOGRAM, seconds);
  return metrics;
}

describe("serveMetrics", () => {
  it("serves the feed's figures at /metrics in the Prometheus text format, with the given labels on every series", async () => {
    const metrics = chunk({ gen: 7, checked: 7, reasons: { too_short: 2, refusal: 1 }, requests: 9, latencies: [0.2] });
    metrics.counters("gen").inFlight = 3;
    metrics.add("llm.retries", 2);
    metrics.add("llm.rate_limited", 1);
    metrics.add("llm.cache_hits", 4);
    metrics.add("llm.failures", 1);
    metrics.add("llm.prompt_tokens", 1200);
    metrics.add("llm.completion_tokens", 340);
    metrics.add("llm.cost_usd", 0.0125);
    metrics.source.committed = 4;
    metrics.source.rejected = 3;
    const lastCheckpointAt = Date.now() - 5000;
    const feed = () => progressOf(metrics, { inFlight: 5, budget: 64, expected: 100, lastCheckpointAt, cost: { spentUsd: 0.5, projectedUsd: 2.25, maxUsd: 3 } });
    const server = await serve(feed, { graph: "quickstart", worker: "w1" });
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const text = await scrapeText(server.url);
    const scraped = parsePrometheusTextFormat(text);

    expect(value(scraped, "rxsynth_operator_in_total", { operator: "gen" })).toBe(7);
    expect(value(scraped, "rxsynth_operator_out_total", { operator: "check" })).toBe(4);
    expect(value(scraped, "rxsynth_operator_rejected_total", { operator: "check", reason: "too_short" })).toBe(2);
    expect(value(scraped, "rxsynth_operator_rejected_total", { operator: "check", reason: "refusal" })).toBe(1);
    expect(value(scraped, "rxsynth_operator_in_flight", { operator: "gen" })).toBe(3);
    expect(value(scraped, "rxsynth_in_flight")).toBe(5);
    expect(value(scraped, "rxsynth_budget")).toBe(64);
    expect(value(scraped, "rxsynth_source_expected")).toBe(100);
    expect(value(scraped, "rxsynth_source_pulled_total")).toBe(7);
    expect(value(scraped, "rxsynth_source_committed_total")).toBe(4);
    expect(value(scraped, "rxsynth_source_rejected_total")).toBe(3);
    expect(value(scraped, "rxsynth_llm_requests_total")).toBe(9);
    expect(value(scraped, "rxsynth_llm_retries_total")).toBe(2);
    expect(value(scraped, "rxsynth_llm_rate_limited_total")).toBe(1);
    expect(value(scraped, "rxsynth_llm_cache_hits_total")).toBe(4);
    expect(value(scraped, "rxsynth_llm_failures_total")).toBe(1);
    expect(value(scraped, "rxsynth_llm_prompt_tokens_total")).toBe(1200);
    expect(value(scraped, "rxsynth_llm_completion_tokens_total")).toBe(340);
    expect(value(scraped, "rxsynth_llm_cost_usd_total")).toBeCloseTo(0.0125, 12);
    expect(value(scraped, "rxsynth_cost_spent_usd")).toBe(0.5);
    expect(value(scraped, "rxsynth_cost_projected_usd")).toBe(2.25);
    expect(value(scraped, "rxsynth_cost_max_usd")).toBe(3);
    const age = value(scraped, "rxsynth_checkpoint_age_seconds")!;
    expect(age).toBeGreaterThanOrEqual(5);
    expect(age).toBeLessThan(10);
    expect(family(scraped, "rxsynth_llm_requests_total")!.type).toBe("COUNTER");
    expect(family(scraped, "rxsynth_budget")!.type).toBe("GAUGE");
    expect(family(scraped, "rxsynth_llm_request_duration_seconds")!.type).toBe("HISTOGRAM");
    // The process's own figures come along, under their usual names.
    expect(value(scraped, "process_cpu_user_seconds_total")).toBeGreaterThan(0);
    expect(family(scraped, "nodejs_heap_size_used_bytes")).toBeDefined();
    for (const f of scraped.filter((f) => f.type !== "HISTOGRAM")) {
      for (const m of f.metrics) expect(m.labels, f.name).toMatchObject({ graph: "quickstart", worker: "w1" });
    }
    // Histograms read from the text itself (see scrape).
    const histogramLines = text.split("\n").filter((line) => line.startsWith("rxsynth_llm_request_duration_seconds_"));
    expect(histogramLines.length).toBe(HISTOGRAM_BOUNDS.length + 3);
    for (const line of histogramLines) expect(line).toMatch(/graph="quickstart",worker="w1"\}/);
  });

  it("reads the feed at every scrape", async () => {
    const metrics = chunk({ gen: 1, checked: 0, reasons: {}, requests: 1, latencies: [] });
    let inFlight = 2;
    const server = await serve(() => progressOf(metrics, { inFlight }));
    expect(value(await scrape(server.url), "rxsynth_in_flight")).toBe(2);
    inFlight = 9;
    metrics.counters("gen").in = 6;
    metrics.add("llm.requests", 4);
    const scraped = await scrape(server.url);
    expect(value(scraped, "rxsynth_in_flight")).toBe(9);
    expect(value(scraped, "rxsynth_operator_in_total", { operator: "gen" })).toBe(6);
    expect(value(scraped, "rxsynth_llm_requests_total")).toBe(5);
  });

  it("leaves out checkpoint age and projected cost until they are known, rather than a false 0", async () => {
    const metrics = new Metrics();
    let extra: Partial<RunProgress> = { cost: { spentUsd: 0, projectedUsd: undefined, maxUsd: undefined } };
    const server = await serve(() => progressOf(metrics, extra));
    let scraped = await scrape(server.url);
    for (const name of ["rxsynth_checkpoint_age_seconds", "rxsynth_cost_projected_usd", "rxsynth_cost_max_usd", "rxsynth_source_expected"]) {
      expect(samples(scraped, name), name).toHaveLength(0);
    }
    expect(value(scraped, "rxsynth_cost_spent_usd")).toBe(0);
    extra = { lastCheckpointAt: Date.now(), cost: { spentUsd: 0.1, projectedUsd: 0.4, maxUsd: undefined } };
    scraped = await scrape(server.url);
    expect(value(scraped, "rxsynth_checkpoint_age_seconds")).toBeLessThan(5);
    expect(value(scraped, "rxsynth_cost_projected_usd")).toBe(0.4);
    expect(samples(scraped, "rxsynth_cost_max_usd")).toHaveLength(0);
  });

  it("renders the latency histogram with cumulative buckets, +Inf and _count equal to the observations", async () => {
    // On a bound (inclusive), between bounds, and above the last bound.
    const latencies = [0.001, 0.0011, 0.1, 0.37, 0.37, 4.2, 299.9, 301, 1000];
    const metrics = chunk({ gen: 0, checked: 0, reasons: {}, requests: latencies.length, latencies });
    const snapshot = metrics.snapshot().histograms![LLM_LATENCY_HISTOGRAM]!;
    expect(snapshot.count).toBe(latencies.length);
    expect(snapshot.counts.reduce((a, b) => a + b, 0)).toBe(latencies.length);
    const server = await serve(() => progressOf(metrics));
    const [histogram] = samples(await scrape(server.url), "rxsynth_llm_request_duration_seconds");
    expect(Number(histogram!.count)).toBe(latencies.length);
    expect(Number(histogram!.sum)).toBeCloseTo(latencies.reduce((a, b) => a + b, 0), 9);
    const buckets = histogram!.buckets!;
    expect(Object.keys(buckets)).toHaveLength(HISTOGRAM_BOUNDS.length + 1);
    for (const bound of HISTOGRAM_BOUNDS) {
      expect(Number(buckets[String(bound)]), `le=${bound}`).toBe(latencies.filter((s) => s <= bound).length);
    }
    expect(Number(buckets["+Inf"])).toBe(latencies.length);
  });

  it("keeps every counter monotonic when the feed starts again from 0, as a worker's next chunk does", async () => {
    let metrics = chunk({ gen: 10, checked: 10, reasons: { too_short: 4 }, requests: 10, latencies: [0.01, 0.2] });
    const server = await serve(() => progressOf(metrics));
    const first = counters(await scrape(server.url));
    expect(first.get('rxsynth_operator_in_total{"operator":"gen"}')).toBe(10);

    // The next chunk has pulled more than the last already, but fewer requests: still a new run, from 0.
    metrics = chunk({ gen: 12, checked: 3, reasons: {}, requests: 2, latencies: [0.01] });
    const second = counters(await scrape(server.url));
    expectNoCounterWentDown(first, second);
    expect(second.get('rxsynth_operator_in_total{"operator":"gen"}')).toBe(22);
    expect(second.get("rxsynth_llm_requests_total{}")).toBe(12);
    expect(second.get('rxsynth_operator_rejected_total{"operator":"check","reason":"too_short"}')).toBe(4);

    // A reason the new chunk meets only now counts from the new chunk's 0, not from the old chunk's 4.
    const check = metrics.counters("check");
    countReason(check, "too_short");
    metrics.counters("gen").in = 13;
    const third = counters(await scrape(server.url));
    expectNoCounterWentDown(second, third);
    expect(third.get('rxsynth_operator_rejected_total{"operator":"check","reason":"too_short"}')).toBe(5);
    expect(third.get('rxsynth_operator_in_total{"operator":"gen"}')).toBe(23);
    expect(third.get("rxsynth_llm_requests_total{}")).toBe(12);
    expect(third.get("rxsynth_llm_request_duration_seconds_count")).toBe(3);
    expect(third.get("rxsynth_llm_request_duration_seconds_bucket{le=0.01}")).toBe(2);
    expect(third.get("rxsynth_llm_request_duration_seconds_bucket{le=+Inf}")).toBe(3);
  });

  it("picks a free port for 0, and two servers in one process keep their own figures", async () => {
    const a = await serve(() => progressOf(chunk({ gen: 1, checked: 0, reasons: {}, requests: 1, latencies: [] })), { worker: "a" });
    const b = await serve(() => progressOf(chunk({ gen: 2, checked: 0, reasons: {}, requests: 5, latencies: [] })), { worker: "b" });
    expect(a.url).not.toBe(b.url);
    const [fromA, fromB] = await Promise.all([scrape(a.url), scrape(b.url)]);
    expect(value(fromA, "rxsynth_llm_requests_total", { worker: "a" })).toBe(1);
    expect(value(fromB, "rxsynth_llm_requests_total", { worker: "b" })).toBe(5);
    expect(family(fromA, "process_resident_memory_bytes")).toBeDefined();
    expect(family(fromB, "process_resident_memory_bytes")).toBeDefined();
  });

  it("answers 404 off /metrics, and says so when the port is taken", async () => {
    const server = await serve(() => progressOf(new Metrics()));
    const base = server.url.replace(/\/metrics$/, "");
    for (const path of ["/", "/metric", "/metrics/x"]) expect((await fetch(base + path)).status, path).toBe(404);
    const port = Number(new URL(server.url).port);
    await expect(serveMetrics({ port, feed: () => progressOf(new Metrics()) })).rejects.toThrow(/metrics port \d+ on 127\.0\.0\.1 is in use/);
  });

  it("closes at once, ending a connection whose request is still arriving", async () => {
    const server = await serveMetrics({ port: 0, feed: () => progressOf(new Metrics()) });
    await scrape(server.url);
    // Half a request: not idle, so a plain server.close() would wait for it (up to the headers timeout).
    const socket = connect(Number(new URL(server.url).port), "127.0.0.1");
    await new Promise((resolve) => socket.once("connect", resolve));
    socket.write("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    const ended = new Promise((resolve) => socket.once("close", resolve));
    await new Promise((resolve) => setTimeout(resolve, 20));
    const started = performance.now();
    await server.close();
    await ended;
    expect(performance.now() - started).toBeLessThan(1000);
    await expect(fetch(server.url)).rejects.toThrow();
  });
});

describe("/metrics during a run", () => {
  let sim: Simulator | undefined;
  let llm: Llm | undefined;
  afterEach(async () => {
    await llm?.close();
    await sim?.close();
  });

  it("is scraped while a run against the simulator goes: counters never go down, and the last scrape equals the summary", async () => {
    // Slow enough answers that several scrapes land mid-run; some 429s so retries and rate limits count.
    sim = await startSimulator({ latencyMs: 15, seed: 13, faults: { "429": 0.15 }, faultRetryAfterMs: 5 });
    llm = createLlm({ baseURL: sim.url, model: "sim-1", concurrency: 4, backoffBaseMs: 2, backoffMaxMs: 10, cache: false });
    const out = await mkdtemp(join(tmpdir(), "rxsynth-prometheus-"));
    dirs.push(out);
    const graph: BuiltGraph = {
      name: "prometheus-run",
      sources: [memorySource("topics", Array.from({ length: 40 }, (_, n) => ({ n, text: `Topic number ${n}` })))],
      operators: [
        llmMap({ llm, name: "describe", prompt: (s) => [{ role: "user", content: `Describe ${String(s.data.text)}` }], write: "description" }),
        defineFilter({ name: "every_third", test: (s) => ((s.data.n as number) % 3 === 0 ? drop("third") : true) }),
      ],
      budget: 8,
      output: { shardRows: 10 },
    };
    let live: (() => RunProgress) | undefined;
    // Before the run starts there is nothing to read: an empty run's figures.
    const server = await serve(() => live?.() ?? progressOf(new Metrics()));
    const running = run(graph, { out, checkpointSeconds: 0.05, live: (progress) => (live = progress) });

    const scrapes: Array<Map<string, number>> = [];
    let done = false;
    void running.finally(() => (done = true)).catch(() => undefined);
    while (!done) {
      scrapes.push(counters(await scrape(server.url)));
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const summary = await running;
    const last = await scrape(server.url);
    scrapes.push(counters(last));
    const midRun = scrapes.filter((s) => (s.get("rxsynth_llm_requests_total{}") ?? 0) > 0);
    expect(midRun.length).toBeGreaterThan(3);
    for (let i = 1; i < scrapes.length; i++) expectNoCounterWentDown(scrapes[i - 1]!, scrapes[i]!);

    for (const op of summary.metrics.operators) {
      const operator = { operator: op.name };
      expect(value(last, "rxsynth_operator_in_total", operator), op.name).toBe(op.in);
      expect(value(last, "rxsynth_operator_out_total", operator), op.name).toBe(op.out);
      const rejected = samples(last, "rxsynth_operator_rejected_total", operator).reduce((sum, m) => sum + Number(m.value), 0);
      expect(rejected, op.name).toBe(op.rejected);
      for (const [reason, n] of Object.entries(op.reasons)) expect(value(last, "rxsynth_operator_rejected_total", { ...operator, reason })).toBe(n);
    }
    expect(value(last, "rxsynth_operator_rejected_total", { operator: "every_third", reason: "third" })).toBe(14);
    const totals = summary.metrics.totals;
    expect(value(last, "rxsynth_llm_requests_total")).toBe(totals["llm.requests"]);
    expect(value(last, "rxsynth_llm_retries_total")).toBe(totals["llm.retries"] ?? 0);
    expect(value(last, "rxsynth_llm_rate_limited_total")).toBe(totals["llm.rate_limited"] ?? 0);
    expect(value(last, "rxsynth_llm_prompt_tokens_total")).toBe(totals["llm.prompt_tokens"]);
    expect(value(last, "rxsynth_llm_completion_tokens_total")).toBe(totals["llm.completion_tokens"]);
    expect(value(last, "rxsynth_source_committed_total")).toBe(summary.accepted);
    expect(value(last, "rxsynth_source_rejected_total")).toBe(summary.rejected);
    // What the simulator saw, counted independently of the client.
    const stats = sim.stats();
    expect(totals["llm.requests"]).toBe(stats.requests);
    expect(value(last, "rxsynth_llm_rate_limited_total")).toBe(stats.rateLimited);
    expect(stats.rateLimited).toBeGreaterThan(0);
    // One latency observation per answered request, each at least the simulator's added latency.
    const [latency] = samples(last, "rxsynth_llm_request_duration_seconds");
    expect(Number(latency!.count)).toBe(stats.completed);
    expect(Number(latency!.buckets!["0.01"])).toBe(0);
    expect(Number(latency!.sum)).toBeGreaterThanOrEqual(stats.completed * 0.015);
    expect(value(last, "rxsynth_checkpoint_age_seconds")).toBeGreaterThanOrEqual(0);
    expect(value(last, "rxsynth_in_flight")).toBe(0);
    expect(value(last, "rxsynth_budget")).toBe(8);
  });
});
