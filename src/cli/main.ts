import { Command, InvalidArgumentError } from "commander";
import { CacheError, ConfigError, EndpointError, InputError, LlmError, RxsynthError, SharedStateError } from "../errors.ts";
import { registerGraphsCommand } from "./graphs-command.ts";
import { registerInspectCommand } from "./inspect-command.ts";
import { registerRunCommand } from "./run-command.ts";
import { registerSimCommand } from "../sim/cli.ts";
import { registerExportCommand } from "./export-command.ts";
import { registerCacheCommand } from "./cache-command.ts";
import { registerScaleCommands } from "./scale-commands.ts";
import { registerReportCommand } from "./report-command.ts";
import { registerBenchCommand } from "./bench-command.ts";

export function positiveInteger(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed <= 0) throw new InvalidArgumentError("expected a positive integer");
  return parsed;
}

/** One clear line for the errors we expect; the stack only with --verbose. */
export function reportError(error: unknown, verbose: boolean): void {
  if (verbose) {
    console.error(error);
    return;
  }
  if (error instanceof RxsynthError) {
    const kind =
      error instanceof ConfigError ? "config"
      : error instanceof InputError ? "input"
      : error instanceof EndpointError ? "endpoint"
      : error instanceof LlmError ? "llm"
      : error instanceof CacheError ? "cache"
      : error instanceof SharedStateError ? "redis"
      : undefined;
    console.error(`rxsynth: ${kind ? `${kind} error` : "error"}: ${error.message}`);
  } else {
    const message = error instanceof Error ? error.message : String(error);
    console.error(`rxsynth: ${message}\n(run again with --verbose for the stack trace)`);
  }
}

export function createProgram(): Command {
  const program = new Command()
    .name("rxsynth")
    .description("Streaming engine that generates, filters and curates synthetic training data")
    .option("--verbose", "print stack traces and debug lines")
    // One line saying what is wrong and where to look, not the whole usage text after it.
    .configureOutput({ outputError: (text, write) => write(`rxsynth: ${text.trim().replace(/^error: /, "")} (see --help)\n`) });
  registerRunCommand(program);
  registerInspectCommand(program);
  registerGraphsCommand(program);
  registerSimCommand(program);
  registerExportCommand(program);
  registerCacheCommand(program);
  registerScaleCommands(program);
  registerReportCommand(program);
  registerBenchCommand(program);
  return program;
}

const isMain = process.argv[1] !== undefined && /rxsynth(\.mjs)?$|cli[/\\]main\.ts$/.test(process.argv[1]);
if (isMain) {
  const program = createProgram();
  try {
    await program.parseAsync(process.argv);
  } catch (error) {
    reportError(error, program.opts<{ verbose?: boolean }>().verbose === true || process.argv.includes("--verbose"));
    process.exitCode = process.exitCode && process.exitCode !== 0 ? process.exitCode : 1;
  }
}
