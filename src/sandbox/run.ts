import { spawn } from "node:child_process";
import { randomBytes, randomInt } from "node:crypto";
import { chmod, readdir, rm, stat } from "node:fs/promises";
import type { Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import { ConfigError, InputError } from "../errors.ts";
import { PRIVATE_ROOTS, SANDBOX_INPUT, bwrapArgs, hiddenByPrivateRoot, visibleRoots } from "./bwrap.ts";
import { judge, type RawRun } from "./classify.ts";
import { interpreterPath, resolveRuntime, sandboxTools, type Runtime, type SandboxTools } from "./host.ts";
import { seccompFilter } from "./seccomp.ts";
import type { SandboxLanguage, SandboxOptions, SandboxResult } from "./types.ts";

/** Defaults for `runSandboxed`, in one place. */
export const SANDBOX_DEFAULTS = {
  timeoutMs: 10_000,
  memoryMb: 512,
  maxProcesses: 64,
  maxOutputBytes: 65_536,
  maxFileMb: 64,
  diskMb: 32,
} as const;

const MiB = 1024 * 1024;
const EVENTS_LIMIT = 1 * MiB;
const RESULT_FD = 3;
const SECCOMP_FD = 4;
/** The JavaScript checker's end of the channel to the program's sandbox. */
const CHECKER_CHANNEL_FD = 5;
/** The harness folder, mounted read-only at /harness: the same files for every run, nothing of the program's. */
const HARNESS_DIR = fileURLToPath(new URL("./harness/", import.meta.url));

const IDENTIFIER: Record<SandboxLanguage, RegExp> = {
  python: /^[A-Za-z_][A-Za-z0-9_]*$/,
  javascript: /^[A-Za-z_$][A-Za-z0-9_$]*$/,
};

/** Uids handed to concurrent root-mode sandboxes, so each has its own RLIMIT_NPROC count. */
const uidsInUse = new Set<number>();
function takeUid(): number {
  // Far above login users and the usual subordinate-uid ranges; nothing on the host owns these.
  for (;;) {
    const uid = randomInt(1_000_000_000, 2_000_000_000);
    if (!uidsInUse.has(uid)) {
      uidsInUse.add(uid);
      return uid;
    }
  }
}

const seccomp = seccompFilter();

interface Limits {
  readonly memoryMb: number;
  readonly maxProcesses: number;
  readonly maxFileMb: number;
  readonly diskMb: number;
  readonly timeoutMs: number;
}

/**
 * Runs a program and its tests under bubblewrap and says how it went.
 *
 * The verdict is decided by a checker process the program never runs in: the tests run there and reach
 * the program's functions only through calls whose answers come back as plain data (see harness/ and
 * the README's "Execution feedback"). Each sandbox: new pid, network, ipc, uts and cgroup namespaces; a
 * read-only view of /usr and a few /etc files; writable space only in size-capped tmpfs mounts (/sandbox,
 * also HOME and TMPDIR, /tmp and /dev/shm, `diskMb` each), so nothing is written to the host's disk;
 * rlimits on data size, processes, file size and CPU; a seccomp filter; a wall-clock timer that kills
 * every process. Throws ConfigError only when the sandbox itself cannot run.
 */
export async function runSandboxed(options: SandboxOptions): Promise<SandboxResult> {
  const limits: Limits = {
    timeoutMs: options.timeoutMs ?? SANDBOX_DEFAULTS.timeoutMs,
    memoryMb: options.memoryMb ?? SANDBOX_DEFAULTS.memoryMb,
    maxProcesses: options.maxProcesses ?? SANDBOX_DEFAULTS.maxProcesses,
    maxFileMb: options.maxFileMb ?? SANDBOX_DEFAULTS.maxFileMb,
    diskMb: options.diskMb ?? SANDBOX_DEFAULTS.diskMb,
  };
  const maxOutputBytes = options.maxOutputBytes ?? SANDBOX_DEFAULTS.maxOutputBytes;
  const { language } = options;
  if (options.entryPoint !== undefined && !IDENTIFIER[language].test(options.entryPoint)) {
    throw new InputError(`"${options.entryPoint}" is not a ${language} identifier`, { field: "entryPoint" });
  }
  for (const [name, value, min] of [
    ["timeoutMs", limits.timeoutMs, 1],
    ["memoryMb", limits.memoryMb, 64],
    ["maxProcesses", limits.maxProcesses, 1],
    ["maxOutputBytes", maxOutputBytes, 0],
    ["maxFileMb", limits.maxFileMb, 1],
    ["diskMb", limits.diskMb, 1],
  ] as const) {
    if (!Number.isFinite(value) || value < min) throw new ConfigError(`${name} must be a number of at least ${min}, got ${value}`);
  }

  const tools = sandboxTools();
  removeStaleFolders();
  const runtime = await resolveRuntime(language, interpreterPath(language, options.interpreter));
  const uid = tools.root ? takeUid() : undefined;
  try {
    const nonce = randomBytes(16).toString("hex");
    const job = {
      nonce,
      code: options.code,
      tests: options.tests,
      entryPoint: options.entryPoint ?? null,
      visibleRoots: visibleRoots(runtime.roots),
      privateRoots: PRIVATE_ROOTS,
      diskMb: limits.diskMb,
    };
    const privileged = uid !== undefined;
    const sandbox = () =>
      bwrapArgs({ harnessDir: HARNESS_DIR, runtimeRoots: runtime.roots, diskBytes: limits.diskMb * MiB, privileged, seccompFd: seccomp ? SECCOMP_FD : undefined });
    const hiddenOnHost = (path: string) => hiddenByPrivateRoot(path, runtime.roots);
    const launch: Launch =
      language === "python"
        ? { checker: [...sandbox(), "--", ...pythonCommand(runtime, limits, uid)] }
        : {
            checker: [...sandbox(), "--", ...nodeCommand(tools, runtime, limits, uid, "checker.cjs")],
            program: [...sandbox(), "--", ...nodeCommand(tools, runtime, limits, uid, "program.cjs")],
          };
    return await execute(tools.bwrap, launch, `${JSON.stringify(job)}\n`, nonce, {
      timeoutMs: limits.timeoutMs,
      maxOutputBytes,
      signal: options.signal,
      hiddenOnHost,
    });
  } finally {
    if (uid !== undefined) uidsInUse.delete(uid);
  }
}

/**
 * Python: one sandbox; the checker forks the program's process itself and sets the rlimits and (in root
 * mode) the uid before anything runs, which saves two helper execs per program.
 */
function pythonCommand(runtime: Runtime, limits: Limits, uid: number | undefined): string[] {
  const rlimits = [limits.memoryMb * MiB, limits.maxProcesses, limits.maxFileMb * MiB, Math.ceil(limits.timeoutMs / 1000) + 1];
  return [
    runtime.executable,
    "-I",
    "-S",
    "-B",
    "-X",
    "utf8",
    `${SANDBOX_INPUT}/harness.py`,
    `limits=${rlimits.join(",")}`,
    `uid=${uid ?? ""}`,
    `disk=${limits.diskMb}`,
    `site=${(runtime.sitePackages ?? []).join(":")}`,
  ];
}

/**
 * JavaScript: node has no fork and cannot make itself undumpable, so the checker and the program each get
 * a sandbox of their own (their own pid namespace) and share only a socket.
 */
function nodeCommand(tools: SandboxTools, runtime: Runtime, limits: Limits, uid: number | undefined, script: string): string[] {
  const out: string[] = [];
  if (uid !== undefined) {
    const id = String(uid);
    out.push(tools.setpriv!, `--reuid=${id}`, `--regid=${id}`, "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--");
  }
  // RLIMIT_DATA rather than RLIMIT_AS: V8 reserves far more address space than it uses and will not
  // start under an address-space cap, while RLIMIT_DATA counts only memory made writable (heap,
  // malloc, ArrayBuffers), which stops a hog. RLIMIT_CPU backs up the wall clock.
  out.push(
    tools.prlimit,
    `--data=${limits.memoryMb * MiB}`,
    `--nproc=${limits.maxProcesses}`,
    `--fsize=${limits.maxFileMb * MiB}`,
    `--cpu=${Math.ceil(limits.timeoutMs / 1000) + 1}`,
    "--core=0",
    "--",
    runtime.executable,
    `--max-old-space-size=${Math.max(16, Math.floor(limits.memoryMb * 0.75))}`,
    `${SANDBOX_INPUT}/${script}`,
  );
  return out;
}

/** bwrap argument lists: the checker's sandbox, and the program's when it has its own. */
interface Launch {
  readonly checker: string[];
  readonly program?: string[];
}

let staleSwept = false;
const STALE_AFTER_MS = 10 * 60_000;

/**
 * Earlier versions kept each sandbox's files in a host folder that a killed run left behind; sandboxes
 * keep nothing on the host now, so what is left of those is removed once per process.
 */
function removeStaleFolders(): void {
  if (staleSwept) return;
  staleSwept = true;
  void (async () => {
    const entries = await readdir(tmpdir()).catch(() => [] as string[]);
    for (const name of entries) {
      if (!name.startsWith("rxsynth-sandbox-")) continue;
      const folder = join(tmpdir(), name);
      // Older than any sandbox's run: an earlier version's process still using it is long past its timeout.
      const modified = (await stat(folder).catch(() => undefined))?.mtimeMs ?? Date.now();
      if (Date.now() - modified > STALE_AFTER_MS) await removeTree(folder);
    }
  })();
}

/** Keeps the first `limit` bytes of a stream and reads (and drops) the rest, so the writer never blocks. */
function capture(stream: Readable, limit: number) {
  const chunks: Buffer[] = [];
  let kept = 0;
  let truncated = false;
  stream.on("data", (chunk: Buffer) => {
    if (kept >= limit) {
      truncated = true;
      return;
    }
    const room = limit - kept;
    if (chunk.length > room) truncated = true;
    const piece = chunk.length > room ? chunk.subarray(0, room) : chunk;
    chunks.push(piece);
    kept += piece.length;
  });
  stream.on("error", () => undefined);
  return { text: () => Buffer.concat(chunks).toString("utf8"), truncated: () => truncated };
}

interface ExecuteOptions {
  readonly timeoutMs: number;
  readonly maxOutputBytes: number;
  readonly signal: AbortSignal | undefined;
  readonly hiddenOnHost: (path: string) => boolean;
}

type Child = ReturnType<typeof spawn>;

async function execute(bwrap: string, launch: Launch, job: string, nonce: string, options: ExecuteOptions): Promise<SandboxResult> {
  const started = performance.now();
  const extra = seccomp ? "pipe" : "ignore";
  // detached: each bwrap leads its own process group, so one kill reaches it; --die-with-parent and the
  // pid namespace take everything inside down with it.
  const checker = spawn(bwrap, launch.checker, {
    detached: true,
    stdio: ["pipe", "pipe", "pipe", "pipe", extra, ...(launch.program ? (["pipe"] as const) : [])],
    env: {},
  });
  const children: Child[] = [checker];
  if (launch.program) {
    // The checker keeps the blocking end of the socket pair (its calls wait for answers); the program's
    // sandbox gets a duplicate of the host's end, which the host then closes: the two talk directly.
    const hostEnd = (checker.stdio as unknown as Socket[])[CHECKER_CHANNEL_FD]!;
    children.push(spawn(bwrap, launch.program, { detached: true, stdio: ["ignore", "pipe", "pipe", hostEnd, extra], env: {} }));
    hostEnd.destroy();
  }
  const stdout = children.map((child) => capture(child.stdout!, options.maxOutputBytes));
  const stderr = children.map((child) => capture(child.stderr!, options.maxOutputBytes));
  const events = capture(checker.stdio[RESULT_FD] as Readable, EVENTS_LIMIT);
  checker.stdin!.on("error", () => undefined);
  checker.stdin!.end(job);
  for (const child of children) {
    if (!seccomp) continue;
    const pipe = child.stdio[SECCOMP_FD] as NodeJS.WritableStream & { on(event: "error", fn: () => void): void };
    pipe.on("error", () => undefined);
    pipe.end(seccomp);
  }

  let timedOut = false;
  let aborted = false;
  const kill = (child: Child) => {
    if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
    try {
      process.kill(-child.pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  };
  const killAll = () => children.forEach(kill);
  const timer = setTimeout(() => {
    timedOut = true;
    killAll();
  }, options.timeoutMs);
  const onAbort = () => {
    timedOut = true;
    aborted = true;
    killAll();
  };
  if (options.signal?.aborted) onAbort();
  else options.signal?.addEventListener("abort", onAbort, { once: true });

  const closed = (child: Child) =>
    new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
      child.once("error", (error: NodeJS.ErrnoException) => reject(new ConfigError(`could not start ${bwrap}: ${error.message}`, { cause: error })));
      child.once("close", (code, sig) => resolve([code, sig]));
    });
  try {
    const checkerClosed = closed(checker);
    const programClosed = children[1] ? closed(children[1]) : undefined;
    // The verdict is the checker's; a program's sandbox still running then has nothing left to say.
    const [exitCode, signal] = await checkerClosed;
    let programExit: RawRun["programExit"];
    if (children[1]) {
      const early = children[1].exitCode !== null || children[1].signalCode !== null;
      kill(children[1]);
      const [programCode, programSignal] = await programClosed!.catch(() => [null, null] as const);
      if (early) programExit = { exitCode: programCode, signal: programSignal, stderr: stderr[1]!.text() };
    }
    const durationMs = Math.round(performance.now() - started);
    const allErrors = stderr.map((stream) => stream.text()).join("");
    const judged = judge({
      exitCode,
      signal,
      stderr: allErrors,
      events: events.text(),
      nonce,
      timedOut,
      aborted,
      timeoutMs: options.timeoutMs,
      hiddenOnHost: options.hiddenOnHost,
      programExit,
    });
    return {
      status: judged.status,
      exitCode,
      signal: judged.signal,
      stdout: stdout.map((stream) => stream.text()).join(""),
      stderr: allErrors,
      stdoutTruncated: stdout.some((stream) => stream.truncated()),
      stderrTruncated: stderr.some((stream) => stream.truncated()),
      message: judged.message,
      durationMs,
    };
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener("abort", onAbort);
    killAll();
  }
}

/** Removes a sandbox folder even when the program left unreadable folders behind in it. */
async function removeTree(dir: string): Promise<void> {
  try {
    await rm(dir, { recursive: true, force: true });
  } catch {
    await makeWritable(dir);
    await rm(dir, { recursive: true, force: true });
  }
}

async function makeWritable(dir: string): Promise<void> {
  await chmod(dir, 0o700).catch(() => undefined);
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const entry of entries) if (entry.isDirectory()) await makeWritable(join(dir, entry.name));
}
