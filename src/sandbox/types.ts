export type SandboxLanguage = "javascript" | "python";

/**
 * How a sandboxed run ended; the execute filter uses the non-passing ones as drop reasons.
 * - passed: the checker ran the tests to the end, every call to the program answered with plain data,
 *   and the checker exited 0.
 * - syntax_error: the program or the tests did not compile; nothing ran.
 * - test_failed: an assertion failed, or the tests (or the program they called) raised, or the process
 *   exited before the tests finished.
 * - timeout: the wall clock (or the CPU-time backstop) ran out; the whole process tree was killed.
 * - crashed: killed by a signal (node's heap limit aborts), out of memory, processes or stack, or an
 *   error raised while the program itself loaded.
 * - sandbox_violation: the program reached for the network, for a path outside its folder (read-only,
 *   or absent from the sandbox), or for another process; seen by error code, or in stderr for tools it ran.
 * - tampering: the program's process wrote to the channel the checker reads answers from, outside the
 *   protocol (only the harness's own code writes there).
 */
export type SandboxStatus = "passed" | "syntax_error" | "test_failed" | "timeout" | "crashed" | "sandbox_violation" | "tampering";

export interface SandboxOptions {
  readonly language: SandboxLanguage;
  /** The program under test (a Python module, or a JavaScript script in CommonJS style). */
  readonly code: string;
  /**
   * Test code, run by the checker with the solution's functions as proxies (plain data in and out); an
   * AssertionError or any error it raises fails it.
   */
  readonly tests: string;
  /** Name of the function to pass to the tests' `check(candidate)`, HumanEval style; none by default. */
  readonly entryPoint?: string;
  /** Wall-clock limit for the whole run, sandbox start included. Default 10 000. */
  readonly timeoutMs?: number;
  /** Data-segment cap (RLIMIT_DATA) in MiB; node's old space is set to three quarters of it. Default 512. */
  readonly memoryMb?: number;
  /** Processes and threads the program may have at once (RLIMIT_NPROC). Default 64. */
  readonly maxProcesses?: number;
  /** Bytes of stdout and of stderr kept (the rest is read and discarded). Default 65 536. */
  readonly maxOutputBytes?: number;
  /** Largest file the program may write (RLIMIT_FSIZE), in MiB. Default 64. */
  readonly maxFileMb?: number;
  /**
   * Size in MiB of each of the program's writable mounts, /sandbox (its cwd, HOME and TMPDIR), /tmp and
   * /dev/shm: memory-backed tmpfs, so nothing reaches the host's disk. Filling one is `crashed`. Default 32.
   */
  readonly diskMb?: number;
  /** Interpreter to use; default `python3` found on PATH, or the node running this process. */
  readonly interpreter?: string;
  /** Aborting kills the sandbox at once; the run then resolves as a timeout. */
  readonly signal?: AbortSignal;
}

export interface SandboxResult {
  readonly status: SandboxStatus;
  /** The sandboxed program's exit code (a signal death reads as 128 + signal, as bwrap reports it). */
  readonly exitCode: number | null;
  /** The signal that ended the program, from the exit code or from the runner's own kill. */
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly stdoutTruncated: boolean;
  readonly stderrTruncated: boolean;
  /** The first useful line(s) explaining a non-passing status: the exception, the limit hit. */
  readonly message: string;
  readonly durationMs: number;
}
