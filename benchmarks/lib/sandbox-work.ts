// Fixtures and the bare (unsandboxed) runner for benchmarks/sandbox.ts: HumanEval as the project ships it,
// deterministic broken and adversarial variants of each solution, a generated JavaScript set, a worker pool.
import { spawn, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { runInNewContext } from "node:vm";
import { gunzipSync } from "node:zlib";
import { resolveDataPath } from "../../src/index.ts";

export interface Problem {
  readonly task_id: string;
  readonly prompt: string;
  readonly canonical_solution: string;
  readonly test: string;
  readonly entry_point: string;
}

/** openai/human-eval (MIT), from the project's data/ folder, read as test/sandbox/humaneval.test.ts reads it. */
export function humanEval(): Problem[] {
  return gunzipSync(readFileSync(resolveDataPath("builtin:HumanEval.jsonl.gz")))
    .toString("utf8")
    .split("\n")
    .filter((line) => line.trim())
    .map((line) => JSON.parse(line) as Problem);
}

/** One program and its tests, as runSandboxed takes them. */
export interface Program {
  readonly id: string;
  /** The variant's kind ("canonical", "stub", "os_exit", ...). */
  readonly kind: string;
  /** Adversarial: built to make a naive harness report a pass without computing the answers. */
  readonly attack: boolean;
  readonly code: string;
  readonly tests: string;
  readonly entryPoint?: string;
}

// ---------------------------------------------------------------- python variants

/**
 * Completions appended to the prompt, which ends inside the entry function's docstring: an indented
 * line is the function's body, an unindented one is module level.
 */
const PYTHON_ATTACKS: Record<string, string> = {
  // An answer that equals anything (and survives the usual arithmetic and comparisons in the tests).
  always_equal: [
    "    class _E:",
    "        def __eq__(s, o): return True",
    "        __ne__ = lambda s, o: False",
    "        __lt__ = __le__ = __gt__ = __ge__ = lambda s, o: True",
    "        __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = lambda s, o: s",
    "        __abs__ = __neg__ = __round__ = lambda s, *a: s",
    "        __bool__ = lambda s: True",
    "        __hash__ = lambda s: 0",
    "    return _E()",
    "",
  ].join("\n"),
  // Leave before any assertion can fail, with a success exit code.
  sys_exit: "    import sys; sys.exit(0)\n",
  os_exit: "    import os; os._exit(0)\n",
  // Leave while the module loads, before the tests are even defined.
  load_exit: "    pass\n\n\nimport os\nos._exit(0)\n",
  // Look up the stack for the harness's reporter and report a pass with it, then leave.
  frame_walk: [
    "    import os, sys",
    "    f = sys._getframe(1)",
    "    while f is not None:",
    "        for scope in (f.f_locals, f.f_globals):",
    "            for name in ('verdict', 'report', 'finish'):",
    "                fn = scope.get(name)",
    "                if callable(fn):",
    "                    try:",
    "                        if name == 'verdict': fn('passed')",
    "                        elif name == 'report': fn('verdict', 'passed')",
    "                        else: fn(0)",
    "                    except BaseException:",
    "                        pass",
    "        f = f.f_back",
    "    os._exit(0)",
    "",
  ].join("\n"),
  // Write a made-up verdict line to every low descriptor (where a result channel would be), then leave.
  fd_forge: [
    "    import json, os",
    "    line = (json.dumps({'event': 'verdict', 'status': 'passed', 'message': '', 'trace': '', 'missing': []}) + '\\n').encode()",
    "    for fd in range(1, 10):",
    "        try:",
    "            os.write(fd, line)",
    "        except OSError:",
    "            pass",
    "    os._exit(0)",
    "",
  ].join("\n"),
  // Turn the uncaught AssertionError at the end into a clean exit.
  excepthook: "    import os, sys\n    sys.excepthook = lambda *a: os._exit(0)\n    return None\n",
};

export const PYTHON_ATTACK_KINDS = Object.keys(PYTHON_ATTACKS);
export const PYTHON_PLAIN_KINDS = ["stub", "last_return_0"];

/**
 * For each problem, prompt + canonical_solution with the entry function's last `return` (by position,
 * nested functions and lambdas left alone) changed to `return 0`; undefined where there is none. Done with
 * Python's own parser so a return spread over several lines is replaced whole.
 */
export function lastReturnZero(python: string, problems: readonly Problem[]): (string | undefined)[] {
  const script = `
import ast, json, sys
def own_returns(node):
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        if isinstance(child, ast.Return):
            yield child
        yield from own_returns(child)
out = []
for item in json.load(sys.stdin):
    code = item["code"]
    try:
        tree = ast.parse(code)
    except SyntaxError:
        out.append(None)
        continue
    fns = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == item["entry"]]
    returns = sorted(own_returns(fns[-1]), key=lambda r: (r.lineno, r.col_offset)) if fns else []
    if not returns:
        out.append(None)
        continue
    r = returns[-1]
    lines = code.split("\\n")
    first, last = lines[r.lineno - 1], lines[r.end_lineno - 1]
    # col offsets are in UTF-8 bytes
    head = first.encode()[: r.col_offset].decode()
    tail = last.encode()[r.end_col_offset :].decode()
    lines[r.lineno - 1 : r.end_lineno] = [head + "return 0" + tail]
    out.append("\\n".join(lines))
print(json.dumps(out))
`;
  const input = JSON.stringify(problems.map((p) => ({ code: p.prompt + p.canonical_solution, entry: p.entry_point })));
  const result = spawnSync(python, ["-I", "-c", script], { input, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  if (result.status !== 0) throw new Error(`could not build the last_return_0 variants:\n${result.stderr}`);
  return (JSON.parse(result.stdout) as (string | null)[]).map((code) => code ?? undefined);
}

export function canonical(problem: Problem): Program {
  return { id: `${problem.task_id}/canonical`, kind: "canonical", attack: false, code: problem.prompt + problem.canonical_solution, tests: problem.test, entryPoint: problem.entry_point };
}

/** Every broken variant of every problem: the plain wrong ones first, then the attacks. */
export function pythonBroken(problems: readonly Problem[], zeroed: readonly (string | undefined)[]): Program[] {
  const out: Program[] = [];
  problems.forEach((p, i) => {
    const base = { tests: p.test, entryPoint: p.entry_point, attack: false };
    out.push({ ...base, id: `${p.task_id}/stub`, kind: "stub", code: `${p.prompt}    return None\n` });
    const zero = zeroed[i];
    if (zero !== undefined) out.push({ ...base, id: `${p.task_id}/last_return_0`, kind: "last_return_0", code: zero });
  });
  for (const [kind, body] of Object.entries(PYTHON_ATTACKS)) {
    for (const p of problems) out.push({ id: `${p.task_id}/${kind}`, kind, attack: true, code: p.prompt + body, tests: p.test, entryPoint: p.entry_point });
  }
  return out;
}

/** The file a bare run executes: program, tests, and the HumanEval-style call to check(). */
export function bareSource(program: Program): string {
  return `${program.code}\n${program.tests}\n${program.entryPoint ? `\ncheck(${program.entryPoint})\n` : ""}`;
}

// ---------------------------------------------------------------- javascript set

type Template = (k: number) => { name: string; body: string; cases: unknown[][] };

const JS_TEMPLATES: Template[] = [
  (k) => ({ name: `sum_plus_${k}`, body: `(xs) { let t = ${k}; for (const x of xs) t += x; return t; }`, cases: [[[1, 2, 3]], [[]], [[-5, 10]], [[k, 2 * k]]] }),
  (k) => ({ name: `repeat_${k}`, body: `(s) { return s.repeat(${(k % 3) + 1}) + "!"; }`, cases: [["ab"], [""], ["xyz"]] }),
  (k) => ({
    name: `fib_mod_${k}`,
    body: `(n) { let a = 0, b = 1; for (let i = 0; i < n; i++) [a, b] = [b, (a + b) % ${1000 + k}]; return a; }`,
    cases: [[0], [1], [10], [30 + (k % 5)]],
  }),
  (k) => ({ name: `vowels_${k}`, body: `(s) { return ${k} + [...s.toLowerCase()].filter((c) => "aeiou".includes(c)).length; }`, cases: [["Hello World"], [""], ["AEIOUxyz"]] }),
  (k) => ({
    name: `is_prime_${k}`,
    body: `(n) { if (n < 2) return false; for (let d = 2; d * d <= n; d++) if (n % d === 0) return false; return true; }`,
    cases: [[k + 2], [97], [100], [1]],
  }),
  (k) => ({ name: `rev_words_${k}`, body: `(s) { return s.split(" ").reverse().join(" ") + "${k}"; }`, cases: [["a b c"], ["hello"], ["one two"]] }),
  (k) => ({
    name: `top_${k}`,
    body: `(xs) { return [...xs].sort((a, b) => b - a).slice(0, ${(k % 3) + 1}); }`,
    cases: [[[5, 1, 9, 3]], [[2]], [[7, 7, 1, 8, 0]]],
  }),
  (k) => ({ name: `gcd_${k}`, body: `(a, b) { while (b) [a, b] = [b, a % b]; return a + ${k}; }`, cases: [[12, 18], [7, 13], [100, 75]] }),
];

export const JS_ATTACK_KINDS = ["js_exit", "js_patch_assert"];

/** `count` generated JavaScript programs with assert tests, and each one's broken and adversarial variants. */
export function javascriptSet(count: number): { canonical: Program[]; broken: Program[] } {
  const canonicalPrograms: Program[] = [];
  const broken: Program[] = [];
  for (let i = 0; i < count; i++) {
    const { name, body, cases } = JS_TEMPLATES[i % JS_TEMPLATES.length]!(i);
    const code = `function ${name}${body}\n`;
    const fn = runInNewContext(`${code}\n${name}`) as (...args: unknown[]) => unknown;
    // Expected values come from running the reference here, so the tests are right by construction.
    const tests = [
      `const assert = require("node:assert");`,
      ...cases.map((args) => `assert.deepStrictEqual(${name}(${args.map((a) => JSON.stringify(a)).join(", ")}), ${JSON.stringify(fn(...args))});`),
      "",
    ].join("\n");
    const id = `js/${i}`;
    canonicalPrograms.push({ id: `${id}/canonical`, kind: "js_canonical", attack: false, code, tests });
    broken.push({ id: `${id}/js_stub`, kind: "js_stub", attack: false, code: `function ${name}() { return null; }\n`, tests });
    broken.push({ id: `${id}/js_exit`, kind: "js_exit", attack: true, code: `function ${name}() { process.exit(0); }\n`, tests });
    broken.push({
      id: `${id}/js_patch_assert`,
      kind: "js_patch_assert",
      attack: true,
      code: [
        `const __assert = require("node:assert");`,
        `for (const key of Object.keys(__assert)) if (typeof __assert[key] === "function") __assert[key] = () => {};`,
        `console.assert = () => {};`,
        `function ${name}() { return null; }`,
        "",
      ].join("\n"),
      tests,
    });
  }
  return { canonical: canonicalPrograms, broken };
}

// ---------------------------------------------------------------- running

export interface BareResult {
  readonly passed: boolean;
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly timedOut: boolean;
  readonly stderr: string;
}

/**
 * `executable file` with no sandbox: passed means exit code 0, as a naive harness decides. Output is read
 * (and mostly dropped) as the sandbox's runner reads it; the process group is killed at the timeout.
 */
export function runBare(executable: string, file: string, cwd: string, timeoutMs: number): Promise<BareResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(executable, [file], {
      cwd,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", LANG: "C.UTF-8" },
    });
    let stderr = "";
    child.stdout.on("data", () => undefined);
    child.stderr.on("data", (chunk: Buffer) => {
      if (stderr.length < 4096) stderr += chunk.toString("utf8");
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, "SIGKILL");
      } catch {
        // Already gone.
      }
    }, timeoutMs);
    child.once("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once("close", (exitCode, signal) => {
      clearTimeout(timer);
      resolve({ passed: exitCode === 0 && !timedOut, exitCode, signal, timedOut, stderr });
    });
  });
}

/** Runs `work` over `items` with `concurrency` workers, each taking the next item when it is free. */
export async function pool<T, R>(items: readonly T[], concurrency: number, work: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    for (;;) {
      const index = next++;
      if (index >= items.length) return;
      results[index] = await work(items[index]!, index);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, worker));
  return results;
}
