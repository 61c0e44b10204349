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

// Found by a review after the red team: each was a wrong solution passing, or a host limit escaped.
describeWithSandbox("runSandboxed: the review's findings", () => {
  it("fails tests that report failure through node:test or process.exitCode, and passes them when they succeed", async () => {
    const wrong = "function add(a, b) { return a - b; }";
    const right = "function add(a, b) { return a + b; }";
    const nodeTest = "const test = require('node:test');\nconst assert = require('node:assert');\ntest('add', () => { assert.strictEqual(add(2, 3), 5); });";
    const exitCode = "if (add(2, 3) !== 5) { console.error('FAIL'); process.exitCode = 1; }";
    expect((await js(wrong, nodeTest)).status).toBe("test_failed");
    expect((await js(wrong, exitCode)).status).toBe("test_failed");
    expect((await js(right, nodeTest)).status).toBe("passed");
    expect((await js(right, exitCode + "\nprocess.exit(0);")).status).toBe("passed");
  });

  it("runs the solution's doctests and unittest.main() as they would run in one process", async () => {
    const wrong = 'def add(a, b):\n    """\n    >>> add(2, 3)\n    5\n    """\n    return a - b\n';
    const doctest = "import doctest\nresult = doctest.testmod()\nassert result.failed == 0 and result.attempted == 1, result\n";
    expect((await py(wrong, doctest)).status).toBe("test_failed");
    expect((await py(wrong.replace("a - b", "a + b"), doctest)).status).toBe("passed");
    const unit = "import unittest\nclass T(unittest.TestCase):\n    def test_add(self):\n        self.assertEqual(add(2, 3), 5)\nunittest.main()\n";
    expect((await py(wrong, unit)).status).toBe("test_failed");
    expect((await py(wrong.replace("a - b", "a + b"), unit)).status).toBe("passed");
  });

  it("does not hand the tests a TypeError of its own when an argument cannot cross", async () => {
    const lazy = "def total(xs):\n    return 0\n";
    const expectsTypeError = "try:\n    total(object())\nexcept TypeError:\n    pass\nelse:\n    raise AssertionError('no TypeError')\n";
    expect(await py(lazy, expectsTypeError)).toMatchObject({ status: "test_failed", message: expect.stringMatching(/only plain data crosses/) });
    const huge = "try:\n    total(10 ** 5000)\nexcept ValueError:\n    pass\nelse:\n    raise AssertionError('no ValueError')\n";
    expect((await py(lazy, huge)).status).toBe("test_failed");
    const jsLazy = "function total(xs) { return 0; }";
    expect((await js(jsLazy, "require('assert').throws(() => total(() => 1), TypeError);")).status).toBe("test_failed");
  });

  it("keeps the solution's exception classes catchable by their builtin base, and returns iterators and big numbers", async () => {
    const code = "class Invalid(ValueError):\n    pass\ndef check_age(n):\n    if n < 0:\n        raise Invalid('negative')\n    return n\ndef evens(n):\n    return (i for i in range(0, n, 2))\ndef fact(n):\n    out = 1\n    for i in range(2, n + 1):\n        out *= i\n    return out\n";
    const tests = "try:\n    check_age(-1)\nexcept ValueError as e:\n    assert type(e).__name__ == 'Invalid'\nelse:\n    assert False\nassert list(evens(7)) == [0, 2, 4, 6]\ng = evens(3)\nassert next(g) == 0\nassert len(str(fact(2000))) > 5000\nassert '\\ud800' + 'x' == check_age.__doc__ or True\n";
    expect(await py(code, tests)).toMatchObject({ status: "passed", message: "" });
  });

  it("lets the solution use files the tests made, as one user would", async () => {
    const code = "def read(path):\n    with open(path) as f:\n        return f.read()\n";
    const tests = "import tempfile\nwith tempfile.NamedTemporaryFile('w', suffix='.txt', delete=False) as f:\n    f.write('hello')\nassert read(f.name) == 'hello'\n";
    expect(await py(code, tests)).toMatchObject({ status: "passed", message: "" });
  });

  it("refuses shared memory no limit counts, and keeps /dev read-only", async () => {
    const hogs = [
      "import mmap\ndef hog():\n    m = mmap.mmap(-1, 1536 << 20)\n    m[:] = b'x' * len(m)\n    return 1\n",
      "import os\ndef hog():\n    fd = os.memfd_create('x')\n    os.ftruncate(fd, 400 << 20)\n    os.write(fd, b'x' * (1 << 20))\n    return 1\n",
      "import ctypes\ndef hog():\n    libc = ctypes.CDLL(None, use_errno=True)\n    shm = libc.shmget(0, 1 << 30, 0o1600)\n    assert shm >= 0, 'shmget refused'\n    return 1\n",
      "def hog():\n    with open('/dev/hog', 'wb') as f:\n        f.write(b'x' * (64 << 20))\n    return 1\n",
    ];
    for (const code of hogs) {
      const result = await py(code, "assert hog() == 1\n", { memoryMb: 128 });
      expect(result.status, code).not.toBe("passed");
    }
    // Devices still work on the read-only /dev.
    expect((await py("def null():\n    with open('/dev/null', 'w') as f:\n        f.write('x')\n    return open('/dev/urandom', 'rb').read(4).__len__()\n", "assert null() == 4\n")).status).toBe("passed");
  });
});
