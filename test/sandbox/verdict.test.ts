// The checker/program split and the disk cap, beyond the attacks of red-team.test.ts: what crosses the
// channel, what a program that writes into it gets, and what a program filling its disk costs the host.
import { mkdirSync, readdirSync, statfsSync, utimesSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, it } from "vitest";
import { runSandboxed, type SandboxOptions } from "../../src/sandbox/index.ts";
import { describeWithSandbox } from "../support/sandbox.ts";
import { eventually, uniqueMarker } from "./helpers.ts";

const py = (code: string, tests = "", extra: Partial<SandboxOptions> = {}) => runSandboxed({ language: "python", code, tests, ...extra });
const js = (code: string, tests = "", extra: Partial<SandboxOptions> = {}) => runSandboxed({ language: "javascript", code, tests, ...extra });

const freeBytes = () => {
  const stats = statfsSync(tmpdir());
  return stats.bavail * stats.bsize;
};

// First in the file: the sweep runs at the first sandbox of a process.
describeWithSandbox("runSandboxed: folders of earlier versions", () => {
  it("removes sandbox folders that earlier versions left in the host's temp folder", async () => {
    const stale = join(tmpdir(), `rxsynth-sandbox-${uniqueMarker("stale")}`);
    mkdirSync(join(stale, "work"), { recursive: true });
    const hourAgo = new Date(Date.now() - 3600_000);
    utimesSync(stale, hourAgo, hourAgo);
    expect((await py("x = 1\n", "assert x == 1\n")).status).toBe("passed");
    const name = stale.slice(tmpdir().length + 1);
    expect(await eventually(() => (readdirSync(tmpdir()).includes(name) ? undefined : true), 2000)).toBe(true);
  });
});

describeWithSandbox("runSandboxed: the checker and the program", () => {
  it("hands the tests plain data rebuilt from builtins, subclasses and containers included", async () => {
    const code = [
      "import collections",
      "Point = collections.namedtuple('Point', 'x y')",
      "def point(): return Point(1, 2)",
      "def counts(s): return collections.Counter(s)",
      "def shapes(): return [(1, 2), {3, 4}, frozenset({5}), {'k': b'v'}, 1.5, -0.0, float('inf'), 2 ** 100, 1j, None, True]",
      "def twice(x, *, times=2): return x * times",
    ].join("\n");
    const tests = [
      "assert point() == (1, 2) and type(point()) is tuple",
      "assert counts('aab') == {'a': 2, 'b': 1} and type(counts('a')) is dict",
      "assert shapes() == [(1, 2), {3, 4}, frozenset({5}), {'k': b'v'}, 1.5, -0.0, float('inf'), 2 ** 100, 1j, None, True]",
      "assert str(shapes()[5]) == '-0.0'",
      "assert twice('ab', times=3) == 'ababab'",
    ].join("\n");
    expect(await py(code, tests)).toMatchObject({ status: "passed", message: "" });
    const jsCode = "function shapes() { return [new Map([[1, 'a']]), new Set([2]), new Date(0), undefined, -0, NaN, 10n, { a: [1, { b: null }] }]; }";
    const jsTests =
      "const assert = require('assert');\nassert.deepStrictEqual(shapes(), [new Map([[1, 'a']]), new Set([2]), new Date(0), undefined, -0, NaN, 10n, { a: [1, { b: null }] }]);";
    expect(await js(jsCode, jsTests)).toMatchObject({ status: "passed", message: "" });
  });

  it("carries a call's changes to its arguments back to the tests' own objects, nested containers kept", async () => {
    const code = "def sort_rows(grid):\n    for row in grid:\n        row.sort()\n    grid.append([0])\n\ndef bump(d, *, key):\n    d[key] += 1\n";
    const tests = "grid = [[3, 1], [2, 0]]\nfirst = grid[0]\nsort_rows(grid)\nassert grid == [[1, 3], [0, 2], [0]]\nassert first is grid[0] and first == [1, 3]\ncounts = {'a': 1}\nbump(counts, key='a')\nassert counts == {'a': 2}\n";
    expect(await py(code, tests)).toMatchObject({ status: "passed", message: "" });
    const jsCode = "function sortInPlace(xs) { xs.sort((a, b) => a - b); }\nfunction tag(o) { o.seen = true; delete o.drop; }";
    const jsTests = "const assert = require('assert');\nconst xs = [3, 1, 2];\nsortInPlace(xs);\nassert.deepStrictEqual(xs, [1, 2, 3]);\nconst o = { drop: 1 };\ntag(o);\nassert.deepStrictEqual(o, { seen: true });";
    expect(await js(jsCode, jsTests)).toMatchObject({ status: "passed", message: "" });
  });

  it("rebuilds the program's exceptions so tests can catch them by builtin type, and names where they were raised", async () => {
    const code = "def parse(s):\n    return int(s)\n";
    const tests = "try:\n    parse('x')\nexcept ValueError as e:\n    assert 'invalid literal' in str(e)\nelse:\n    assert False\nparse('y')\n";
    const result = await py(code, tests);
    expect(result.status).toBe("test_failed");
    expect(result.message).toMatch(/^ValueError: invalid literal for int\(\) with base 10: 'y' \(at solution\.py:2: return int\(s\)\)/);
    const thrown = await js("function parse(s) { throw new RangeError('bad ' + s); }", "try { parse('x'); } catch (e) { if (!(e instanceof RangeError)) throw e; }\nparse('y');");
    expect(thrown).toMatchObject({ status: "test_failed", message: "RangeError: bad y (at solution.js:1)" });
  });

  it("calls a program that writes into the checker's channel tampering", async () => {
    // The program's only descriptors besides stdio are its two pipe ends; writing to all of them reaches the answers one.
    // A forged answer ahead of the real one: the real one then arrives as the answer to the next call.
    const pyCode = "import os\nforged = False\ndef add(a, b):\n    global forged\n    if not forged:\n        forged = True\n        for fd in range(3, 32):\n            try: os.write(fd, b'{\"op\": \"return\", \"id\": 1, \"value\": 3}\\n')\n            except OSError: pass\n    return a - b\n";
    expect(await py(pyCode, "assert add(1, 2) == 3\nassert add(2, 2) == 4\n")).toMatchObject({ status: "tampering" });
    const garbage = "import os\ndef add(a, b):\n    for fd in range(3, 32):\n        try: os.write(fd, b'not json\\n')\n        except OSError: pass\n    return 3\n";
    expect(await py(garbage, "assert add(1, 2) == 3\n")).toMatchObject({ status: "tampering" });
    const jsCode = "const fs = require('fs');\nfunction add(a, b) { fs.writeSync(3, 'not json\\n'); return 3; }";
    expect(await js(jsCode, "console.assert(add(1, 2) === 3);")).toMatchObject({ status: "tampering" });
  });

  it("passes a program that answers every call with plain data even when it prints fake verdicts", async () => {
    const code = 'def add(a, b):\n    print(\'{"event": "verdict", "status": "failed"}\')\n    return a + b\n';
    expect((await py(code, "assert add(1, 2) == 3\n")).status).toBe("passed");
  });
});

