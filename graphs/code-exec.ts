// Code with execution feedback: problem -> solution -> the problem's shown unit tests run in the sandbox ->
// on failure the error goes back to the model for up to `maxRepairs` repair rounds -> the held-out unit
// tests, which no prompt ever quotes, decide which solutions are kept.
// Follows Self-Debugging (Chen et al. 2023, "Teaching Large Language Models to Self-Debug": the execution
// error and the unit tests are fed back and the model explains and fixes its code) and the
// execution-verified data of Code Llama (Rozière et al. 2023: solutions kept only when the unit tests pass).
//
// Tests: each problem's tests are split, by a hash of (seed, task_id), into shown tests (in the solve and
// the repair prompts, and what the repair rounds run) and held-out tests (run once on the final solution;
// they alone decide the verdict). A model cannot pass by special-casing the expected values it was shown.
// `heldOutShare` of the tests are held out, at least one and, for 2+ tests, at least one shown; a problem
// with a single test has it held out, so its repair rounds see only whether the program loads.
//
// Input: by default builtin:code-exec-problems.jsonl, 24 practice problems written for rxsynth (not an
// evaluation set: its output does not contaminate a benchmark), each `{task_id, prompt, entry_point,
// canonical_solution, tests: [assert statements]}`. Any JSONL (optionally gzipped) of that shape, or of
// HumanEval's (`test` defining check(candidate)), can be given as problemsPath. HumanEval
// (builtin:HumanEval.jsonl.gz, 164 problems, MIT, openai/human-eval) is an evaluation set: choosing it
// logs a warning that the output must not train a model evaluated on HumanEval. Its check() bodies are
// split into one test per assert; the few with loops or setup stay one indivisible test (then held out).
// Differences from the paper, kept on purpose: the paper debugs against a benchmark's given tests and
// measures on that benchmark; here the output is training data, so the default problems are not a
// benchmark and each problem's tests are split by a seeded share, the verdict coming from tests no prompt
// quotes. Feedback is the sandbox's error message after the shown tests (the paper's unit-test feedback),
// not its execution-trace or line-by-line explanation variants. maxRepairs 2, temperature 0.2 and
// heldOutShare 0.4 are this graph's choices, not numbers taken from the paper; its test pins them.
// Sandbox: bubblewrap (src/sandbox), one fresh sandbox per run: no network, capped memory and time.
//
// Attempts: attempt 1 is the first solution; every repair round is a STEP on the same sample (repair_1 ...
// repair_k, each with an "attempt N: <previous status> -> <status>" note), not a new sample: the sample is one
// problem's solution being refined, and `history` keeps every failed attempt's status and error. The loop is
// bounded by construction: the graph holds exactly maxRepairs repair operators.
//
// Output columns (data): task_id, prompt, entry_point, setup (test code run before the tests, unquoted;
// HumanEval's METADATA, else ""), tests (all the problem's tests), held_out (indices into `tests` of the
// held-out ones, for audit), solution (the code the model wrote), generated_tests (the model's own asserts,
// run with the shown tests; "" unless generateTests), program (what ran: prompt + solution), status
// ("passed"), attempts (1 + repair rounds used), history (JSON list of {attempt, status, error} for failed
// attempts). Scores: attempts, exec_ms (the last shown-test run's wall time), held_out_tests (how many).
// Rejects: "verified" with the last sandbox status on the shown tests (syntax_error, test_failed, timeout,
// crashed, sandbox_violation, tampering) and `value` = attempts made; "held_out" with the sandbox status on
// the held-out tests and `value` = how many ran; or an LLM reason (refusal, truncated, empty, llm_error)
// from the call that failed.
//
//   rxsynth run graphs/code-exec.ts --set count=20 --out out/code
//   rxsynth run graphs/code-exec.ts --set seedSolutions=canonical --set count=10 --out out/code-smoke
//   rxsynth run graphs/code-exec.ts --set problemsPath=builtin:HumanEval.jsonl.gz --out out/code-he   (warns)
import { readFile } from "node:fs/promises";
import { basename } from "node:path";
import { gunzipSync } from "node:zlib";
import {
  ConfigError,
  InputError,
  defineAsyncMap,
  defineFanOut,
  defineFilter,
  defineGraph,
  drop,
  resolveDataPath,
  stableHash,
  type Operator,
  type Sample,
  type SampleData,
  type Source,
} from "../src/index.ts";
import type { ChatMessage } from "../src/llm/index.ts";
import { runSandboxed, sandboxTools, type SandboxResult } from "../src/sandbox/index.ts";
import { generate } from "../operators/generate/generate.ts";
import { asker } from "../operators/generate/llm-map.ts";
import { openEndpoint } from "./lib/endpoint.ts";

