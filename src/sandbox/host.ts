import { execFile, spawnSync } from "node:child_process";
import { accessSync, constants, existsSync, realpathSync } from "node:fs";
import { delimiter, dirname, join } from "node:path";
import { promisify } from "node:util";
import { ConfigError, errorMessage } from "../errors.ts";
import type { SandboxLanguage } from "./types.ts";

const run = promisify(execFile);

/** The host programs the sandbox is built from; all found once per process. */
export interface SandboxTools {
  readonly bwrap: string;
  /** Sets the rlimits inside the sandbox, just before the interpreter starts (util-linux). */
  readonly prlimit: string;
  /** Drops root to an unprivileged uid inside the sandbox; only needed when running as root (util-linux). */
  readonly setpriv: string | undefined;
  readonly root: boolean;
}

/** An interpreter as the sandbox sees it: its real path and the folders it needs mounted. */
export interface Runtime {
  readonly executable: string;
  /** Install folders outside /usr (pyenv, nvm, a venv) to mount read-only at the same path. */
  readonly roots: readonly string[];
  /**
   * Python's site-packages folders, put on the path by the harness: the interpreter runs with -S, so
   * their .pth files (arbitrary code at every start, and much of a pyenv python's start-up) never run.
   */
  readonly sitePackages?: readonly string[];
}

export function findExecutable(name: string, searchPath = process.env.PATH ?? ""): string | undefined {
  if (name.includes("/")) return isExecutable(name) ? name : undefined;
  for (const folder of searchPath.split(delimiter)) {
    if (!folder) continue;
    const candidate = join(folder, name);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

const found = new Map<string, SandboxTools>();

/** Finds bwrap and util-linux's helpers on `searchPath`, or says which Debian package to install. */
export function sandboxTools(searchPath = process.env.PATH ?? ""): SandboxTools {
  const known = found.get(searchPath);
  if (known) return known;
  const bwrap = findExecutable("bwrap", searchPath);
  if (!bwrap) {
    throw new ConfigError(
      "code execution needs bubblewrap (the `bwrap` command), which is not on PATH: install Debian's `bubblewrap` package (apt-get install -y bubblewrap)",
    );
  }
  const version = spawnSync(bwrap, ["--version"], { encoding: "utf8" }).stdout?.match(/(\d+)\.(\d+)/);
  if (!version || Number(version[1]) * 1000 + Number(version[2]) < 8) {
    throw new ConfigError(
      `code execution needs bubblewrap 0.8 or newer (for --disable-userns, --size and --perms); ${bwrap} reports ${version?.[0] ?? "no version"}: upgrade Debian's \`bubblewrap\` package`,
    );
  }
  const root = process.getuid?.() === 0;
  const prlimit = findExecutable("prlimit", searchPath);
  const setpriv = root ? findExecutable("setpriv", searchPath) : undefined;
  if (!prlimit || (root && !setpriv)) {
    throw new ConfigError(
      `code execution needs \`prlimit\`${root ? " and `setpriv`" : ""} on PATH: install Debian's \`util-linux\` package`,
    );
  }
  const tools = { bwrap, prlimit: realpathSync(prlimit), setpriv: setpriv && realpathSync(setpriv), root };
  found.set(searchPath, tools);
  return tools;
}

/** The interpreter command for a language, checked to exist; the default python is `python3` on PATH. */
export function interpreterPath(language: SandboxLanguage, interpreter?: string, searchPath = process.env.PATH ?? ""): string {
  if (language === "javascript") {
    const node = findExecutable(interpreter ?? process.execPath, searchPath);
    if (!node) throw new ConfigError(`interpreter "${interpreter}" for javascript is not an executable on PATH`);
    return node;
  }
  const python = findExecutable(interpreter ?? "python3", searchPath);
  if (!python) {
    throw new ConfigError(
      `python code execution needs ${interpreter ? `"${interpreter}"` : "`python3` on PATH"}: install Debian's \`python3\` package or set \`interpreter\``,
    );
  }
  return python;
}

const runtimes = new Map<string, Promise<Runtime>>();

/** Resolves shims and symlinks to the real interpreter, once per path. */
export function resolveRuntime(language: SandboxLanguage, command: string): Promise<Runtime> {
  const key = `${language}\u0000${command}`;
  let runtime = runtimes.get(key);
  if (!runtime) {
    runtime = language === "python" ? resolvePython(command) : Promise.resolve(resolveNode(command));
    runtimes.set(key, runtime);
    runtime.catch(() => runtimes.delete(key));
  }
  return runtime;
}

const underUsr = (path: string) => path === "/usr" || path.startsWith("/usr/");

function outsideUsr(paths: readonly string[]): string[] {
  const kept = [...new Set(paths.map((path) => realpathSync(path)))].filter((path) => !underUsr(path) && path !== "/");
  // A folder inside another kept folder is mounted with it.
  return kept.filter((path) => !kept.some((other) => other !== path && path.startsWith(`${other}/`)));
}

async function resolvePython(command: string): Promise<Runtime> {
  // Run on the host, outside the sandbox: it only asks the interpreter where it lives (pyenv shims
  // and venvs hide the real binary).
  const script = "import json, site, sys; print(json.dumps([sys.executable, sys.prefix, sys.base_prefix, site.getsitepackages()]))";
  let found: [string, string, string, string[]];
  try {
    const { stdout } = await run(command, ["-I", "-c", script], { timeout: 30_000, encoding: "utf8" });
    found = JSON.parse(stdout.trim()) as [string, string, string, string[]];
  } catch (error) {
    throw new ConfigError(`python interpreter "${command}" could not report its location: ${errorMessage(error)}`, {
      cause: error,
    });
  }
  const executable = realpathSync(found[0]);
  return { executable, roots: outsideUsr([found[1], found[2], dirname(executable)]), sitePackages: found[3].filter((folder) => existsSync(folder)) };
}

function resolveNode(command: string): Runtime {
  const executable = realpathSync(command);
  const prefix = dirname(dirname(executable));
  // Mount the whole install (nvm, /opt/node) only when it looks like one, never a bare home folder.
  const install = existsSync(join(prefix, "lib", "node_modules")) || existsSync(join(prefix, "include", "node"));
  return { executable, roots: outsideUsr([install ? prefix : dirname(executable)]) };
}