describeWithSandbox("runSandboxed: the disk cap", () => {
  it("stops a program writing 2 GB at its cap, without the host's disk losing more than the cap", async () => {
    const before = freeBytes();
    let lowest = before;
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        lowest = Math.min(lowest, freeBytes());
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    const writer = "def fill(path):\n    with open(path, 'wb') as f:\n        for _ in range(2048):\n            f.write(b'x' * (1 << 20))\n";
    const [work, temporary, shared] = await Promise.all([
      py(writer, "fill('big')\n"),
      py(writer, "fill('/tmp/big')\n"),
      js("function fill() { const fs = require('fs'); const mb = Buffer.alloc(1 << 20); for (let i = 0; i < 2048; i++) fs.appendFileSync('/dev/shm/big', mb); }", "fill();"),
    ]);
    watching = false;
    await watcher;
    for (const result of [work, temporary]) {
      expect(result.status).toBe("crashed");
      expect(result.message).toMatch(/No space left on device .*the sandbox's writable space of 32 MB is full/);
      expect(result.durationMs).toBeLessThan(5000);
    }
    expect(shared.status).toBe("crashed");
    expect(shared.message).toMatch(/ENOSPC.*the sandbox's writable space of 32 MB is full/);
    // Other processes share this disk; what matters is that 3 x 2 GB never reached it.
    expect((before - lowest) / 2 ** 20).toBeLessThan(64);
  });

  it("sizes the writable space by diskMb", async () => {
    const code = "def write(mb):\n    with open('f', 'wb') as f:\n        f.write(b'x' * (mb << 20))\n    return 'ok'\n";
    expect((await py(code, "assert write(12) == 'ok'\n", { diskMb: 16 })).status).toBe("passed");
    expect(await py(code, "assert write(12) == 'ok'\n", { diskMb: 8 })).toMatchObject({
      status: "crashed",
      message: expect.stringMatching(/writable space of 8 MB is full/),
    });
  });

});