export const defaults = {
  /** Problems to attempt (the first `count` of the file). */
  count: 20,
  /** Practice problems written for rxsynth; `builtin:HumanEval.jsonl.gz` only on purpose (it is an evaluation set). */
  problemsPath: "builtin:code-exec-problems.jsonl",
  /** Share of each problem's tests held out of every prompt to decide the verdict (at least one; one shown when there are 2+). */
  heldOutShare: 0.4,
  /** Repair rounds after a failed first attempt (each: error to the model, new code, rerun of the shown tests). */
  maxRepairs: 2,
  /** The model also writes assert statements, run with the shown tests (never with the held-out ones). */
  generateTests: false,
  /** "none": the model writes attempt 1; "canonical": attempt 1 is the problem's reference solution (smoke runs). */
  seedSolutions: "none" as "none" | "canonical",
  temperature: 0.2,
  /** Wall-clock limit per sandboxed run, sandbox start included. */
  timeoutMs: 10_000,
  /** Sandboxes at once; each is a process tree, so keep it near the core count. */
  sandboxConcurrency: 2,
  /** Price per 1M tokens over the built-in table: "input=<usd>,output=<usd>[,cached=<usd>]" or JSON by model; "" = the table. RXSYNTH_PRICE wins. */
  price: "",
  seed: 42,
};

/** A problem as the graph runs it, whichever file shape it came from. */
export interface Problem {
  readonly task_id: string;
  readonly prompt: string;
  readonly entry_point: string;
  /** Test code run before any test (never quoted in a prompt). */
  readonly setup: string;
  /** Standalone Python test snippets, each calling the entry point by name. */
  readonly tests: readonly string[];
  readonly canonical_solution?: string;
}

/** The one line said when the problems are HumanEval's. */
export const HUMANEVAL_WARNING =
  "code-exec: WARNING: these problems are HumanEval, an evaluation set; this run's output must not be used to train a model that will be evaluated on HumanEval";

/** Whether problems come from HumanEval: by file name or by HumanEval's task ids. */
export function isHumanEval(path: string, problems: readonly Problem[]): boolean {
  return /humaneval/i.test(basename(path)) || problems.some((problem) => problem.task_id.startsWith("HumanEval/"));
}

/**
 * HumanEval's `test` (module code defining check(candidate)) as separate tests: each top-level statement
 * of check's body that is an assert becomes one test, with `candidate` renamed to the entry point; the
 * module code around check becomes `setup`. A body with anything but asserts (loops, helpers, imports)
 * cannot be split without breaking it: it stays one test that calls check itself.
 */
