import type { Command } from "commander";
import { RunQueue, type RunStatus } from "../scale/queue.ts";
import { SUBMIT_DEFAULTS, submitRun, waitForRun } from "../scale/submit.ts";
import { runWorker } from "../scale/worker.ts";
import { hostname } from "node:os";
import { MetricsEndpoint, portNumber } from "./metrics-endpoint.ts";
import { writeRunDocuments } from "../report/run-documents.ts";
import { checkedConfig, loadGraph, parseOverrides, readConfigFile } from "./load-graph.ts";
import { positiveInteger } from "./main.ts";

const REDIS_DEFAULT = process.env.RXSYNTH_REDIS ?? "redis://127.0.0.1:6379";

/** Adds `rxsynth submit`, `rxsynth worker` and `rxsynth status`: one run spread over workers through Redis. */
export function registerScaleCommands(program: Command): void {
  program
    .command("submit")
    .description("register a run with Redis for `rxsynth worker`s to execute (any number, on any machine)")
    .argument("<graph>", "graph file or ready graph name")
    .requiredOption("--run <name>", "the run's name on this Redis")
    .requiredOption("-o, --out <dir>", "output folder every worker reaches (a shared file system across machines)")
    .option("--redis <url>", "Redis URL (RXSYNTH_REDIS)", REDIS_DEFAULT)
    .option("-s, --set <key=value>", "override a graph option (repeatable)", (value: string, all: string[]) => [...all, value], [])
    .option("-c, --config <file>", "graph options from a JSON or YAML file (--set wins)")
    .option("--chunk-size <n>", `source records per work item (default: ${SUBMIT_DEFAULTS.chunkSize}; a generative loop's is one wave)`, positiveInteger)
    .option("--max-queued <n>", "work items fed ahead of the workers", positiveInteger, SUBMIT_DEFAULTS.maxQueued)
    .option("--max-attempts <n>", "tries of a work item before it goes to the dead letters", positiveInteger, SUBMIT_DEFAULTS.maxAttempts)
    .option("--reclaim-seconds <n>", "a work item whose worker is silent this long goes to another one", positiveInteger, SUBMIT_DEFAULTS.reclaimSeconds)
    .option("-b, --budget <n>", "most samples in flight at once per worker", positiveInteger)
    .option("--wait", "return when the run is complete (exit 0) or failed (exit 1)")
    .action(async (file: string, flags: SubmitFlags) => {
      const definition = await loadGraph(file);
      const fromConfig = flags.config ? await readConfigFile(flags.config) : {};
      const overrides = { ...checkedConfig(definition, fromConfig), ...parseOverrides(definition, flags.set) };
      const log = (line: string) => process.stderr.write(`${line}\n`);
      const { spec, created } = await submitRun({
        redis: flags.redis,
        run: flags.run,
        graph: file,
        overrides,
        out: flags.out,
        chunkSize: flags.chunkSize,
        maxQueued: flags.maxQueued,
        maxAttempts: flags.maxAttempts,
        reclaimSeconds: flags.reclaimSeconds,
        budget: flags.budget,
        log,
      });
      log(
        `${created ? "submitted" : "already submitted"}: run ${flags.run} (${definition.name}) into ${spec.out}, chunks of ${spec.chunkSize}; start workers with: rxsynth worker --redis ${flags.redis} --run ${flags.run}`,
      );
      if (!flags.wait) return;
      const final = await waitForRun(flags.redis, flags.run, (status) => log(statusLine(status)));
      if (final.state === "failed") {
        log(`run ${flags.run} failed: ${final.reason ?? "unknown reason"}`);
        process.exitCode = 1;
      }
    });

  program
    .command("worker")
    .description("execute work of a submitted run until it is complete")
    .requiredOption("--run <name>", "the run's name on this Redis")
    .option("--redis <url>", "Redis URL (RXSYNTH_REDIS)", REDIS_DEFAULT)
    .option("--follow", "keep waiting for work after the run is complete")
    .option("--no-cache", "send every LLM request, bypassing the response cache")
    .option("--metrics-port <n>", "serve this worker's Prometheus metrics at http://127.0.0.1:<n>/metrics (0 picks a free port)", portNumber)
    .action(async (flags: WorkerFlags) => {
      const log = (line: string) => process.stderr.write(`${line}\n`);
      const stop = new AbortController();
      const onSignal = () => {
        log("stopping: the work item in hand gets its grace period, then goes back to the queue");
        stop.abort();
      };
      process.once("SIGINT", onSignal);
      process.once("SIGTERM", onSignal);
      const metrics = flags.metricsPort === undefined ? undefined : await MetricsEndpoint.start(flags.metricsPort, { run: flags.run, worker: `${hostname()}-${process.pid}` });
      if (metrics) log(`metrics: ${metrics.url}`);
      const summary = await runWorker({ redis: flags.redis, run: flags.run, follow: flags.follow, signal: stop.signal, log, noCache: !flags.cache, live: metrics?.follow }).finally(
        () => metrics?.close(),
      );
      log(`worker ${summary.worker}: ${summary.chunks} work items (${summary.reclaimed} taken over from lost workers), ${summary.accepted} accepted, ${summary.rejected} rejected; run ${summary.state}`);
      // Each worker leaves the report of the whole run as it stands, the last to finish the complete one.
      if (summary.out && summary.chunks > 0) await writeRunDocuments(summary.out, log);
      if (summary.state === "failed") process.exitCode = 1;
      if (summary.state === "stopped") process.exitCode = 130;
    });

  program
    .command("status")
    .description("totals of a submitted run across its workers")
    .requiredOption("--run <name>", "the run's name on this Redis")
    .option("--redis <url>", "Redis URL (RXSYNTH_REDIS)", REDIS_DEFAULT)
    .option("--json", "print the status as JSON")
    .action(async (flags: { run: string; redis: string; json?: boolean }) => {
      const queue = await RunQueue.connect(flags.redis, flags.run);
      try {
        const status = await queue.status();
        process.stdout.write(flags.json ? `${JSON.stringify(status, null, 2)}\n` : statusReport(status));
      } finally {
        await queue.close();
      }
    });
}

