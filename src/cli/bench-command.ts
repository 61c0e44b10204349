import { writeFile } from "node:fs/promises";
import { resolve } from "node:path";
import { InvalidArgumentError, type Command } from "commander";
import { graphBenchTable, sweepTable } from "../bench/bench-table.ts";
import { SWEEP_DEFAULTS, sweepEndpoint } from "../bench/endpoint-sweep.ts";
import { benchGraph } from "../bench/graph-bench.ts";
import { renderSweepPage } from "../bench/sweep-html.ts";
import { ConfigError } from "../errors.ts";
import { checkedConfig, loadGraph, parseOverrides, readConfigFile } from "./load-graph.ts";
import { positiveInteger } from "./main.ts";

interface BenchFlags {
  baseUrl?: string;
  model?: string;
  apiKey?: string;
  levels?: number[];
  requests?: number;
  seconds?: number;
  limit?: number;
  budget?: number;
  set: string[];
  config?: string;
  json?: string;
  html?: string;
  quiet?: boolean;
}

function positiveSeconds(value: string): number {
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed <= 0) throw new InvalidArgumentError("expected a positive number of seconds");
  return parsed;
}

function levelList(value: string): number[] {
  const levels = value.split(",").map((part) => Number(part.trim()));
  if (levels.length === 0 || levels.some((level) => !Number.isInteger(level) || level < 1)) {
    throw new InvalidArgumentError("expected positive integers separated by commas, e.g. 1,4,16,64,256");
  }
  return levels;
}

/** Flags that belong to the other mode: said at once, not silently ignored. */
function refuse(flags: BenchFlags, names: ReadonlyArray<[keyof BenchFlags, string]>, mode: string): void {
  const given = names.filter(([key]) => {
    const value = flags[key];
    return Array.isArray(value) ? value.length > 0 : value !== undefined;
  });
  if (given.length > 0) throw new ConfigError(`${given.map(([, flag]) => flag).join(", ")} ${given.length > 1 ? "do" : "does"} not apply to ${mode}`);
}

/** Ctrl-C or SIGTERM ends a bench cleanly (a graph's temporary folder is removed); a second one quits at once. */
async function untilSignal<T>(work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const stop = new AbortController();
  const onSignal = (name: NodeJS.Signals) => {
    if (stop.signal.aborted) process.exit(name === "SIGINT" ? 130 : 143);
    process.exitCode = name === "SIGINT" ? 130 : 143;
    console.error(`${name}: stopping the bench (press again to quit at once)`);
    stop.abort(new ConfigError(`bench stopped by ${name}`));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    return await work(stop.signal);
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

async function writeJson(file: string, value: unknown): Promise<void> {
  await writeFile(resolve(file), `${JSON.stringify(value, null, 2)}\n`);
  console.error(`json: ${resolve(file)}`);
}

async function benchEndpoint(flags: BenchFlags): Promise<void> {
  refuse(flags, [["limit", "--limit"], ["budget", "--budget"], ["set", "--set"], ["config", "--config"]], "bench endpoint");
  const baseURL = flags.baseUrl ?? process.env.OPENAI_BASE_URL;
  if (!baseURL) throw new ConfigError("bench endpoint needs --base-url URL (or OPENAI_BASE_URL): an OpenAI-compatible endpoint, usually ending in /v1");
  const result = await untilSignal((signal) => sweepEndpoint({
    signal,
    baseURL,
    model: flags.model,
    apiKey: flags.apiKey,
    levels: flags.levels,
    requests: flags.requests,
    seconds: flags.seconds,
    onLevel: flags.quiet
      ? undefined
      : (level) =>
          console.error(
            `concurrency ${level.concurrency}: ${level.requestsPerS.toFixed(1)} req/s, p50 ${level.latencyMs.p50.toFixed(0)} ms, ${level.errors} errors (${level.seconds.toFixed(1)} s)`,
          ),
  }));
  console.log(sweepTable(result));
  if (flags.json) await writeJson(flags.json, { kind: "endpoint", ...result });
  if (flags.html) {
    await writeFile(resolve(flags.html), await renderSweepPage(result));
    console.error(`html: ${resolve(flags.html)}`);
  }
}

async function benchGraphFile(file: string, flags: BenchFlags): Promise<void> {
  refuse(flags, [["baseUrl", "--base-url"], ["model", "--model"], ["apiKey", "--api-key"], ["levels", "--levels"], ["requests", "--requests"], ["html", "--html"]], "a graph's bench");
  if (flags.limit !== undefined && flags.seconds !== undefined) throw new ConfigError("bench takes --limit N or --seconds S, not both");
  const definition = await loadGraph(file);
  const fromConfig = flags.config ? await readConfigFile(flags.config) : {};
  const overrides = { ...checkedConfig(definition, fromConfig), ...parseOverrides(definition, flags.set) };
  const result = await untilSignal((signal) =>
    benchGraph(definition, overrides, {
      limit: flags.limit,
      seconds: flags.seconds,
      budget: flags.budget,
      signal,
      log: flags.quiet ? undefined : (line) => console.error(line),
    }),
  );
  console.log(graphBenchTable(result));
  if (flags.json) await writeJson(flags.json, { kind: "graph", ...result });
}

export function registerBenchCommand(program: Command): void {
  program
    .command("bench")
    .description("measure an endpoint (`bench endpoint --base-url URL`: a concurrency sweep, its knee and the concurrency to use) or a graph (`bench <graph>`: samples/s, time per operator, the bottleneck, LLM share, memory)")
    .argument("<target>", '"endpoint", or a graph file or ready graph\'s name (run into a temporary folder, removed afterwards)')
    .option("--base-url <url>", "endpoint: the OpenAI-compatible base URL, e.g. http://localhost:8000/v1 (default OPENAI_BASE_URL)")
    .option("--model <name>", "endpoint: the model (default RXSYNTH_MODEL, else the first the server lists)")
    .option("--api-key <key>", "endpoint: the API key (default OPENAI_API_KEY)")
    .option("--levels <list>", `endpoint: concurrency levels (default ${SWEEP_DEFAULTS.levels.join(",")})`, levelList)
    .option("--requests <n>", `endpoint: at least this many requests per level, and one per worker (default ${SWEEP_DEFAULTS.requests})`, positiveInteger)
    .option("--seconds <s>", `endpoint: at least this long per level (default ${SWEEP_DEFAULTS.seconds}); graph: stop the run after this long`, positiveSeconds)
    .option("-n, --limit <n>", "graph: stop after this many source records", positiveInteger)
    .option("-b, --budget <n>", "graph: most samples in flight at once", positiveInteger)
    .option("-s, --set <key=value>", "graph: override a graph option (repeatable)", (value: string, all: string[]) => [...all, value], [])
    .option("-c, --config <file>", "graph: options from a JSON or YAML file (--set wins)")
    .option("--json <file>", "also write the figures as JSON")
    .option("--html <file>", "endpoint: also write a page with the throughput and latency curve")
    .option("-q, --quiet", "only the table")
    .action(async (target: string, flags: BenchFlags) => {
      if (target === "endpoint") await benchEndpoint(flags);
      else await benchGraphFile(target, flags);
    });
}
