import { constants } from "node:os";
import { ConfigError } from "../errors.ts";
import type { SandboxStatus } from "./types.ts";

/** What the runner saw of one sandboxed process, before it is judged. */
export interface RawRun {
  readonly exitCode: number | null;
  /** Set only when the runner's own kill ended bwrap. */
  readonly signal: NodeJS.Signals | null;
  readonly stderr: string;
  /** Lines the harness wrote on fd 3. */
  readonly events: string;
  readonly nonce: string;
  readonly timedOut: boolean;
  readonly aborted: boolean;
  readonly timeoutMs: number;
  /**
   * Whether a path the program found missing is the host's, hidden by the sandbox's private /tmp or
   * /dev/shm (see hiddenByPrivateRoot); absent: none is.
   */
  readonly hiddenOnHost?: (path: string) => boolean;
  /** How the program's own sandbox ended, when it has one (JavaScript) and it ended before the checker. */
  readonly programExit?: { readonly exitCode: number | null; readonly signal: NodeJS.Signals | null; readonly stderr: string };
}

export interface Judgement {
  readonly status: SandboxStatus;
  readonly message: string;
  readonly signal: NodeJS.Signals | null;
}

interface HarnessEvent {
  readonly nonce: string;
  readonly event: "started" | "verdict";
  readonly status: string;
  readonly message: string;
  /** The traceback the harness itself printed to stderr. */
  readonly trace?: string;
  /** Absolute paths under a private root (/tmp, /dev/shm) the failing error found missing. */
  readonly missing?: readonly string[];
  /** The program's process stopped answering: only the runner sees whether it was killed. */
  readonly programEnded?: boolean;
}

const VERDICTS = new Set<string>(["passed", "syntax_error", "test_failed", "timeout", "crashed", "sandbox_violation", "tampering"]);

/**
 * Text a program (or a tool it ran) prints when the sandbox stopped it: a read-only or missing mount,
 * no network, no permission. Used when the harness could not see the error itself (a subprocess, a
 * native crash).
 */
const VIOLATION_TEXT =
  /Read-only file system|Network is unreachable|Connection refused|Permission denied|Operation not permitted|Temporary failure in name resolution|Name or service not known|\b(EROFS|EACCES|ENETUNREACH|ECONNREFUSED|EAI_AGAIN|ENOTFOUND)\b/;
/** Ways an interpreter says it ran out of memory, stack or processes. */
const CRASH_TEXT =
  /FATAL ERROR:.*|Fatal process out of memory.*|MemoryError.*|RecursionError.*|Segmentation fault.*|.*Resource temporarily unavailable.*|.*Cannot allocate memory.*|.*No space left on device.*|.*\b(EAGAIN|ENOMEM)\b.*/;

const SIGNALS = new Map<number, NodeJS.Signals>();
// First name wins where two share a number (SIGABRT before SIGIOT).
for (const [name, number] of Object.entries(constants.signals)) if (!SIGNALS.has(number)) SIGNALS.set(number, name as NodeJS.Signals);

function parseEvents(text: string, nonce: string): HarnessEvent[] {
  const events: HarnessEvent[] = [];
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    try {
      const event = JSON.parse(line) as HarnessEvent;
      if (event && event.nonce === nonce) events.push(event);
    } catch {
      // Anything else on fd 3 came from the program, not the harness.
    }
  }
  return events;
}

/** The last meaningful line of stderr, for a run the harness did not explain. */
export function usefulLine(stderr: string): string {
  const crash = stderr.match(CRASH_TEXT);
  if (crash) return crash[0].trim();
  const lines = stderr.split("\n").map((line) => line.trim()).filter(Boolean);
  return (lines.at(-1) ?? "").slice(0, 500);
}

/** Stderr less the harness's own traceback, whose quoted source lines could match anything. */
function withoutTrace(stderr: string, trace: string | undefined): string {
  const at = trace ? stderr.lastIndexOf(trace) : -1;
  return at < 0 ? stderr : stderr.slice(0, at) + stderr.slice(at + trace!.length);
}

