import { mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { collect, ConfigError, createSample, type Sample } from "../../../src/index.ts";
import { executeFilter } from "../../../operators/filter/execute.ts";
import { findExecutable } from "../../../src/sandbox/host.ts";
import { processesWith, uniqueMarker } from "../../sandbox/helpers.ts";
import { itWithSandbox } from "../../support/sandbox.ts";

function program(id: string, code: string, tests = "", extra: Record<string, unknown> = {}): Sample {
  return createSample({ id, data: { code, tests, ...extra }, source: "test" });
}

const TESTS = "assert add(2, 3) == 5\n";

describe("executeFilter", () => {
  itWithSandbox("keeps passing python with its run time and rejects each failure with its own reason", async () => {
    const samples = [
      program("ok", "def add(a, b):\n    return a + b\n", TESTS),
      program("wrong", "def add(a, b):\n    return a * b\n", TESTS),
      program("syntax", "def add(a, b)\n    return a + b\n", TESTS),
      program("slow", "while True:\n    pass\n", TESTS),
      program("hog", "x = bytearray(2 * 1024 ** 3)\n", TESTS),
      program("escape", "open('/etc/hosts', 'w').write('1.2.3.4 example.com')\n", TESTS),
    ];
    const { out, rejects, metrics } = await collect(executeFilter({ language: "python", timeoutMs: 1000, memoryMb: 256 }), samples);

    expect(out.map((s) => s.id)).toEqual(["ok"]);
    expect(out[0]!.scores.exec_ms).toBeGreaterThan(0);
    const byId = Object.fromEntries(rejects.map((r) => [r.sample.id, r]));
    expect(Object.fromEntries(rejects.map((r) => [r.sample.id, r.reason]))).toEqual({
      wrong: "test_failed",
      syntax: "syntax_error",
      slow: "timeout",
      hog: "crashed",
      escape: "sandbox_violation",
    });
    expect(byId.wrong!.message).toBe("AssertionError (at tests.py:1: assert add(2, 3) == 5)");
    expect(byId.syntax!.message).toMatch(/^solution: .*SyntaxError: expected ':'$/s);
    expect(byId.slow).toMatchObject({ message: "ran longer than 1000 ms and was killed", threshold: 1000 });
    expect(byId.slow!.value).toBeGreaterThanOrEqual(1000);
    expect(byId.hog!.message).toMatch(/^MemoryError/);
    expect(byId.escape!.message).toMatch(/^OSError: \[Errno 30\] Read-only file system: '\/etc\/hosts'/);
    expect(byId.wrong!.raw).toBeUndefined();
    expect(metrics.counters("execute_filter")).toMatchObject({ in: 6, out: 1 });
  });

  itWithSandbox("runs javascript read through functions, with check(entry point) HumanEval style", async () => {
    const samples = [
      createSample({ id: "a", data: { fn: "function inc(x) { return x + 1; }", name: "inc" }, source: "test" }),
      createSample({ id: "b", data: { fn: "function inc(x) { return x + 2; }", name: "inc" }, source: "test" }),
    ];
    const { out, rejects } = await collect(
      executeFilter({
        language: "javascript",
        code: (s) => String(s.data.fn),
        tests: () => "const assert = require('node:assert');\nfunction check(candidate) { assert.equal(candidate(1), 2); }\n",
        entryPoint: "name",
      }),
      samples,
    );
    expect(out.map((s) => s.id)).toEqual(["a"]);
    expect(rejects.map((r) => [r.sample.id, r.reason])).toEqual([["b", "test_failed"]]);
    expect(rejects[0]!.message).toMatch(/^AssertionError: 3 == 2/);
  });

  itWithSandbox("keeps the program's output on rejects when asked", async () => {
    const { rejects } = await collect(
      executeFilter({ language: "python", keepOutput: true }),
      [program("noisy", "print('hello from the program')\ndef add(a, b):\n    return 0\n", TESTS)],
    );
    const raw = JSON.parse(rejects[0]!.raw!) as { stdout: string; stderr: string };
    expect(raw.stdout).toBe("hello from the program\n");
    expect(raw.stderr).toMatch(/Traceback \(most recent call last\):[\s\S]*AssertionError\n$/);
  });

  itWithSandbox("runs at most `concurrency` sandboxes at once", async () => {
    const marker = uniqueMarker("concurrency");
    const code = `import subprocess, sys\nsubprocess.run([sys.executable, "-c", "import time; time.sleep(0.4)", "${marker}"])\n`;
    const samples = Array.from({ length: 6 }, (_, i) => program(`p${i}`, code));
    let peak = 0;
    const timer = setInterval(() => (peak = Math.max(peak, processesWith(marker).length)), 20);
    const { out } = await collect(executeFilter({ language: "python", concurrency: 2 }), samples).finally(() => clearInterval(timer));
    expect(out).toHaveLength(6);
    expect(peak).toBe(2);
  });

  itWithSandbox("declares the fields it reads and hashes its options into provenance", () => {
    const a = executeFilter({ language: "python", code: "solution", tests: "test", entryPoint: "entry_point" });
    const b = executeFilter({ language: "python", code: "solution", tests: "test", entryPoint: "entry_point", timeoutMs: 5000 });
    expect(a.meta.reads).toEqual(["solution", "test", "entry_point"]);
    expect(a.meta.name).toBe("execute_filter");
    expect(a.meta.paramsHash).not.toBe(b.meta.paramsHash);
  });

  describe("when the host lacks what it needs", () => {
    const saved = process.env.PATH;
    const bin = mkdtempSync(join(tmpdir(), "rxsynth-path-"));
    afterAll(() => {
      process.env.PATH = saved;
      rmSync(bin, { recursive: true, force: true });
    });

    it("fails at construction with a ConfigError naming Debian's bubblewrap when bwrap is not on PATH", () => {
      process.env.PATH = bin;
      try {
        expect(() => executeFilter({ language: "python" })).toThrow(ConfigError);
        expect(() => executeFilter({ language: "python" })).toThrow(/install Debian's `bubblewrap` package/);
      } finally {
        process.env.PATH = saved;
      }
    });

    itWithSandbox("fails at construction with a ConfigError when python3 is missing", () => {
      for (const tool of ["bwrap", "prlimit", "setpriv"]) {
        const found = findExecutable(tool);
        if (found) symlinkSync(found, join(bin, tool));
      }
      process.env.PATH = bin;
      try {
        expect(() => executeFilter({ language: "python" })).toThrow(/python code execution needs `python3` on PATH/);
        expect(() => executeFilter({ language: "javascript" })).not.toThrow();
        expect(() => executeFilter({ language: "python", interpreter: "/no/such/python3" })).toThrow(ConfigError);
      } finally {
        process.env.PATH = saved;
      }
    });
  });
});