export function testsFromCheck(test: string, entryPoint: string): { setup: string; tests: string[] } {
  const lines = test.split("\n");
  const start = lines.findIndex((line) => /^def check\s*\(\s*candidate\s*\)\s*:/.test(line));
  if (start < 0) return { setup: "", tests: [test] };
  let end = start + 1;
  while (end < lines.length && (lines[end]!.trim() === "" || /^\s/.test(lines[end]!))) end++;
  const body = lines.slice(start + 1, end);
  const indent = /^\s*/.exec(body.find((line) => line.trim() !== "") ?? "")![0];
  const statements: string[][] = [];
  for (const line of body) {
    if (line.trim() === "" || line.trim().startsWith("#")) continue;
    const atTop = line.startsWith(indent) && !/^\s/.test(line.slice(indent.length));
    if (atTop || statements.length === 0) statements.push([line.slice(indent.length)]);
    else statements[statements.length - 1]!.push(line.startsWith(indent) ? line.slice(indent.length) : line.trimStart());
  }
  const whole = { setup: "", tests: [`${test}\n\ncheck(${entryPoint})\n`] };
  if (statements.length === 0 || statements.some((statement) => !/^assert\b/.test(statement[0]!))) return whole;
  const setup = [...lines.slice(0, start), ...lines.slice(end)].join("\n").trim();
  return { setup, tests: statements.map((statement) => statement.join("\n").replace(/\bcandidate\b/g, entryPoint)) };
}

/** How many of `count` tests are held out: the share, rounded, at least one, and never all when there are 2+. */
export function heldOutCount(count: number, share: number): number {
  if (count <= 1) return count;
  return Math.min(count - 1, Math.max(1, Math.round(share * count)));
}

/** Indices of the held-out tests of a problem, ascending: a seeded order by hash, so the split is the same in every run and on every worker. */
export function heldOutIndices(taskId: string, count: number, share: number, seed: number): number[] {
  const order = Array.from({ length: count }, (_, index) => index).sort((a, b) => {
    const ka = stableHash([seed, taskId, a]);
    const kb = stableHash([seed, taskId, b]);
    return ka < kb ? -1 : ka > kb ? 1 : a - b;
  });
  return order.slice(0, heldOutCount(count, share)).sort((a, b) => a - b);
}

/** Problems from JSONL, gzipped or not (a path or `builtin:NAME`, see resolveDataPath): `tests` (a list of asserts) or HumanEval's `test`. */
export async function readProblems(option: string, count: number): Promise<Problem[]> {
  const path = resolveDataPath(option);
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    throw new ConfigError(`code-exec: cannot read problems from ${path} (set problemsPath)`, { cause: error });
  }
  const text = (path.endsWith(".gz") ? gunzipSync(bytes) : bytes).toString("utf8");
  const problems: Problem[] = [];
  for (const [index, line] of text.split("\n").entries()) {
    if (problems.length >= count) break;
    if (!line.trim()) continue;
    const where = { file: path, line: index + 1 };
    const record = JSON.parse(line) as Record<string, unknown>;
    for (const field of ["task_id", "prompt", "entry_point"]) {
      if (typeof record[field] !== "string") throw new InputError(`missing string field`, { ...where, field });
    }
    const entryPoint = record.entry_point as string;
    let split: { setup: string; tests: string[] };
    if (Array.isArray(record.tests)) {
      if (record.tests.length === 0 || record.tests.some((test) => typeof test !== "string" || !test.trim())) {
        throw new InputError(`tests must be a non-empty list of Python test statements`, { ...where, field: "tests" });
      }
      split = { setup: typeof record.setup === "string" ? record.setup : "", tests: record.tests as string[] };
    } else if (typeof record.test === "string") {
      split = testsFromCheck(record.test, entryPoint);
    } else {
      throw new InputError(`missing tests (a list of asserts) or test (HumanEval's check)`, { ...where, field: "tests" });
    }
    problems.push({
      task_id: record.task_id as string,
      prompt: record.prompt as string,
      entry_point: entryPoint,
      ...split,
      ...(typeof record.canonical_solution === "string" ? { canonical_solution: record.canonical_solution } : {}),
    });
  }
  return problems;
}

/** The code of an answer: its ```python block (the longest, when there are several), else the whole text. */
export function extractCode(text: string): string {
  const blocks = [...text.matchAll(/```[ \t]*(?:python|py|python3)?[ \t]*\n([\s\S]*?)```/gi)].map((match) => match[1]!);
  if (blocks.length === 0) return text.trim();
  return blocks.reduce((longest, block) => (block.length > longest.length ? block : longest)).trimEnd();
}

