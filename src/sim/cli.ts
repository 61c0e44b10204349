import { Option, type Command } from "commander";
import { ConfigError } from "../errors.ts";
import { SIM_PROFILES, type ReasoningPlacement, type SimProfileName } from "./profiles.ts";
import { startSimulator, type FaultRates, type SimulatorOptions } from "./server.ts";

function number(flag: string, min: number) {
  return (value: string): number => {
    const parsed = Number(value);
    if (!Number.isFinite(parsed) || parsed < min) throw new ConfigError(`${flag} expects a number >= ${min}, got "${value}"`);
    return parsed;
  };
}

function rate(flag: string) {
  return (value: string): number => {
    const parsed = Number(value);
    if (!Number.isFinite(parsed) || parsed < 0 || parsed > 1) throw new ConfigError(`${flag} expects a rate in [0, 1], got "${value}"`);
    return parsed;
  };
}

/** Parses "429=0.1,500=0.05,reset=0.02" into fault rates. */
export function parseFaults(text: string): FaultRates {
  const rates: Record<string, number> = {};
  for (const part of text.split(",").map((p) => p.trim()).filter(Boolean)) {
    const [kind, value] = part.split("=");
    const rate = Number(value);
    if (!kind || value === undefined || !Number.isFinite(rate)) {
      throw new ConfigError(`--faults expects kind=rate pairs like "429=0.1,reset=0.02", got "${part}"`);
    }
    rates[kind.trim()] = rate;
  }
  return rates;
}

interface SimFlags {
  port: number;
  host: string;
  latencyMs?: number;
  ttftMs?: number;
  tokensPerS?: number;
  maxConcurrency?: number;
  maxQueue?: number;
  rpm?: number;
  tpm?: number;
  burstMs?: number;
  failRate?: number;
  faults?: FaultRates;
  faultRetryAfterMs?: number;
  seed?: number;
  apiKey?: string;
  model?: string[];
  profile?: SimProfileName;
  reasoning?: ReasoningPlacement;
  ignoreJsonSchema?: boolean;
  batchCompletionMs?: number;
  batchFailureRate?: number;
  batchExpireMs?: number;
}

/** Adds `rxsynth sim`: the OpenAI-compatible simulator as a standalone server, until Ctrl-C. */
export function registerSimCommand(program: Command): void {
  program
    .command("sim")
    .description("serve an OpenAI-compatible chat-completions simulator (deterministic answers, latency, limits, faults) and its Batch API")
    .option("--port <n>", "port (0 picks a free one)", number("--port", 0), 8000)
    .option("--host <host>", "address to listen on", "127.0.0.1")
    .option("--latency-ms <ms>", "fixed latency of every request", number("--latency-ms", 0))
    .option("--ttft-ms <ms>", "time to first token, after the fixed latency", number("--ttft-ms", 0))
    .option("--tokens-per-s <n>", "generation speed per choice (default: instant)", number("--tokens-per-s", 0.001))
    .option("--max-concurrency <n>", "requests served at once; more wait in a queue", number("--max-concurrency", 1))
    .option("--max-queue <n>", "requests that may wait for a slot before 429 (0: 429 at once)", number("--max-queue", 0))
    .option("--rpm <n>", "requests per minute (429 + Retry-After beyond)", number("--rpm", 1))
    .option("--tpm <n>", "tokens per minute: prompt + n * max_tokens", number("--tpm", 1))
    .option("--burst-ms <ms>", "RPM/TPM bucket size in ms of the limit", number("--burst-ms", 1))
    .option("--fail-rate <r>", "rate of 500 errors (shorthand for --faults 500=r)", number("--fail-rate", 0))
    .option("--faults <list>", "fault rates: 429,500,503,reset per request; length,refusal,malformed,empty,unfinished per choice", parseFaults)
    .option("--fault-retry-after-ms <ms>", "Retry-After of an injected 429", number("--fault-retry-after-ms", 0))
    .option("--seed <n>", "changes every answer and fault roll", number("--seed", 0))
    .option("--api-key <key>", "require this key (401 otherwise)")
    .option("--model <name...>", "model names listed by /v1/models")
    .addOption(new Option("--profile <family>", "the server family to play: its refusals, ignored fields, reasoning and finish reasons").choices(SIM_PROFILES))
    .addOption(
      new Option("--reasoning <placement>", "where a thinking model's chain of thought goes (default: the profile's)").choices([
        "none",
        "hidden",
        "reasoning",
        "reasoning_content",
        "think-tags",
      ]),
    )
    .option("--ignore-json-schema", "accept response_format json_schema and ignore it, as some servers do")
    .option("--batch-completion-ms <ms>", "Batch API: ms from a batch's creation to completed (default 200)", number("--batch-completion-ms", 0))
    .option("--batch-failure-rate <r>", "Batch API: rate of requests that fail with 500 in the error file", rate("--batch-failure-rate"))
    .option("--batch-expire-ms <ms>", "Batch API: a batch not completed this long after creation expires (default 24 h)", number("--batch-expire-ms", 1))
    .action(async (flags: SimFlags) => {
      const faults: FaultRates = { ...(flags.failRate ? { "500": flags.failRate } : {}), ...flags.faults };
      const options: SimulatorOptions = {
        port: flags.port,
        host: flags.host,
        latencyMs: flags.latencyMs,
        ttftMs: flags.ttftMs,
        tokensPerS: flags.tokensPerS,
        maxConcurrency: flags.maxConcurrency,
        maxQueue: flags.maxQueue,
        rpm: flags.rpm,
        tpm: flags.tpm,
        burstMs: flags.burstMs,
        faults,
        faultRetryAfterMs: flags.faultRetryAfterMs,
        seed: flags.seed,
        apiKey: flags.apiKey,
        models: flags.model,
        profile: flags.profile,
        reasoning: flags.reasoning,
        ignoreJsonSchema: flags.ignoreJsonSchema,
        batchCompletionMs: flags.batchCompletionMs,
        batchFailureRate: flags.batchFailureRate,
        batchExpireMs: flags.batchExpireMs,
      };
      const sim = await startSimulator(options);
      console.log(`rxsynth sim listening: OPENAI_BASE_URL=${sim.url}  (stats: ${sim.url.replace(/\/v1$/, "")}/stats)`);
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        process.once("SIGINT", stop);
        process.once("SIGTERM", stop);
      });
      await sim.close();
      console.log(JSON.stringify(sim.stats()));
    });
}
