import { defineAsyncFilter, drop, InputError, type Operator, type Sample } from "../../src/index.ts";
import {
  interpreterPath,
  runSandboxed,
  sandboxTools,
  type SandboxLanguage,
  type SandboxStatus,
} from "../../src/sandbox/index.ts";
import { fieldNames, fieldsParam, textReader, type TextFields } from "./text-fields.ts";

export interface ExecuteFilterOptions {
  /** Operator name in metrics and rejects. Default "execute_filter". */
  readonly name?: string;
  /** Language of the program and its tests. */
  readonly language: SandboxLanguage;
  /** The program: a data field, several (joined with a blank line), or a function. Default "code". */
  readonly code?: TextFields;
  /** The tests, run by the checker against the program's functions (see runSandboxed). Default "tests". */
  readonly tests?: TextFields;
  /**
   * Field (or function) giving the function name passed to the tests' `check(candidate)`, HumanEval
   * style. Default: none, the tests call the program themselves.
   */
  readonly entryPoint?: string | ((sample: Sample) => string | undefined);
  /** Wall-clock limit per sample, sandbox start included. Default 10 000. */
  readonly timeoutMs?: number;
  /** Memory cap per sample (RLIMIT_DATA; node's heap gets three quarters). Default 512. */
  readonly memoryMb?: number;
  /** Processes and threads per sample. Default 64. */
  readonly maxProcesses?: number;
  /** Bytes of stdout and of stderr kept per sample. Default 65 536. */
  readonly maxOutputBytes?: number;
  /**
   * MiB of writable space per sample (each of /sandbox, /tmp, /dev/shm; memory-backed, never the host's
   * disk). A program that fills it is dropped as `crashed`. Default 32.
   */
  readonly diskMb?: number;
  /** Sandboxes running at once; each is a process tree, so keep it near the core count. Default 2. */
  readonly concurrency?: number;
  /** Put the program's stdout and stderr in each reject's `raw` (as JSON). Default false. */
  readonly keepOutput?: boolean;
  /** Interpreter to run: default `python3` on PATH, or the node running this process. */
  readonly interpreter?: string;
}

const DEFAULTS = {
  name: "execute_filter",
  code: "code",
  tests: "tests",
  timeoutMs: 10_000,
  memoryMb: 512,
  maxProcesses: 64,
  maxOutputBytes: 65_536,
  diskMb: 32,
  concurrency: 2,
  keepOutput: false,
} as const;

type Failure = Exclude<SandboxStatus, "passed">;

/**
 * Keeps code whose tests pass when run in a bubblewrap sandbox: one fresh sandbox per sample, no network,
 * nothing writable but its own capped tmpfs, capped memory, processes, output and time. The tests run in a
 * checker process the program never runs in and see the program only through calls answered with plain
 * data, so a program that exits early, patches the asserts or returns an always-equal object is not kept.
 *
 * Reads: the `code` and `tests` fields (and `entryPoint` when named).
 * Writes: `scores.exec_ms`, the run's wall-clock time, on kept samples.
 * Drop reasons: `syntax_error`, `test_failed`, `timeout`, `crashed` (signal, out of memory or processes,
 * an error while the program loads, its writable space full), `sandbox_violation` (reached for the
 * network or the file system outside its folder), `tampering` (wrote to the checker's channel outside the
 * protocol); `message` holds the first useful error line, `value` the run time in ms.
 * Throws ConfigError at construction when bubblewrap (Debian `bubblewrap`), util-linux or python3 is missing.
 *
 * @example
 * // HumanEval rows: prompt + completion, tests defining check(candidate), entry_point naming the function.
 * executeFilter({ language: "python", code: ["prompt", "completion"], tests: "test", entryPoint: "entry_point" })
 */
export function executeFilter(options: ExecuteFilterOptions): Operator {
  const o = { ...DEFAULTS, ...options };
  // Fail at construction, not on every sample, when the host cannot run sandboxes at all.
  sandboxTools();
  const interpreter = interpreterPath(o.language, o.interpreter);
  const readCode = textReader(o.code);
  const readTests = textReader(o.tests);
  const readEntry = entryReader(o.entryPoint);
  const limits = { timeoutMs: o.timeoutMs, memoryMb: o.memoryMb, maxProcesses: o.maxProcesses, maxOutputBytes: o.maxOutputBytes, diskMb: o.diskMb };
  return defineAsyncFilter({
    name: o.name,
    concurrency: o.concurrency,
    reads: [...fieldNames(o.code), ...fieldNames(o.tests), ...(typeof o.entryPoint === "string" ? [o.entryPoint] : [])],
    params: {
      language: o.language,
      code: fieldsParam(o.code),
      tests: fieldsParam(o.tests),
      entryPoint: typeof o.entryPoint === "function" ? `fn:${o.entryPoint.toString()}` : (o.entryPoint ?? null),
      ...limits,
      keepOutput: o.keepOutput,
      interpreter: o.interpreter ?? null,
    },
    async test(sample, _state, _context, signal) {
      const result = await runSandboxed({
        language: o.language,
        code: readCode(sample),
        tests: readTests(sample),
        entryPoint: readEntry(sample),
        interpreter,
        signal,
        ...limits,
      });
      // Killed because the run is stopping: not the program's fault, so not a verdict on it.
      if (signal.aborted) throw signal.reason ?? new Error("execute_filter aborted");
      if (result.status === "passed") return { keep: true, scores: { exec_ms: result.durationMs } };
      const reason: Failure = result.status;
      return drop(reason, {
        message: result.message,
        value: result.durationMs,
        ...(reason === "timeout" ? { threshold: o.timeoutMs } : {}),
        ...(o.keepOutput ? { raw: JSON.stringify({ stdout: result.stdout, stderr: result.stderr }) } : {}),
      });
    },
  });
}

function entryReader(entryPoint: ExecuteFilterOptions["entryPoint"]): (sample: Sample) => string | undefined {
  if (entryPoint === undefined) return () => undefined;
  if (typeof entryPoint === "function") return (sample) => entryPoint(sample) || undefined;
  return (sample) => {
    const value = sample.data[entryPoint];
    if (value === undefined || value === null || value === "") return undefined;
    if (typeof value !== "string") throw new InputError(`expected a function name, got ${typeof value}`, { field: entryPoint });
    return value;
  };
}
