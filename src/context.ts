import { ConfigError } from "./errors.ts";
import { Metrics } from "./metrics.ts";
import type { Sample } from "./sample.ts";

/** Why a sample left the graph without reaching a sink. */
export interface RejectInfo {
  readonly operator: string;
  /** Short snake_case reason that tests assert and the report counts. */
  readonly reason: string;
  readonly value?: number;
  readonly threshold?: number;
  readonly message?: string;
  /** The raw text that could not be used (an LLM answer, a malformed line), never lost. */
  readonly raw?: string;
  /** Id of the sample this one duplicates, for dedup reasons. */
  readonly duplicateOf?: string;
  /** When it was rejected (epoch ms); set by the operator helpers. */
  readonly at?: number;
}

export interface Rejection extends RejectInfo {
  readonly sample: Sample;
  readonly at: number;
}

/** Hook an operator registers to save its state with each run checkpoint (e.g. a dedup index). */
export type CheckpointHook = () => Promise<void> | void;

/**
 * What an operator sees of the run it is part of. The runner creates one per run and makes it
 * current while it subscribes the graph, so operator state is per subscription and a graph can run twice.
 */
export interface RunContext {
  /** Folder of the run's output, for snapshots and operator state; undefined for in-memory runs. */
  readonly runDir: string | undefined;
  /** Aborted when the run is stopping (signal, fatal error); long async work should honour it. */
  readonly signal: AbortSignal;
  /** When true an operator error fails the run instead of rejecting the one sample. */
  readonly failFast: boolean;
  readonly metrics: Metrics;
  /** True when resuming into a folder that already holds committed output. */
  readonly resumed: boolean;
  /** Most samples the run lets in flight (operators that hold samples check they fit); unset outside run(). */
  readonly budget?: number;
  reject(sample: Sample, info: RejectInfo): void;
  onCheckpoint(hook: CheckpointHook): void;
  /** Records an operator's options once per run (the manifest keeps them; steps keep only the hash). */
  registerOperator(name: string, version: string, params: unknown): void;
  log(message: string): void;
}

let current: RunContext | undefined;

/** Makes `context` current while `subscribe` runs; RxJS subscribes a chain synchronously. */
export function withRunContext<T>(context: RunContext, subscribe: () => T): T {
  const previous = current;
  current = context;
  try {
    return subscribe();
  } finally {
    current = previous;
  }
}

export function currentRunContext(operator: string): RunContext {
  if (!current) {
    throw new ConfigError(
      `operator "${operator}" was subscribed outside a run: run it in a graph with run(), or test it with collect()`,
    );
  }
  return current;
}

export interface MemoryContextOptions {
  readonly failFast?: boolean;
  readonly runDir?: string;
  readonly signal?: AbortSignal;
  readonly log?: (message: string) => void;
}

/** A context that keeps rejects in memory: for collect(), tests and notebooks. */
export function memoryRunContext(options: MemoryContextOptions = {}): RunContext & {
  readonly rejects: Rejection[];
  readonly checkpointHooks: CheckpointHook[];
  readonly operatorParams: Map<string, { version: string; params: unknown }>;
} {
  const rejects: Rejection[] = [];
  const checkpointHooks: CheckpointHook[] = [];
  const operatorParams = new Map<string, { version: string; params: unknown }>();
  return {
    runDir: options.runDir,
    signal: options.signal ?? new AbortController().signal,
    failFast: options.failFast ?? false,
    metrics: new Metrics(),
    resumed: false,
    rejects,
    checkpointHooks,
    operatorParams,
    reject(sample, info) {
      rejects.push({ ...info, sample, at: Date.now() });
    },
    onCheckpoint(hook) {
      checkpointHooks.push(hook);
    },
    registerOperator(name, version, params) {
      operatorParams.set(name, { version, params });
    },
    log: options.log ?? (() => {}),
  };
}
