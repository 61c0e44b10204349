import { expect, it } from "vitest";
import { runSandboxed, type SandboxOptions } from "../../src/sandbox/index.ts";
import { describeWithSandbox } from "../support/sandbox.ts";
import { eventually, processesWith, uniqueMarker } from "./helpers.ts";

const py = (code: string, tests = "", extra: Partial<SandboxOptions> = {}) => runSandboxed({ language: "python", code, tests, ...extra });
const js = (code: string, tests = "", extra: Partial<SandboxOptions> = {}) =>
  runSandboxed({ language: "javascript", code, tests, ...extra });

/** Runs `start`, watching how many processes carry `marker` while it runs; returns the result and the peak. */
async function watch<T>(marker: string, start: () => Promise<T>): Promise<{ result: T; peak: number }> {
  let peak = 0;
  let running = true;
  const poll = (async () => {
    while (running) {
      peak = Math.max(peak, processesWith(marker).length);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  })();
  const result = await start();
  running = false;
  await poll;
  return { result, peak };
}

const gone = (marker: string) => eventually(() => (processesWith(marker).length === 0 ? true : undefined), 1000);

describeWithSandbox("runSandboxed: limits", () => {
  it("kills a python infinite loop at the timeout together with every process it started", async () => {
    const marker = uniqueMarker("loop-py");
    const code = `import subprocess, sys\nsubprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", "${marker}"])\nwhile True:\n    pass\n`;
    const { result, peak } = await watch(marker, () => py(code, "", { timeoutMs: 1000 }));
    expect(peak).toBe(1);
    expect(result).toMatchObject({ status: "timeout", signal: "SIGKILL", message: "ran longer than 1000 ms and was killed" });
    expect(result.durationMs).toBeLessThan(4000);
    expect(await gone(marker)).toBe(true);
  });

  it("kills a javascript infinite loop at the timeout together with every process it started", async () => {
    const marker = uniqueMarker("loop-js");
    const code = `require("node:child_process").spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)", "${marker}"]);\nfor (;;) {}\n`;
    const { result, peak } = await watch(marker, () => js(code, "", { timeoutMs: 1000 }));
    expect(peak).toBe(1);
    expect(result.status).toBe("timeout");
    expect(await gone(marker)).toBe(true);
  });

  it("holds a fork bomb at maxProcesses and kills all of it at the timeout", async () => {
    const marker = uniqueMarker("bomb");
    const bomb = "import os\\nwhile True:\\n    try:\\n        os.fork()\\n    except OSError:\\n        pass\\n";
    const code = `import os, sys\nos.execv(sys.executable, [sys.executable, "-c", "${bomb}", "${marker}"])\n`;
    const { result, peak } = await watch(marker, () => py(code, "", { timeoutMs: 1500, maxProcesses: 16 }));
    expect(result.status).toBe("timeout");
    expect(peak).toBeGreaterThan(4);
    expect(peak).toBeLessThanOrEqual(16);
    expect(await gone(marker)).toBe(true);
  });

  it("reports a python fork loop that runs out of processes as crashed", async () => {
    const marker = uniqueMarker("fork-py");
    const code = [
      "import os, sys, time",
      "children = 0",
      "try:",
      "    while True:",
      "        if os.fork() == 0:",
      `            os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(600)", "${marker}"])`,
      "        children += 1",
      "finally:",
      "    print('children', children, flush=True)",
    ].join("\n");
    const { result, peak } = await watch(marker, () => py(code, "", { maxProcesses: 12 }));
    expect(result.status).toBe("crashed");
    expect(result.message).toMatch(/^BlockingIOError: \[Errno 11\] Resource temporarily unavailable/);
    const children = Number(result.stdout.match(/children (\d+)/)?.[1]);
    expect(children).toBeGreaterThan(4);
    expect(children).toBeLessThan(12);
    expect(peak).toBeLessThan(12);
    expect(await gone(marker)).toBe(true);
  });

  it("reports a javascript child_process spawn loop that runs out of processes as crashed", async () => {
    const marker = uniqueMarker("spawn-js");
    const code = `const { spawn } = require("node:child_process");\nlet n = 0;\nfunction more() {\n  const child = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)", "${marker}"]);\n  child.on("spawn", () => { n++; setImmediate(more); });\n  child.on("error", (error) => { console.log("children", n); throw error; });\n}\nmore();\n`;
    const { result, peak } = await watch(marker, () => js(code, "", { maxProcesses: 48 }));
    expect(result.status).toBe("crashed");
    expect(result.message).toMatch(/EAGAIN/);
    expect(Number(result.stdout.match(/children (\d+)/)?.[1])).toBeGreaterThan(0);
    expect(peak).toBeLessThan(48);
    expect(await gone(marker)).toBe(true);
  });

  it("refuses a 2 GB python allocation and reports a crash, while one under the cap succeeds", async () => {
    expect((await py("x = bytearray(100 * 1024 ** 2)\ndef size():\n    return len(x)\n", "assert size() == 100 * 1024 ** 2\n", { memoryMb: 256 })).status).toBe(
      "passed",
    );
    const hog = await py("x = bytearray(2 * 1024 ** 3)\n", "", { memoryMb: 256 });
    expect(hog).toMatchObject({ status: "crashed" });
    expect(hog.message).toMatch(/^MemoryError/);
    const growing = await py("chunks = []\nwhile True:\n    chunks.append(b'x' * 10 ** 7)\n", "", { memoryMb: 256 });
    expect(growing.status).toBe("crashed");
    expect(growing.message).toMatch(/^MemoryError/);
  });

  it("stops a javascript heap hog and a 2 GB buffer and reports crashes", async () => {
    const heap = await js("const keep = [];\nfor (;;) keep.push(new Array(1e6).fill(1));\n", "", { memoryMb: 256 });
    expect(heap).toMatchObject({ status: "crashed", signal: "SIGABRT" });
    expect(heap.message).toMatch(/JavaScript heap out of memory/);
    const buffer = await js("const b = Buffer.alloc(2 * 1024 ** 3);\n", "", { memoryMb: 256 });
    expect(buffer.status).toBe("crashed");
    expect(buffer.message).toMatch(/^RangeError: Array buffer allocation failed/);
  });
});