/**
 * The program to run. A solution that defines the entry point again is appended after the prompt (which
 * keeps the prompt's imports and helper functions; a function whose body is only its docstring is valid
 * Python, so the later definition wins); otherwise the solution is taken as the body the prompt ends in.
 */
export function assembleProgram(prompt: string, entryPoint: string, solution: string): string {
  const definesEntry = new RegExp(`^\\s*(?:async\\s+)?def\\s+${entryPoint}\\s*\\(`, "m").test(solution);
  return definesEntry ? `${prompt}\n\n${solution}\n` : `${prompt}${solution}\n`;
}

/** Only the assert statements of a model's answer: anything else it wrote could not be trusted to be a test. */
export function extractAsserts(text: string): string {
  return extractCode(text)
    .split("\n")
    .filter((line) => /^assert\s/.test(line))
    .join("\n");
}

interface Attempt {
  readonly attempt: number;
  readonly status: string;
  readonly error: string;
}

/** The tests of a sample that may be shown: all but the held-out ones, in the problem's order. */
export function shownTests(data: SampleData): string[] {
  const heldOut = new Set(data.held_out as number[]);
  return (data.tests as string[]).filter((_, index) => !heldOut.has(index));
}

/** The problems as a source whose sample ids are the task ids; each carries its held-out split. */
function problemSource(problems: readonly Problem[], share: number, seed: number): Source {
  return {
    name: "problems",
    origin: "human",
    fields: ["task_id", "prompt", "entry_point", "setup", "tests", "held_out", "canonical_solution"],
    size: async () => problems.length,
    async *batches({ from }) {
      if (from < problems.length) {
        yield problems.slice(from).map((problem, i) => ({
          position: from + i,
          id: problem.task_id,
          data: { ...problem, tests: [...problem.tests], held_out: heldOutIndices(problem.task_id, problem.tests.length, share, seed) },
        }));
      }
    },
  };
}

const TASK_SYSTEM = "You are an expert Python programmer. You write correct, self-contained code that uses only the standard library.";

function solvePrompt(sample: Sample): ChatMessage[] {
  const shown = shownTests(sample.data);
  const tests = shown.length > 0 ? `\n\nYour code should pass these tests:\n\`\`\`python\n${shown.join("\n")}\n\`\`\`` : "";
  return [
    { role: "system", content: TASK_SYSTEM },
    {
      role: "user",
      content:
        "Complete the following Python function so that it does what its docstring says. Reply with the whole " +
        `function, including its signature and any imports it needs, in one \`\`\`python code block.\n\n\`\`\`python\n${sample.data.prompt as string}\`\`\`${tests}`,
    },
  ];
}

