import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, it } from "vitest";
import { findExecutable } from "../../src/sandbox/host.ts";
import { describeWithSandbox } from "../support/sandbox.ts";

// As root the sandbox drops to a spare uid with setpriv; as anyone else bwrap makes a user namespace
// instead. This suite runs the second path too, by running a script as `nobody`.
const NOBODY = 65534;
const setpriv = findExecutable("setpriv");
const asNobody = (args: string[], env: Record<string, string>) =>
  spawnSync(setpriv!, [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups", ...args], {
    cwd: process.cwd(),
    env,
    encoding: "utf8",
    timeout: 60_000,
  });
const canDrop =
  process.getuid?.() === 0 && setpriv !== undefined && asNobody(["test", "-r", join(process.cwd(), "src", "sandbox", "run.ts")], {}).status === 0;

describeWithSandbox("runSandboxed as an unprivileged user", () => {
  it.skipIf(!canDrop)("contains, classifies and cleans up the same way inside a user namespace", () => {
    const home = mkdtempSync(join(tmpdir(), "rxsynth-nobody-"));
    chmodSync(home, 0o777);
    try {
      const script = join(home, "probe.mts");
      writeFileSync(
        script,
        `import { runSandboxed } from ${JSON.stringify(join(process.cwd(), "src", "sandbox", "index.ts"))};
const py = (code: string, extra = {}) => runSandboxed({ language: "python", code, tests: "", ...extra });
const results = {
  uid: process.getuid!(),
  passed: (await py("import os\\nassert os.getuid() == ${NOBODY}\\nopen('/sandbox/x', 'w').write('x')\\n")).status,
  write: (await py("open('/etc/passwd', 'a').write('x')\\n")).status,
  userns: (await py("import ctypes\\nassert ctypes.CDLL(None).unshare(0x10000000) == -1\\n")).status,
  net: (await py("import socket\\nsocket.create_connection(('1.1.1.1', 53), timeout=5)\\n")).status,
  memory: (await py("x = bytearray(2 * 1024 ** 3)\\n", { memoryMb: 256 })).status,
  fork: (await py("import os\\nwhile True:\\n    os.fork()\\n", { maxProcesses: 16 })).status,
  loop: (await py("while True:\\n    pass\\n", { timeoutMs: 800 })).status,
  js: (await runSandboxed({ language: "javascript", code: "const x = 1;", tests: "require('node:assert').equal(x, 2)" })).status,
  // One uid for the checker and the program here: the checker's memory and descriptors must still be out of reach.
  checker: (await runSandboxed({ language: "python", code: "import os\\ndef reach():\\n    opened = []\\n    for path in ('/proc/%d/mem' % os.getppid(), '/proc/%d/fd/3' % os.getppid(), '/proc/%d/environ' % os.getppid()):\\n        try:\\n            os.close(os.open(path, os.O_RDONLY))\\n            opened.append(path)\\n        except OSError:\\n            pass\\n    return opened\\n", tests: "assert reach() != []\\n" })).status,
  // Same uid: the program can signal the checker, but a SIGINT must not become a KeyboardInterrupt the tests catch.
  sigint: (await runSandboxed({ language: "python", code: "import os, signal, time\\ndef add(a, b):\\n    os.kill(os.getppid(), signal.SIGINT)\\n    time.sleep(2)\\n    return a - b\\n", tests: "try:\\n    result = add(2, 3)\\nexcept BaseException:\\n    result = 5\\nassert result == 5\\n", timeoutMs: 5000 })).status,
  devWrite: (await py("open('/dev/hog', 'wb').write(b'x' * (1 << 20))\\n")).status,
  locked: (await py("import os\\nos.makedirs('/sandbox/a/b')\\nopen('/sandbox/a/b/f', 'w').write('x')\\nos.chmod('/sandbox/a/b', 0)\\nos.chmod('/sandbox/a', 0)\\n")).status,
};
console.log(JSON.stringify(results));
`,
      );
      const run = asNobody([process.execPath, "--import", "tsx", script], {
        HOME: home,
        TMPDIR: home,
        PATH: "/usr/local/bin:/usr/bin:/bin",
      });
      expect(run.stderr).toBe("");
      expect(JSON.parse(run.stdout.trim().split("\n").at(-1)!)).toEqual({
        uid: NOBODY,
        passed: "passed",
        write: "sandbox_violation",
        userns: "passed",
        net: "sandbox_violation",
        memory: "crashed",
        fork: "crashed",
        loop: "timeout",
        js: "test_failed",
        checker: "test_failed",
        sigint: "crashed",
        devWrite: "sandbox_violation",
        locked: "passed",
      });
      // Every sandbox folder was removed, the one the program locked up included.
      expect(readdirSync(home).filter((name) => name.startsWith("rxsynth-sandbox-"))).toEqual([]);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
});