interface SubmitFlags {
  run: string;
  out: string;
  redis: string;
  set: string[];
  config?: string;
  chunkSize?: number;
  maxQueued: number;
  maxAttempts: number;
  reclaimSeconds: number;
  budget?: number;
  wait?: boolean;
}

interface WorkerFlags {
  run: string;
  redis: string;
  follow?: boolean;
  cache: boolean;
  metricsPort?: number;
}

function statusLine(status: RunStatus): string {
  const total = status.spec.sources.every((source) => source.size !== null)
    ? ` of ${Math.ceil(status.spec.sources.reduce((sum, source) => sum + (source.size ?? 0), 0) / status.spec.chunkSize)}`
    : "";
  return `${status.state}: ${status.done}${total} work items done, ${status.pending} in progress, ${status.workers.length} workers, ${status.totals.accepted ?? 0} accepted, ${status.totals.rejected ?? 0} rejected${status.dead > 0 ? `, ${status.dead} dead-lettered` : ""}`;
}

function statusReport(status: RunStatus): string {
  const seconds = Math.max(1, (Date.now() - Date.parse(status.spec.submittedAt)) / 1000);
  const lines = [
    `run: ${status.state}${status.reason ? ` (${status.reason})` : ""}`,
    `graph: ${status.spec.graph}, into ${status.spec.out}`,
    `work items: ${status.fed} fed, ${status.done} done, ${status.pending} in progress, ${status.reclaimed} taken over from lost workers, ${status.dead} dead-lettered`,
    `workers live: ${status.workers.length}${status.workers.length > 0 ? ` (${status.workers.map((worker) => worker.name).join(", ")})` : ""}`,
    `samples: ${status.totals.accepted ?? 0} accepted, ${status.totals.rejected ?? 0} rejected; ${Math.round(((status.totals.accepted ?? 0) + (status.totals.rejected ?? 0)) / seconds)} samples/s since submission`,
  ];
  const llm = Object.entries(status.totals).filter(([key]) => key.startsWith("llm."));
  if (llm.length > 0) lines.push(`llm: ${llm.map(([key, value]) => `${key.slice(4)} ${Number.isInteger(value) ? value : value.toFixed(4)}`).join(", ")}`);
  const operators = new Map<string, Record<string, number>>();
  for (const [key, value] of Object.entries(status.totals)) {
    const match = /^op:(.+):(in|out|rejected)$/.exec(key);
    if (match) operators.set(match[1]!, { ...operators.get(match[1]!), [match[2]!]: value });
  }
  for (const [name, counts] of operators) lines.push(`  ${name}: in ${counts.in ?? 0}, out ${counts.out ?? 0}, rejected ${counts.rejected ?? 0}`);
  // HyperLogLog's standard error at 2^14 registers is 1.04 / 128, about 0.8 %.
  for (const counter of status.distinct) {
    const ratio = counter.total > 0 ? ` of ${counter.total.toLocaleString("en-US")} counted (${(counter.distinct / counter.total).toFixed(3)})` : "";
    lines.push(`${counter.name}: about ${counter.distinct.toLocaleString("en-US")} distinct${ratio}, HyperLogLog ±0.8 %`);
  }
  for (const letter of status.deadLetters) lines.push(`dead letter ${letter.chunk}: ${letter.reason}`);
  return `${lines.join("\n")}\n`;
}


