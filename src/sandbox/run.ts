import { spawn } from "node:child_process";
import { randomBytes, randomInt } from "node:crypto";
import { chmod, chown, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { ConfigError, InputError } from "../errors.ts";
import { PRIVATE_ROOTS, bwrapArgs, hiddenByPrivateRoot, visibleRoots } from "./bwrap.ts";
import { judge } from "./classify.ts";
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
} as const;

const MiB = 1024 * 1024;
const EVENTS_LIMIT = 1 * MiB;
const RESULT_FD = 3;
const SECCOMP_FD = 4;

const FILES: Record<SandboxLanguage, { harness: string; ext: string }> = {
  python: { harness: "harness.py", ext: "py" },
  javascript: { harness: "harness.cjs", ext: "js" },
};

const harnessText = new Map<string, Promise<string>>();
function harnessSource(name: string): Promise<string> {
  let text = harnessText.get(name);
  if (!text) {
    text = readFile(new URL(`./harness/${name}`, import.meta.url), "utf8");
    harnessText.set(name, text);
  }
  return text;
}

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

/**
 * Runs a program and its tests in a fresh bubblewrap sandbox and says how it went.
 *
 * One process tree per call: new pid, network, ipc, uts and cgroup namespaces; a read-only view of
 * /usr and a few /etc files; a private writable folder at /sandbox (also HOME and TMPDIR) and a small
 * /tmp; rlimits on data size, processes, file size and CPU; a seccomp filter; a wall-clock timer that
 * kills the whole tree. Throws ConfigError only when the sandbox itself cannot run.
 */
export async function runSandboxed(options: SandboxOptions): Promise<SandboxResult> {
  const timeoutMs = options.timeoutMs ?? SANDBOX_DEFAULTS.timeoutMs;
  const memoryMb = options.memoryMb ?? SANDBOX_DEFAULTS.memoryMb;
  const maxProcesses = options.maxProcesses ?? SANDBOX_DEFAULTS.maxProcesses;
  const maxOutputBytes = options.maxOutputBytes ?? SANDBOX_DEFAULTS.maxOutputBytes;
  const maxFileMb = options.maxFileMb ?? SANDBOX_DEFAULTS.maxFileMb;
  const { language } = options;
  if (options.entryPoint !== undefined && !IDENTIFIER[language].test(options.entryPoint)) {
    throw new InputError(`"${options.entryPoint}" is not a ${language} identifier`, { field: "entryPoint" });
  }
  for (const [name, value, min] of [
    ["timeoutMs", timeoutMs, 1],
    ["memoryMb", memoryMb, 64],
    ["maxProcesses", maxProcesses, 1],
    ["maxOutputBytes", maxOutputBytes, 0],
    ["maxFileMb", maxFileMb, 1],
  ] as const) {
    if (!Number.isFinite(value) || value < min) throw new ConfigError(`${name} must be a number of at least ${min}, got ${value}`);
  }

  const tools = sandboxTools();
  const runtime = await resolveRuntime(language, interpreterPath(language, options.interpreter));
  const hostDir = await mkdtemp(join(tmpdir(), "rxsynth-sandbox-"));
  const uid = tools.root ? takeUid() : undefined;
  try {
    const inputDir = join(hostDir, "in");
    const workDir = join(hostDir, "work");
    await mkdir(inputDir, { mode: 0o755 });
    await mkdir(workDir, { mode: 0o700 });
    if (uid !== undefined) await chown(workDir, uid, uid);
    const { harness, ext } = FILES[language];
    const job = { entryPoint: options.entryPoint ?? null, visibleRoots: visibleRoots(runtime.roots), privateRoots: PRIVATE_ROOTS };
    await Promise.all([
      writeFile(join(inputDir, harness), await harnessSource(harness), { mode: 0o644 }),
      writeFile(join(inputDir, `solution.${ext}`), options.code, { mode: 0o644 }),
      writeFile(join(inputDir, `tests.${ext}`), options.tests, { mode: 0o644 }),
      writeFile(join(inputDir, "job.json"), JSON.stringify(job), { mode: 0o644 }),
    ]);
    const args = [
      ...bwrapArgs({
        inputDir,
        workDir,
        runtimeRoots: runtime.roots,
        tmpBytes: Math.min(maxFileMb, 64) * MiB,
        uid,
        seccompFd: seccomp ? SECCOMP_FD : undefined,
      }),
      "--",
      ...command(tools, runtime, language, { uid, memoryMb, maxProcesses, maxFileMb, timeoutMs }),
    ];
    const hiddenOnHost = (path: string) => hiddenByPrivateRoot(path, runtime.roots);
    return await execute(tools.bwrap, args, { timeoutMs, maxOutputBytes, signal: options.signal, hiddenOnHost });
  } finally {
    if (uid !== undefined) uidsInUse.delete(uid);
    await removeTree(hostDir);
  }
}

