import { existsSync, lstatSync, readdirSync, readlinkSync } from "node:fs";
import { dirname, isAbsolute, normalize } from "node:path";

/** Where things live inside every sandbox. */
export const SANDBOX_WORK = "/sandbox";
export const SANDBOX_INPUT = "/harness";
/**
 * Folders the sandbox replaces with its own empty tmpfs. The host's files there are hidden, not absent:
 * a project or interpreter under the host's /tmp is not in the sandbox's /tmp unless mounted into it.
 */
export const PRIVATE_ROOTS = ["/tmp", "/dev/shm"] as const;

/** Top-level system folders: mirrored as the same symlink when the host merged them into /usr. */
const SYSTEM_DIRS = ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"];
/**
 * The few /etc entries programs need: the dynamic loader's cache, TLS settings (node reads
 * openssl.cnf at start), alternatives symlinks, time zone, `localhost`, Debian's python config.
 * Not passwd, shadow, or anything with secrets.
 */
const ETC_ENTRIES = ["ld.so.cache", "ld.so.conf", "ld.so.conf.d", "ssl", "alternatives", "localtime", "hosts", "nsswitch.conf"];

export interface Layout {
  /** Host folder mounted read-only at /harness: the harness's own files, the same for every run. */
  readonly harnessDir: string;
  /** Interpreter installs outside /usr, mounted read-only at the same path. */
  readonly runtimeRoots: readonly string[];
  /**
   * Size of each writable mount (/sandbox, /tmp, /dev/shm): tmpfs, so the program writes nothing to the
   * host's disk, and a full one is ENOSPC inside the sandbox, never on the host.
   */
  readonly diskBytes: number;
  /** Running as root: bwrap runs privileged and the program is switched to an unprivileged uid inside. */
  readonly privileged: boolean;
  /** File descriptor bwrap reads the seccomp filter from, if any. */
  readonly seccompFd: number | undefined;
}

/** Folders that exist inside the sandbox; a missing path outside them means the host was reached for. */
export function visibleRoots(runtimeRoots: readonly string[]): string[] {
  return ["/usr", ...SYSTEM_DIRS, "/etc", "/proc", "/dev", "/tmp", SANDBOX_INPUT, SANDBOX_WORK, ...runtimeRoots];
}

/**
 * Whether a path a sandboxed program found missing is one of the host's, hidden by a private root:
 * it, or a folder on the way to it below /tmp or /dev/shm, exists on the host (the project folder of a
 * clone under /tmp, say). Checked on the host after the run; the program learns nothing from it.
 */
export function hiddenByPrivateRoot(path: string, runtimeRoots: readonly string[] = []): boolean {
  if (!isAbsolute(path)) return false;
  const normal = normalize(path);
  const root = PRIVATE_ROOTS.find((dir) => normal.startsWith(`${dir}/`));
  // Interpreter installs are mounted at their own path, so what is missing there is missing on the host too.
  if (!root || runtimeRoots.some((dir) => normal === dir || normal.startsWith(`${dir}/`))) return false;
  for (let at = normal; at !== root && at !== "/"; at = dirname(at)) if (existsSync(at)) return true;
  return false;
}

function ancestors(path: string): string[] {
  const out: string[] = [];
  for (let dir = dirname(path); dir !== "/"; dir = dirname(dir)) out.unshift(dir);
  return out;
}

/** The bwrap arguments up to (not including) the command to run. */
export function bwrapArgs(layout: Layout): string[] {
  const args = [
    "--unshare-ipc",
    "--unshare-pid",
    "--unshare-net",
    "--unshare-uts",
    "--unshare-cgroup-try",
    "--hostname",
    "sandbox",
    "--die-with-parent",
    "--new-session",
  ];
  // As root, bwrap cannot map the program to a non-root uid inside a user namespace, and uid 0 is
  // exempt from RLIMIT_NPROC; so it runs privileged and the harness (or setpriv) switches to a random
  // unprivileged uid before the program.
  if (!layout.privileged) args.push("--unshare-user", "--disable-userns");
  else args.push("--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID");

  // Parents first, world-readable (bwrap would create them 0700 as root).
  args.push("--perms", "0755", "--dir", "/etc");

  args.push("--ro-bind", "/usr", "/usr");
  for (const dir of SYSTEM_DIRS) {
    const stat = lstatSafe(dir);
    if (stat?.isSymbolicLink()) args.push("--symlink", readlinkSync(dir), dir);
    else if (stat?.isDirectory()) args.push("--ro-bind", dir, dir);
  }
  for (const entry of [...ETC_ENTRIES, ...pythonEtc()]) args.push("--ro-bind-try", `/etc/${entry}`, `/etc/${entry}`);

  args.push(
    "--proc",
    "/proc",
    "--dev",
    "/dev",
    "--perms",
    "1777",
    "--size",
    String(layout.diskBytes),
    "--tmpfs",
    "/tmp",
    // POSIX semaphores and shared memory (python's multiprocessing) live here.
    "--perms",
    "1777",
    "--size",
    String(layout.diskBytes),
    "--tmpfs",
    "/dev/shm",
    // bwrap's /dev is a tmpfs the sandbox's user owns inside a user namespace: read-only, or it is
    // writable space no cap covers. Devices stay usable; /dev/shm is a mount of its own.
    "--remount-ro",
    "/dev",
  );
  // Interpreter installs after the private /tmp and /dev/shm, so one that lives there (a venv or a
  // node under /tmp) is mounted into them rather than hidden by them. Bind sources are host paths.
  const dirs = new Set<string>();
  for (const root of layout.runtimeRoots) for (const dir of ancestors(root)) dirs.add(dir);
  for (const dir of dirs) if (!(PRIVATE_ROOTS as readonly string[]).includes(dir)) args.push("--perms", "0755", "--dir", dir);
  for (const root of layout.runtimeRoots) args.push("--ro-bind", root, root);
  args.push(
    "--ro-bind",
    layout.harnessDir,
    SANDBOX_INPUT,
    "--perms",
    "1777",
    "--size",
    String(layout.diskBytes),
    "--tmpfs",
    SANDBOX_WORK,
    // The root itself is a tmpfs bwrap made; left writable it would be unmetered memory.
    "--remount-ro",
    "/",
    "--chdir",
    SANDBOX_WORK,
    "--clearenv",
    "--setenv",
    "PATH",
    "/usr/local/bin:/usr/bin:/bin",
    "--setenv",
    "HOME",
    SANDBOX_WORK,
    "--setenv",
    "TMPDIR",
    SANDBOX_WORK,
    "--setenv",
    "LANG",
    "C.UTF-8",
  );
  if (layout.seccompFd !== undefined) args.push("--seccomp", String(layout.seccompFd));
  return args;
}

function lstatSafe(path: string) {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}

let etcPython: string[] | undefined;

/** Debian's python reads /etc/python3.X (sitecustomize); harmless to mount, needed to start. */
function pythonEtc(): string[] {
  etcPython ??= existsSync("/etc") ? readdirSync("/etc").filter((name) => name.startsWith("python")) : [];
  return etcPython;
}
