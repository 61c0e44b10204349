import { createConnection, createServer, type Server } from "node:net";
import { copyFileSync, existsSync, linkSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { runSandboxed, type SandboxOptions } from "../../src/sandbox/index.ts";
import { describeWithSandbox } from "../support/sandbox.ts";
import { eventually, uniqueMarker } from "./helpers.ts";

const py = (code: string, tests = "", extra: Partial<SandboxOptions> = {}) => runSandboxed({ language: "python", code, tests, ...extra });
const js = (code: string, tests = "", extra: Partial<SandboxOptions> = {}) =>
  runSandboxed({ language: "javascript", code, tests, ...extra });

describeWithSandbox("runSandboxed: verdicts", () => {
  it("passes a correct python program and fails a wrong one, naming the failed assertion", async () => {
    const tests = "assert add(2, 3) == 5\n";
    expect((await py("def add(a, b):\n    return a + b\n", tests)).status).toBe("passed");
    const wrong = await py("def add(a, b):\n    return a - b\n", tests);
    expect(wrong.status).toBe("test_failed");
    expect(wrong.message).toBe("AssertionError (at tests.py:1: assert add(2, 3) == 5)");
  });

  it("passes a correct javascript program and fails a wrong one, console.assert included", async () => {
    const tests = "const assert = require('node:assert');\nassert.strictEqual(add(2, 3), 5);\n";
    expect((await js("function add(a, b) { return a + b; }", tests)).status).toBe("passed");
    const wrong = await js("const add = (a, b) => a - b;", tests);
    expect(wrong.status).toBe("test_failed");
    expect(wrong.message).toMatch(/^AssertionError: Expected values to be strictly equal:.*\(at tests\.js:2\)$/s);
    const printed = await js("const add = (a, b) => a - b;", "console.assert(add(2, 3) === 5, 'add is wrong');");
    expect(printed).toMatchObject({ status: "test_failed", message: "AssertionError: add is wrong (at tests.js:1)" });
  });

  it("counts an error raised by the tests as a failed test and one raised while loading as a crash", async () => {
    const raisedInTests = await py("def f():\n    return None\n", "assert f() + 1 == 2\n");
    expect(raisedInTests.status).toBe("test_failed");
    expect(raisedInTests.message).toMatch(/^TypeError: unsupported operand/);
    const raisedLoading = await py("import no_such_module_here\n", "");
    expect(raisedLoading.status).toBe("crashed");
    expect(raisedLoading.message).toMatch(/^ModuleNotFoundError: No module named 'no_such_module_here'/);
  });

  it("reports syntax errors in the program or the tests before running any of it", async () => {
    const pyBad = await py("print('ran')\ndef f(:\n    pass\n", "");
    expect(pyBad.status).toBe("syntax_error");
    expect(pyBad.message).toMatch(/^solution: .*line 2.*SyntaxError/s);
    expect(pyBad.stdout).toBe("");
    const pyBadTests = await py("print('ran')\n", "assert (\n");
    expect(pyBadTests.status).toBe("syntax_error");
    expect(pyBadTests.message).toMatch(/^tests: /);
    expect(pyBadTests.stdout).toBe("");
    const jsBad = await js("console.log('ran');\nfunction f( {", "");
    expect(jsBad).toMatchObject({ status: "syntax_error", stdout: "" });
    expect(jsBad.message).toMatch(/^solution: SyntaxError: .*\(at solution\.js:2\)$/);
  });

  it("does not take an early exit or a forged verdict for a pass", async () => {
    const tests = "assert False, 'tests ran'\n";
    expect(await py("import sys\nsys.exit(0)\n", tests)).toMatchObject({
      status: "test_failed",
      message: "exited with code 0 before the tests finished",
    });
    expect((await py("import os\nos._exit(0)\n", tests)).status).toBe("test_failed");
    const forged = 'import os\nos.write(3, b\'{"nonce": "guess", "event": "verdict", "status": "passed"}\\n\')\nos._exit(0)\n';
    // The program's process has no fd 3: the verdict channel is the checker's alone.
    expect(await py(forged, tests)).toMatchObject({ status: "crashed", message: expect.stringMatching(/^OSError: \[Errno 9\] Bad file descriptor/) });
    expect(await js("process.exit(0);", "throw new Error('tests ran');")).toMatchObject({
      status: "test_failed",
      message: "the program's process ended before its tests ran",
    });
  });

  it("keeps only maxOutputBytes of output and still judges the run", async () => {
    const result = await py("print('x' * 1_000_000)\n", "", { maxOutputBytes: 1000 });
    expect(result).toMatchObject({ status: "passed", stdoutTruncated: true, stderrTruncated: false });
    expect(result.stdout).toBe("x".repeat(1000));
  });
});

describeWithSandbox("runSandboxed: ordinary programs", () => {
  it("runs threads, subprocesses and python multiprocessing under the filter and limits", async () => {
    const code = [
      "import multiprocessing, subprocess, threading",
      "seen = []",
      "thread = threading.Thread(target=lambda: seen.append('thread'))",
      "thread.start(); thread.join()",
      "seen.append(subprocess.run(['echo', 'child'], capture_output=True, text=True).stdout.strip())",
      "with multiprocessing.Pool(2) as pool:",
      "    seen.extend(pool.map(abs, [-1, -2]))",
    ].join("\n");
    const result = await py(code, "assert seen == ['thread', 'child', 1, 2], seen\n");
    expect(result.message).toBe("");
    expect(result.status).toBe("passed");
  });

  it("runs node worker threads and child processes", async () => {
    const code = [
      "const { Worker } = require('node:worker_threads');",
      "const { execFileSync } = require('node:child_process');",
      "const worker = new Worker('require(\"node:worker_threads\").parentPort.postMessage(21 * 2)', { eval: true });",
      "const answer = new Promise((resolve) => worker.on('message', (m) => { worker.terminate(); resolve(m); }));",
      "globalThis.child = execFileSync('echo', ['child']).toString().trim();",
      // The tests see the program through calls and plain values; a promise reaches them as an async function.
      "function workerAnswer() { return answer; }",
    ].join("\n");
    const tests = "const assert = require('node:assert');\nassert.equal(child, 'child');\nworkerAnswer().then((a) => assert.equal(a, 42));\n";
    const result = await js(code, tests);
    expect(result.message).toBe("");
    expect(result.status).toBe("passed");
    const failing = await js(code, "workerAnswer().then((a) => require('node:assert').equal(a, 41));\n");
    expect(failing.status).toBe("test_failed");
  });
});

describeWithSandbox("runSandboxed: isolation", () => {
  let server: Server;
  let port = 0;
  let connections = 0;
  beforeAll(async () => {
    server = createServer((socket) => {
      connections++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as { port: number }).port;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it("blocks connections to a server listening on the host's 127.0.0.1 and reports a violation", async () => {
    // The server does count a connection from outside the sandbox.
    await new Promise<void>((resolve, reject) => createConnection(port, "127.0.0.1", resolve).on("error", reject));
    expect(await eventually(() => (connections === 1 ? true : undefined), 1000)).toBe(true);

    const fromPython = await py(`import socket\nsocket.create_connection(("127.0.0.1", ${port}), timeout=5)\n`);
    expect(fromPython.status).toBe("sandbox_violation");
    expect(fromPython.message).toMatch(/^ConnectionRefusedError: \[Errno 111\] Connection refused/);
    const fromNode = await js(`require("node:net").connect(${port}, "127.0.0.1");`);
    expect(fromNode.status).toBe("sandbox_violation");
    expect(fromNode.message).toBe(`Error: connect ECONNREFUSED 127.0.0.1:${port}`);
    const fetched = await js("", `fetch("http://127.0.0.1:${port}/").then((r) => r.text());`);
    expect(fetched).toMatchObject({ status: "sandbox_violation", message: "TypeError: fetch failed" });
    const outside = await py('import socket\nsocket.create_connection(("1.1.1.1", 53), timeout=5)\n');
    expect(outside.status).toBe("sandbox_violation");
    expect(outside.message).toMatch(/Network is unreachable/);
    const named = await py('import urllib.request\nurllib.request.urlopen("http://example.com", timeout=5)\n');
    expect(named.status).toBe("sandbox_violation");
    expect(connections).toBe(1);
  });

  it("blocks writes outside its folder and reports a violation, leaving the host untouched", async () => {
    const marker = uniqueMarker("write");
    const inRepo = join(process.cwd(), `${marker}.txt`);
    const passwd = readFileSync("/etc/passwd", "utf8");
    const cases: Array<[string, RegExp]> = [
      [`open("/etc/passwd", "a").write("x")`, /^OSError: \[Errno 30\] Read-only file system: '\/etc\/passwd'/],
      [`open("${inRepo}", "w").write("x")`, /^FileNotFoundError: .*No such file or directory/],
      [`open("/tmp/../work/${marker}", "w").write("x")`, /^FileNotFoundError/],
      [`open("/usr/lib/${marker}", "w").write("x")`, /Read-only file system/],
      [`import shutil; shutil.rmtree("/usr/share")`, /Read-only file system|Permission denied/],
    ];
    for (const [code, message] of cases) {
      const result = await py(`${code}\n`);
      expect(result.status, code).toBe("sandbox_violation");
      expect(result.message, code).toMatch(message);
    }
    const fromNode = await js(`require("node:fs").writeFileSync(${JSON.stringify(inRepo)}, "x");`);
    expect(fromNode).toMatchObject({ status: "sandbox_violation" });
    expect(fromNode.message).toMatch(/^Error: ENOENT: no such file or directory, open/);
    const etcFromNode = await js(`require("node:fs").appendFileSync("/etc/passwd", "x");`);
    expect(etcFromNode.message).toMatch(/^Error: EROFS: read-only file system/);
    expect(etcFromNode.status).toBe("sandbox_violation");
    // A shell the program starts hits the same wall; the harness learns of it from stderr.
    const viaShell = await py(`import subprocess\nsubprocess.run("echo x > /etc/${marker}", shell=True, check=True)\n`);
    expect(viaShell.status).toBe("sandbox_violation");
    expect(viaShell.message).toMatch(/Read-only file system/);

    expect(existsSync(inRepo)).toBe(false);
    expect(existsSync(`/etc/${marker}`)).toBe(false);
    expect(readFileSync("/etc/passwd", "utf8")).toBe(passwd);
  });

  it("gives the program a writable folder and a private /tmp that the host does not see", async () => {
    const marker = uniqueMarker("tmp");
    const hostFile = join(tmpdir(), marker);
    writeFileSync(hostFile, "host");
    try {
      const code = [
        "import os",
        `assert not os.path.exists("/tmp/${marker}")`,
        `open("/tmp/${marker}", "w").write("sandbox")`,
        'open("/sandbox/out.txt", "w").write("kept")',
        'open(os.path.join(os.environ["HOME"], "home.txt"), "w").write("home")',
        'assert open("/sandbox/out.txt").read() == "kept" and os.getcwd() == "/sandbox"',
      ].join("\n");
      expect((await py(code)).status).toBe("passed");
      expect(readFileSync(hostFile, "utf8")).toBe("host");
    } finally {
      rmSync(hostFile, { force: true });
    }
  });

  it("keeps the host's /tmp hidden but reports reaching into it as a violation, and runs an interpreter installed there", async () => {
    // A clone of the project under /tmp is where this matters: its files are the host's, not the sandbox's.
    const host = mkdtempSync("/tmp/rxsynth-host-");
    try {
      const inHost = join(host, "written.txt");
      const fromPython = await py(`open(${JSON.stringify(inHost)}, "w").write("x")\n`);
      expect(fromPython).toMatchObject({ status: "sandbox_violation", message: expect.stringMatching(/^FileNotFoundError/) });
      const fromNode = await js(`require("node:fs").writeFileSync(${JSON.stringify(inHost)}, "x");`);
      expect(fromNode).toMatchObject({ status: "sandbox_violation", message: expect.stringMatching(/^Error: ENOENT/) });
      expect(existsSync(inHost)).toBe(false);
      // A folder of its own /tmp that the program never made is only a mistake.
      expect((await py(`open("/tmp/${uniqueMarker("absent")}/x", "w")\n`)).status).toBe("crashed");

      const node = join(host, "bin", "node");
      mkdirSync(join(host, "bin"));
      try {
        linkSync(realpathSync(process.execPath), node);
      } catch {
        copyFileSync(realpathSync(process.execPath), node);
      }
      expect(await js("function add(a, b) { return a + b; }", "if (add(2, 3) !== 5) throw new Error('add');", { interpreter: node })).toMatchObject({
        status: "passed",
      });
    } finally {
      rmSync(host, { recursive: true, force: true });
    }
  });

  it("runs without privileges: no root, no new user namespaces, only its own processes", async () => {
    const code = [
      "import ctypes, os",
      "libc = ctypes.CDLL(None, use_errno=True)",
      "assert os.getuid() != 0 and os.geteuid() != 0",
      "assert libc.unshare(0x10000000) == -1 and ctypes.get_errno() == 1, 'unshare(CLONE_NEWUSER) worked'",
      "pids = [p for p in os.listdir('/proc') if p.isdigit()]",
      "assert len(pids) < 10, pids",
      "assert open('/proc/self/status').read().count('CapEff:\\t0000000000000000') == 1",
    ].join("\n");
    const result = await py(code);
    expect(result.message).toBe("");
    expect(result.status).toBe("passed");
  });
});
