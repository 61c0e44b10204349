import { rm } from "node:fs/promises";
import { resolve } from "node:path";
import { InvalidArgumentError, type Command } from "commander";
import { ConfigError } from "../errors.ts";
import { buildGraph } from "../graph.ts";
import { readManifest } from "../io/manifest.ts";
import { checkOutputFolder } from "../io/run-files.ts";
import { writeRunDocuments } from "../report/run-documents.ts";
import { run } from "../run/run.ts";
import { CostGate } from "../run/cost-gate.ts";
import { addGraphHelp } from "./graph-help.ts";
import { MetricsEndpoint, portNumber } from "./metrics-endpoint.ts";
import { checkedConfig, loadGraph, parseOverrides, readConfigFile } from "./load-graph.ts";
import { positiveInteger } from "./main.ts";
import { ProgressView, summaryText } from "./progress.ts";
import { BatchBoard, batchLine } from "../llm/batch/index.ts";

interface RunFlags {
  out?: string;
  limit?: number;
  budget?: number;
  set: string[];
  config?: string;
  failFast?: boolean;
  strictInput?: boolean;
  checkpointRows?: number;
  checkpointSeconds?: number;
  quiet?: boolean;
  allowEndpointChange?: boolean;
  cache: boolean;
  maxCost?: number;
  metricsPort?: number;
  batch?: boolean;
  batchQueueTokens?: number;
}

/** Settings a resume needs from the environment; a secret is named, never printed. */
const RESUME_ENVIRONMENT = ["OPENAI_BASE_URL", "RXSYNTH_MODEL", "RXSYNTH_PRICE", "RXSYNTH_FLEET_NAME"] as const;

