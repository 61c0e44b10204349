import { existsSync } from "node:fs";
import { createServer } from "node:net";
import { readFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSimulator, type Simulator } from "../../src/sim/index.ts";
import { skipRedis } from "../support/redis-server.ts";
import { scaleCluster, type CliExit } from "../support/scale-cluster.ts";
import type { ChildProcess } from "node:child_process";

const cluster = scaleCluster("rxsynth-metrics-port-");
const { cli, dir } = cluster;

type Series = Map<string, number>;

/** Every sample of a scrape as `name{labels}` -> value; histograms by their raw `_bucket` lines (the parser drops labelled histograms). */
function seriesOf(text: string): Series {
  const series: Series = new Map();
  for (const family of parsePrometheusTextFormat(text)) {
    if (family.type === "HISTOGRAM") continue;
    for (const sample of family.metrics) series.set(`${family.name}${JSON.stringify(sample.labels ?? {})}`, Number(sample.value));
  }
  for (const match of text.matchAll(/^(rxsynth_\w+_bucket\{[^}]*\}) (\S+)$/gm)) series.set(match[1]!, Number(match[2]));
  return series;
}

const counterKeys = (series: Series) => [...series.keys()].filter((key) => /^rxsynth_\w+(_total|_bucket)/.test(key));

/** Waits for the `metrics: URL` line on the child's stderr. */
function metricsUrl(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let seen = "";
    const onData = (chunk: Buffer) => {
      seen += chunk.toString();
      const match = /^metrics: (http:\/\/127\.0\.0\.1:\d+\/metrics)$/m.exec(seen);
      if (match) {
        child.stderr!.off("data", onData);
        resolve(match[1]!);
      }
    };
    child.stderr!.on("data", onData);
    child.once("exit", () => reject(new Error(`exited before printing its metrics URL:\n${seen}`)));
  });
}

/** Scrapes every 100 ms until `until` settles; checks that no counter or bucket ever goes down. */
async function scrapeWhile(url: string, until: Promise<unknown>): Promise<Series[]> {
  const scrapes: Series[] = [];
  let done = false;
  void until.finally(() => (done = true));
  while (!done) {
    try {
      const response = await fetch(url);
      expect(response.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
      const series = seriesOf(await response.text());
      const before = scrapes.at(-1);
      if (before) for (const key of counterKeys(before)) expect(series.get(key) ?? 0, key).toBeGreaterThanOrEqual(before.get(key)!);
      scrapes.push(series);
    } catch (error) {
      if (!done && !(error instanceof TypeError)) throw error; // a refused connection once the run has closed it
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return scrapes;
}

const operatorCounts = async (manifestFile: string) =>
  (JSON.parse(await readFile(manifestFile, "utf8")) as { operatorCounts: Record<string, { in: number; out: number; rejected: number }> }).operatorCounts;

const portRefused = (url: string) =>
  fetch(url).then(
    () => false,
    () => true,
  );

describe("rxsynth run --metrics-port", () => {
  let sim: Simulator;
  beforeAll(async () => {
    // Slow enough that the run lasts a few seconds of scrapes.
    sim = await startSimulator({ latencyMs: 150, maxConcurrency: 4 });
  });
  afterAll(async () => {
    await sim.close();
  });

  it("serves counters that only grow while the run goes, labelled with the graph, and closes the port when it ends", async () => {
    const out = join(dir, "run");
    const { child, exit } = cli(["run", "distill-rationales", "--out", out, "--metrics-port", "0", "-q"], {
      OPENAI_BASE_URL: sim.url,
      RXSYNTH_MODEL: "rxsynth-sim",
      RXSYNTH_CACHE_DIR: join(dir, "cache-run"),
    });
    const url = await metricsUrl(child);
    expect((await fetch(url.replace("/metrics", "/other"))).status).toBe(404);
    const scrapes = await scrapeWhile(url, exit);
    const { code, stderr } = await exit;
    expect(code, stderr).toBe(0);
    expect(stderr.split("\n").filter((line) => line.startsWith("metrics: "))).toHaveLength(1);
    expect(scrapes.length).toBeGreaterThanOrEqual(5);
    const last = scrapes.at(-1)!;
    expect(counterKeys(last).every((key) => key.includes('"graph":"distill-rationales"') || key.includes('graph="distill-rationales"'))).toBe(true);
    // Scrapes landed mid-run, and none says more than the run committed in the end.
    const teacherIn = (series: Series) => series.get('rxsynth_operator_in_total{"operator":"teacher","graph":"distill-rationales"}') ?? 0;
    const final = await operatorCounts(join(out, "manifest.json"));
    expect(scrapes.some((series) => teacherIn(series) > 0 && teacherIn(series) < final.teacher!.in)).toBe(true);
    expect(teacherIn(last)).toBeLessThanOrEqual(final.teacher!.in);
    expect([...last.keys()].some((key) => key.startsWith("rxsynth_llm_request_duration_seconds_bucket{"))).toBe(true);
    expect(await portRefused(url)).toBe(true);
  }, 120_000);

  // distill-rationales starts the built-in simulator when it is built: a port refused after that hung the run.
  it.each(["template-records", "distill-rationales"])("refuses a port already taken, in one line, and leaves no folder (%s)", async (graph) => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve));
    const port = (taken.address() as { port: number }).port;
    const out = join(dir, `taken-${graph}`);
    try {
      const { code, stderr } = await cli(["run", graph, "--set", "count=5", "--out", out, "--metrics-port", String(port), "-q"]).exit;
      expect(code).toBe(1);
      expect(stderr.trim().split("\n").filter((line) => line.startsWith("rxsynth:"))).toEqual([
        `rxsynth: config error: metrics port ${port} on 127.0.0.1 is in use: choose another, or 0 for a free one`,
      ]);
      expect(existsSync(out)).toBe(false);
    } finally {
      taken.close();
    }
  }, 60_000);
});