/** Why the program's own sandbox died, when it was killed or ran out of something; undefined for a plain exit. */
function programEnd(exit: NonNullable<RawRun["programExit"]>): { message: string; signal: NodeJS.Signals | undefined } | undefined {
  const code = exit.exitCode;
  const signal = exit.signal ?? (code !== null && code > 128 && code < 128 + 65 ? SIGNALS.get(code - 128) : undefined);
  const crash = exit.stderr.match(CRASH_TEXT)?.[0]?.trim();
  if (signal) return { message: crash ? `killed by ${signal}: ${crash}` : `killed by ${signal}`, signal };
  return crash ? { message: crash, signal } : undefined;
}

/**
 * Judges one run. Precedence: the runner's timeout; then the harness's verdict (checked by nonce);
 * then what the exit status and stderr say. Throws a ConfigError when the sandbox itself never started.
 */
export function judge(run: RawRun): Judgement {
  const fromCode = run.exitCode !== null && run.exitCode > 128 && run.exitCode < 128 + 65 ? SIGNALS.get(run.exitCode - 128) : undefined;
  const signal = run.signal ?? fromCode ?? null;
  if (run.timedOut) {
    const message = run.aborted ? "aborted before it finished" : `ran longer than ${run.timeoutMs} ms and was killed`;
    return { status: "timeout", message, signal };
  }
  const events = parseEvents(run.events, run.nonce);
  const started = events.some((event) => event.event === "started");
  const verdict = events.find((event) => event.event === "verdict");
  const violation = withoutTrace(run.stderr, verdict?.trace).match(VIOLATION_TEXT)?.[0];

  if (!started) {
    const setup = run.stderr.match(/^(bwrap|setpriv|prlimit|harness): .*$/m);
    if (setup) throw new ConfigError(`the sandbox could not start: ${setup[0]}`);
    return { status: "crashed", message: usefulLine(run.stderr) || `exited with code ${run.exitCode} before the harness started`, signal };
  }
  if (verdict && VERDICTS.has(verdict.status)) {
    if (verdict.status === "passed") {
      if (run.exitCode === 0) return { status: "passed", message: "", signal };
      if (signal) return { status: "crashed", message: `tests passed, then killed by ${signal}`, signal };
      return { status: "test_failed", message: `tests passed but the program exited with code ${run.exitCode}`, signal };
    }
    if (verdict.programEnded && run.programExit) {
      const ended = programEnd(run.programExit);
      if (ended) return { status: "crashed", message: `${verdict.message}: ${ended.message}`, signal: ended.signal ?? signal };
    }
    if (verdict.status === "test_failed" || verdict.status === "crashed") {
      // A host path under /tmp (a clone of the project there, say) reads as missing inside the sandbox,
      // whose /tmp is its own: reaching for it is reaching for the host, as for any path not mounted.
      const hidden = run.hiddenOnHost;
      if (hidden && Array.isArray(verdict.missing) && verdict.missing.some((path) => typeof path === "string" && hidden(path))) {
        return { status: "sandbox_violation", message: verdict.message, signal };
      }
      // A subprocess the program ran may have hit the sandbox where the harness could not see it.
      if (violation) return { status: "sandbox_violation", message: `${verdict.message} (stderr: ${violation})`, signal };
    }
    return { status: verdict.status as SandboxStatus, message: verdict.message, signal };
  }
  if (signal === "SIGXCPU") return { status: "timeout", message: "used up its CPU-time limit", signal };
  if (signal) {
    const line = usefulLine(run.stderr);
    return { status: "crashed", message: line ? `killed by ${signal}: ${line}` : `killed by ${signal}`, signal };
  }
  if (violation) return { status: "sandbox_violation", message: usefulLine(run.stderr), signal };
  if (CRASH_TEXT.test(run.stderr)) return { status: "crashed", message: usefulLine(run.stderr), signal };
  return { status: "test_failed", message: `exited with code ${run.exitCode} before the tests finished`, signal };
}