/** The command that continues this run, with the environment it ran under (the endpoint is its identity). */
export function resumeCommand(missingOut: string | undefined, argv = process.argv.slice(2), env = process.env): string {
  const quote = (word: string) => (/^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", "'\\''")}'`);
  const settings = RESUME_ENVIRONMENT.filter((name) => env[name]).map((name) => `${name}=${quote(env[name]!)}`);
  if (env.OPENAI_API_KEY) settings.push("OPENAI_API_KEY=<your key>");
  const words = ["rxsynth", ...argv, ...(missingOut ? ["--out", missingOut] : [])].map(quote);
  return [...settings, ...words].join(" ");
}

/** The arguments with `--max-cost` raised to a placeholder (or the projection), for the line that says how to go on. */
function withMaxCost(argv: readonly string[], projectedUsd: number | undefined): string[] {
  const next = projectedUsd === undefined ? "<higher>" : String(Math.ceil(projectedUsd * 1.1 * 100) / 100);
  const words: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i]!;
    if (word === "--max-cost") {
      i++;
      continue;
    }
    if (word.startsWith("--max-cost=")) continue;
    words.push(word);
  }
  return [...words, "--max-cost", next];
}

const EXIT_ON_SIGNAL: Record<string, number> = { SIGINT: 130, SIGTERM: 143 };
/** The sources ran out before the graph's goal (e.g. maxRounds before target): not a failure, not done. */
const EXIT_INCOMPLETE = 3;
/** Stopped by `--max-cost` before its spend passed the cap: everything finished is committed. */
const EXIT_MAX_COST = 4;

function dollarAmount(value: string): number {
  const amount = value.replace(/^\$/, "");
  const parsed = /^(\d+(\.\d*)?|\.\d+)$/.test(amount) ? Number(amount) : Number.NaN;
  if (!Number.isFinite(parsed) || parsed <= 0) throw new InvalidArgumentError("expected an amount in US dollars, e.g. 25 or 2.50");
  return parsed;
}

export function registerRunCommand(program: Command): void {
  program
    .command("run")
    .description("run a graph file (TypeScript or JavaScript) into an output folder; rerun the same command to resume")
    .argument("<graph>", "graph file, e.g. graphs/quickstart.ts, or a ready graph's name (`rxsynth graphs`)")
    .option("-o, --out <dir>", "output folder (shards, rejects, manifest)")
    .option("-n, --limit <n>", "stop after this many source records", positiveInteger)
    .option("-b, --budget <n>", "most samples in flight at once (bounds memory)", positiveInteger)
    .option("-s, --set <key=value>", "override a graph option (repeatable)", (value: string, all: string[]) => [...all, value], [])
    .option("-c, --config <file>", "graph options from a JSON or YAML file (--set wins)")
    .option("--fail-fast", "stop the run at the first operator error instead of rejecting the sample")
    .option("--strict-input", "stop the run at the first malformed input record instead of rejecting it")
    .option("--checkpoint-rows <n>", "commit shards and the manifest every n rows", positiveInteger)
    .option("--checkpoint-seconds <n>", "...or every n seconds", positiveInteger)
    .option("-q, --quiet", "no progress, only the summary")
    .option("--allow-endpoint-change", "resume a folder started against another endpoint or model (recorded in the manifest)")
    .option("--no-cache", "send every LLM request, bypassing the response cache (`rxsynth cache info`)")
    .option("--metrics-port <n>", "serve Prometheus metrics at http://127.0.0.1:<n>/metrics while the run goes (0 picks a free port)", portNumber)
    .option("--max-cost <usd>", "stop cleanly before the folder's LLM spend (earlier runs included) would pass this many dollars", dollarAmount)
    .option("--batch", "send the LLM requests through the provider's Batch API at the batch price (answers within 24 h; give --budget several batches' worth, e.g. 5000)")
    .option("--batch-queue-tokens <n>", "with --batch: most tokens in batches not yet ended (the provider's enqueued-token limit for the model)", positiveInteger)
    .action(async (file: string, flags: RunFlags) => {
      const definition = await loadGraph(file);
      const fromConfig = flags.config ? await readConfigFile(flags.config) : {};
      const overrides = { ...checkedConfig(definition, fromConfig), ...parseOverrides(definition, flags.set) };
      const out = resolve(flags.out ?? `out/${definition.name}`);
      const view = new ProgressView(definition.name, process.stderr);
      const log = (line: string) => (flags.quiet ? undefined : view.log(line));
      // Building may already create files in the folder (the response cache): a start that fails leaves
      // a folder that did not exist as it was, so the corrected command is a fresh start, not a resume.
      const folderExisted = await checkOutputFolder(out);
      const undoFailedStart = async () => {
        if (folderExisted || (await readManifest(out).catch(() => undefined)) !== undefined) return;
        // Cleanup never replaces the error the user must see: a file still being written while the folder
        // goes (ENOTEMPTY) gets one more try, then the folder is left.
        await rm(out, { recursive: true, force: true })
          .catch(() => new Promise((resolve) => setTimeout(resolve, 50)).then(() => rm(out, { recursive: true, force: true })))
          .catch(() => undefined);
      };
      const board = flags.batch ? new BatchBoard() : undefined;
      const batchLines = () => (board ? [batchLine(board.figures())] : []);
      const batch = board ? { board, options: flags.batchQueueTokens ? { maxEnqueuedTokens: flags.batchQueueTokens } : {} } : undefined;
      // Before the graph is built: a port that is taken fails the start with nothing to undo.
      const metrics = flags.metricsPort === undefined ? undefined : await MetricsEndpoint.start(flags.metricsPort, { graph: definition.name });
      if (metrics) view.log(`metrics: ${metrics.url}`);
      if (flags.maxCost !== undefined && flags.batch) {
        await metrics?.close();
        throw new ConfigError("--max-cost does not apply to --batch yet (a batch's cost is known only when it completes): drop one of them");
      }
      const costGate = flags.maxCost === undefined ? undefined : new CostGate(flags.maxCost);
      const graph = await buildGraph(definition, overrides, { log, out, cache: flags.cache, batch, costGate }).catch(async (error: unknown) => {
        await metrics?.close();
        await undoFailedStart();
        throw error;
      });

      const stop = new AbortController();
      let signalName: string | undefined;
      const onSignal = (name: NodeJS.Signals) => {
        if (signalName) {
          // A second signal: the user does not want to wait for the grace period.
          process.exit(EXIT_ON_SIGNAL[name] ?? 1);
        }
        signalName = name;
        view.log(`${name}: stopping (no new samples; in-flight work gets a few seconds; press again to quit at once)`);
        stop.abort();
      };
      process.on("SIGINT", onSignal);
      process.on("SIGTERM", onSignal);
      try {
        const summary = await run(graph, {
          out,
          limit: flags.limit,
          budget: flags.budget,
          failFast: flags.failFast,
          strictInput: flags.strictInput,
          checkpointRows: flags.checkpointRows,
          checkpointSeconds: flags.checkpointSeconds,
          signal: stop.signal,
          allowIdentityChange: flags.allowEndpointChange,
          costGate,
          live: metrics?.follow,
          log,
          onProgress: flags.quiet ? undefined : (progress) => view.update(progress, batchLines()),
        }).catch(async (error: unknown) => {
          await undoFailedStart();
          throw error;
        });
        view.stop();
        view.log(summaryText(summary, batchLines()));
        // A rerun of a finished folder changes no file, the report included; one that committed rewrites them.
        if (summary.committed) await writeRunDocuments(out, (line) => view.log(line));
        if (summary.status === "stopped" && summary.stopReason === "max_cost") {
          view.log(
            `stopped at --max-cost $${flags.maxCost}: $${summary.cost.spentUsd.toFixed(4)} spent${summary.cost.projectedUsd === undefined ? "" : `, $${summary.cost.projectedUsd.toFixed(2)} projected at completion`}; everything committed is kept. Continue with a higher cap: ${resumeCommand(flags.out ? undefined : out, withMaxCost(process.argv.slice(2), summary.cost.projectedUsd))}`,
          );
          process.exitCode = EXIT_MAX_COST;
        } else if (summary.status === "stopped") {
          view.log(`stopped by ${signalName ?? "request"}; everything committed is kept. Resume with: ${resumeCommand(flags.out ? undefined : out)}`);
          process.exitCode = EXIT_ON_SIGNAL[signalName ?? ""] ?? 1;
        }
        if (summary.status === "incomplete") process.exitCode = EXIT_INCOMPLETE;
      } finally {
        process.off("SIGINT", onSignal);
        process.off("SIGTERM", onSignal);
        await metrics?.close();
      }
    });
  addGraphHelp(program);
}