describe.skipIf(skipRedis)("rxsynth worker --metrics-port", () => {
  it("adds up every chunk the worker ran: at the end its counters equal the chunks' manifests summed", async () => {
    const url = () => cluster.redis.url;
    const out = join(dir, "scaled");
    const submit = await cli(["submit", "curate", "--redis", url(), "--run", "metrics-test", "--out", out, "--chunk-size", "16"]).exit;
    expect(submit.code, submit.stderr).toBe(0);
    // --follow: the worker stays up once the run is complete, so its final figures can be read.
    const { child, exit } = cli(["worker", "--redis", url(), "--run", "metrics-test", "--follow", "--metrics-port", "0"]);
    const metrics = await metricsUrlOf(child, exit);
    const scraping = scrapeWhile(metrics, exit);
    const deadline = Date.now() + 60_000;
    let chunks: string[] = [];
    for (; Date.now() < deadline; await new Promise((resolve) => setTimeout(resolve, 200))) {
      chunks = await readdir(join(out, "chunks")).catch(() => []);
      const manifests = await Promise.all(chunks.map((chunk) => readFile(join(out, "chunks", chunk, "manifest.json"), "utf8").then((text) => JSON.parse(text) as { complete: boolean }, () => undefined)));
      if (chunks.length >= 4 && manifests.every((manifest) => manifest?.complete)) break;
    }
    expect(chunks.length).toBeGreaterThanOrEqual(4);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const final = seriesOf(await (await fetch(metrics)).text());
    child.kill("SIGTERM");
    const scrapes = await scraping;
    expect(scrapes.length).toBeGreaterThan(2);

    const summed = new Map<string, number>();
    for (const chunk of chunks) {
      for (const [name, counts] of Object.entries(await operatorCounts(join(out, "chunks", chunk, "manifest.json")))) {
        summed.set(name, (summed.get(name) ?? 0) + counts.in);
      }
    }
    expect(summed.size).toBeGreaterThan(3);
    for (const [name, total] of summed) {
      const key = [...final.keys()].find((series) => series.startsWith(`rxsynth_operator_in_total{"operator":"${name}"`));
      expect(key && final.get(key), name).toBe(total);
    }
    expect([...final.keys()].every((key) => !key.startsWith("rxsynth_operator_in_total") || key.includes('"run":"metrics-test"'))).toBe(true);
  }, 120_000);
});

function metricsUrlOf(child: ChildProcess, exit: Promise<CliExit>): Promise<string> {
  return Promise.race([metricsUrl(child), exit.then((result) => Promise.reject(new Error(`worker exited: ${result.stderr}`)))]);
}