export default defineGraph({
  name: "code-exec",
  description:
    "Execution feedback (Self-Debugging, Chen et al. 2023): practice problems -> solution -> sandboxed shown tests -> error-feedback repairs -> held-out tests decide -> verified code",
  defaults,
  async build(options, env) {
    if (!Number.isInteger(options.maxRepairs) || options.maxRepairs < 0) {
      throw new ConfigError(`code-exec: maxRepairs must be an integer >= 0, got ${options.maxRepairs}`);
    }
    if (options.seedSolutions !== "none" && options.seedSolutions !== "canonical") {
      throw new ConfigError(`code-exec: seedSolutions is "none" or "canonical", got "${options.seedSolutions}"`);
    }
    if (!(options.heldOutShare > 0 && options.heldOutShare < 1)) {
      throw new ConfigError(`code-exec: heldOutShare must be above 0 and below 1 (held-out tests decide the verdict), got ${options.heldOutShare}`);
    }
    // Fails here, with what to install, when bubblewrap or python3 is missing.
    sandboxTools();
    const problems = await readProblems(options.problemsPath, options.count);
    if (isHumanEval(resolveDataPath(options.problemsPath), problems)) env.log(HUMANEVAL_WARNING);
    const endpoint = await openEndpoint(env, { seed: options.seed, price: options.price });
    const { llm } = endpoint;
    const sandboxLimits = { language: "python" as const, timeoutMs: options.timeoutMs };

    const runTests = (data: SampleData, tests: string, signal: AbortSignal): Promise<SandboxResult> =>
      runSandboxed({ ...sandboxLimits, code: data.program as string, tests: `${data.setup as string}\n\n${tests}\n`, signal });
    // The repair rounds' runs: the shown tests, then the generated asserts, in one namespace with the program.
    const runShown = (data: SampleData, signal: AbortSignal) =>
      runTests(data, `${shownTests(data).join("\n")}\n\n${(data.generated_tests as string | undefined) ?? ""}`, signal);
    const outcome = (result: SandboxResult, attempt: number): Attempt => ({
      attempt,
      status: result.status,
      error: result.status === "passed" ? "" : result.message,
    });

    const solve: Operator =
      options.seedSolutions === "canonical"
        ? defineFanOut({
            name: "solve",
            params: { seedSolutions: "canonical" },
            reads: ["prompt", "canonical_solution"],
            writes: ["solution"],
            expand(sample) {
              const { canonical_solution: canonical, ...rest } = sample.data;
              if (typeof canonical !== "string") return [drop("no_canonical_solution")];
              // The reference is human-written: same generation, human origin, honestly recorded.
              return [{ data: { ...rest, solution: canonical }, origin: "human", generation: "same", step: { note: "canonical solution (seedSolutions)" } }];
            },
          })
        : generate({
            llm,
            name: "solve",
            prompt: solvePrompt,
            parse: (text) => extractCode(text),
            temperature: options.temperature,
            seed: options.seed,
            write: (code, sample) => {
              const { canonical_solution: _reference, ...rest } = sample.data;
              return { ...rest, solution: code };
            },
          });

    const operators: Operator[] = [solve];
    if (options.generateTests) {
      const testWriter = asker({ llm, temperature: options.temperature, seed: options.seed, parse: (text) => extractAsserts(text) });
      operators.push(
        defineAsyncMap({
          name: "write_tests",
          params: { ...testWriter.params, prompt: "asserts-v1" },
          reads: ["prompt", "entry_point"],
          writes: ["generated_tests"],
          concurrency: llm.concurrency,
          async map(sample, _state, context, signal) {
            const answer = await testWriter.ask(
              [
                { role: "system", content: TASK_SYSTEM },
                {
                  role: "user",
                  content:
                    `Write 3 to 5 unit tests for the function \`${sample.data.entry_point as string}\` below, as plain \`assert\` ` +
                    `statements that call it directly, in one \`\`\`python code block. Do not implement the function.\n\n\`\`\`python\n${sample.data.prompt as string}\`\`\``,
                },
              ],
              context,
              signal,
            );
            if (!answer.ok) return answer.verdict;
            const asserts = answer.value;
            return { data: { ...sample.data, generated_tests: asserts }, step: { ...answer.step, note: `${asserts ? asserts.split("\n").length : 0} assert statements` } };
          },
        }),
      );
    }

    operators.push(
      defineAsyncMap({
        name: "attempt_1",
        params: { ...sandboxLimits, heldOutShare: options.heldOutShare },
        // `solution` comes from solve, whose write is a function (generate cannot declare it).
        reads: ["prompt", "entry_point", "setup", "tests", "held_out"],
        writes: ["program", "status", "attempts", "history"],
        concurrency: options.sandboxConcurrency,
        async map(sample, _state, _context, signal) {
          const data: SampleData = { ...sample.data, generated_tests: sample.data.generated_tests ?? "" };
          data.program = assembleProgram(data.prompt as string, data.entry_point as string, data.solution as string);
          const result = await runShown(data, signal);
          const first = outcome(result, 1);
          return {
            data: { ...data, status: first.status, attempts: 1, history: first.status === "passed" ? [] : [first] },
            scores: { exec_ms: result.durationMs },
            step: { note: `attempt 1: ${first.status}${first.error ? `: ${first.error.slice(0, 200)}` : ""}` },
          };
        },
      }),
    );

    const repairer = asker({ llm, temperature: options.temperature, seed: options.seed, parse: (text) => extractCode(text) });
    for (let round = 1; round <= options.maxRepairs; round++) {
      const attempt = round + 1;
      operators.push(
        defineAsyncMap({
          name: `repair_${round}`,
          params: { ...repairer.params, ...sandboxLimits, round, prompt: "self-debug-v2" },
          reads: ["status", "history"],
          concurrency: Math.min(options.sandboxConcurrency, llm.concurrency),
          async map(sample, _state, context, signal) {
            if (sample.data.status === "passed") return {};
            const history = sample.data.history as Attempt[];
            const last = history[history.length - 1]!;
            // Self-Debugging's unit-test feedback: the code as it was, the shown tests (in the first
            // message) and what running them said. The held-out tests are never part of it.
            const answer = await repairer.ask(
              [
                ...solvePrompt(sample),
                { role: "assistant", content: `\`\`\`python\n${sample.data.solution as string}\n\`\`\`` },
                {
                  role: "user",
                  content:
                    `Running the unit tests on this code failed (${last.status}):\n${last.error}\n\n` +
                    "Explain the bug in one or two sentences, then give the whole corrected function in one ```python code block.",
                },
              ],
              context,
              signal,
            );
            if (!answer.ok) return { ...answer.verdict, value: attempt - 1, message: `repair round ${round}: ${answer.verdict.message ?? answer.verdict.reason}` };
            const data: SampleData = { ...sample.data, solution: answer.value };
            data.program = assembleProgram(data.prompt as string, data.entry_point as string, answer.value);
            const result = await runShown(data, signal);
            const now = outcome(result, attempt);
            return {
              data: { ...data, status: now.status, attempts: attempt, history: now.status === "passed" ? history : [...history, now] },
              scores: { exec_ms: result.durationMs },
              step: { ...answer.step, note: `attempt ${attempt}: ${last.status} -> ${now.status}${now.error ? `: ${now.error.slice(0, 200)}` : ""}` },
            };
          },
        }),
      );
    }

    operators.push(
      defineFilter({
        name: "verified",
        reads: ["status", "attempts"],
        test(sample) {
          const attempts = sample.data.attempts as number;
          if (sample.data.status === "passed") return { keep: true, scores: { attempts } };
          const history = sample.data.history as Attempt[];
          return drop(sample.data.status as string, { value: attempts, message: history[history.length - 1]?.error });
        },
      }),
      defineAsyncMap({
        name: "held_out",
        params: { ...sandboxLimits },
        reads: ["program", "setup", "tests", "held_out"],
        concurrency: options.sandboxConcurrency,
        async map(sample, _state, _context, signal) {
          const heldOut = (sample.data.held_out as number[]).map((index) => (sample.data.tests as string[])[index]!);
          const result = await runTests(sample.data, heldOut.join("\n"), signal);
          const note = `${heldOut.length} held-out tests: ${result.status}`;
          if (result.status !== "passed") return drop(result.status, { value: heldOut.length, message: result.message });
          return { scores: { held_out_tests: heldOut.length }, step: { note } };
        },
      }),
    );

    return {
      sources: [problemSource(problems, options.heldOutShare, options.seed)],
      operators,
      dispose: endpoint.dispose,
      // Sandboxes are the bottleneck: a small budget keeps the queue in front of them short.
      budget: 64,
      // Each problem is decided by its own sandboxed runs: workers on several machines add cores.
      chunkable: true,
    };
  },
});