interface Limits {
  readonly uid: number | undefined;
  readonly memoryMb: number;
  readonly maxProcesses: number;
  readonly maxFileMb: number;
  readonly timeoutMs: number;
}

/** What runs inside bwrap: drop root (if root), set the rlimits, start the harness. */
function command(tools: SandboxTools, runtime: Runtime, language: SandboxLanguage, limits: Limits): string[] {
  const out: string[] = [];
  if (limits.uid !== undefined) {
    const id = String(limits.uid);
    out.push(tools.setpriv!, `--reuid=${id}`, `--regid=${id}`, "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--");
  }
  // RLIMIT_DATA rather than RLIMIT_AS: V8 reserves far more address space than it uses and will not
  // start under an address-space cap, while RLIMIT_DATA counts only memory made writable (heap,
  // malloc, ArrayBuffers), which stops a hog in both runtimes. RLIMIT_CPU backs up the wall clock.
  out.push(
    tools.prlimit,
    `--data=${limits.memoryMb * MiB}`,
    `--nproc=${limits.maxProcesses}`,
    `--fsize=${limits.maxFileMb * MiB}`,
    `--cpu=${Math.ceil(limits.timeoutMs / 1000) + 1}`,
    "--core=0",
    "--",
    runtime.executable,
  );
  if (language === "python") out.push("-I", "-S", "-B", "-X", "utf8", `/harness/${FILES.python.harness}`);
  else out.push(`--max-old-space-size=${Math.max(16, Math.floor(limits.memoryMb * 0.75))}`, `/harness/${FILES.javascript.harness}`);
  return out;
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

async function execute(
  bwrap: string,
  args: string[],
  options: { timeoutMs: number; maxOutputBytes: number; signal: AbortSignal | undefined; hiddenOnHost: (path: string) => boolean },
): Promise<SandboxResult> {
  const nonce = randomBytes(16).toString("hex");
  const started = performance.now();
  // detached: bwrap leads its own process group, so one kill reaches it; --die-with-parent and the pid
  // namespace take everything inside down with it.
  const child = spawn(bwrap, args, {
    detached: true,
    stdio: ["pipe", "pipe", "pipe", "pipe", seccomp ? "pipe" : "ignore"],
    env: {},
  });
  const stdout = capture(child.stdout!, options.maxOutputBytes);
  const stderr = capture(child.stderr!, options.maxOutputBytes);
  const events = capture(child.stdio[RESULT_FD] as Readable, EVENTS_LIMIT);
  child.stdin!.on("error", () => undefined);
  child.stdin!.end(`${nonce}\n`);
  if (seccomp) {
    const pipe = child.stdio[SECCOMP_FD] as NodeJS.WritableStream & { on(event: "error", fn: () => void): void };
    pipe.on("error", () => undefined);
    pipe.end(seccomp);
  }

  let timedOut = false;
  let aborted = false;
  const kill = () => {
    if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
    try {
      process.kill(-child.pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  };
  const timer = setTimeout(() => {
    timedOut = true;
    kill();
  }, options.timeoutMs);
  const onAbort = () => {
    timedOut = true;
    aborted = true;
    kill();
  };
  if (options.signal?.aborted) onAbort();
  else options.signal?.addEventListener("abort", onAbort, { once: true });

  try {
    const [exitCode, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
      child.once("error", (error: NodeJS.ErrnoException) =>
        reject(new ConfigError(`could not start ${bwrap}: ${error.message}`, { cause: error })),
      );
      child.once("close", (code, sig) => resolve([code, sig]));
    });
    const durationMs = Math.round(performance.now() - started);
    const judged = judge({
      exitCode,
      signal,
      stderr: stderr.text(),
      events: events.text(),
      nonce,
      timedOut,
      aborted,
      timeoutMs: options.timeoutMs,
      hiddenOnHost: options.hiddenOnHost,
    });
    return {
      status: judged.status,
      exitCode,
      signal: judged.signal,
      stdout: stdout.text(),
      stderr: stderr.text(),
      stdoutTruncated: stdout.truncated(),
      stderrTruncated: stderr.truncated(),
      message: judged.message,
      durationMs,
    };
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener("abort", onAbort);
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
