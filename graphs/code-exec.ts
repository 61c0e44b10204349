// Code with execution feedback: problem -> solution -> unit tests run in the sandbox -> on failure the error
// goes back to the model for up to `maxRepairs` repair rounds -> only solutions whose tests pass are kept.
// Follows Self-Debugging (Chen et al. 2023, "Teaching Large Language Models to Self-Debug": the execution
// error is fed back and the model explains and fixes its code) and the execution-verified data of Code
// Llama (Rozière et al. 2023: solutions kept only when the unit tests pass).
//
// Input: HumanEval (builtin:HumanEval.jsonl.gz, the package's data/HumanEval.jsonl.gz: 164 Python problems,
// MIT, openai/human-eval) or any JSONL (optionally gzipped) with task_id, prompt, entry_point, test
// (defining check(candidate)) and, for seedSolutions "canonical", canonical_solution. The problem's own
// `test` and check(entry_point) are the unit tests; with generateTests the model also writes assert
// statements, run after them.
// Sandbox: bubblewrap (src/sandbox), one fresh sandbox per run: no network, capped memory and time.
//
// Attempts: attempt 1 is the first solution; every repair round is a STEP on the same sample (repair_1 ...
// repair_k, each with an "attempt N: <previous status> -> <status>" note), not a new sample: the sample is one
// problem's solution being refined, and `history` keeps every failed attempt's status and error. The loop is
// bounded by construction: the graph holds exactly maxRepairs repair operators.
//
// Output columns (data): task_id, prompt, entry_point, test, solution (the code the model wrote), program
// (what ran: prompt + solution), tests (generated asserts; "" unless generateTests), status ("passed"),
// attempts (1 + repair rounds used), history (JSON list of {attempt, status, error} for failed attempts).
// Scores: attempts, exec_ms (the passing run's wall time). Rejects: the last sandbox status as the reason
// (syntax_error, test_failed, timeout, crashed, sandbox_violation, tampering) with `value` = attempts made, or an LLM
// reason (refusal, truncated, empty, llm_error) from the call that failed.
//
//   rxsynth run graphs/code-exec.ts --set count=20 --out out/code
//   rxsynth run graphs/code-exec.ts --set seedSolutions=canonical --set count=10 --out out/code-smoke
import { readFile } from "node:fs/promises";
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
  problemsPath: "builtin:HumanEval.jsonl.gz",
  /** Repair rounds after a failed first attempt (each: error to the model, new code, rerun). */
  maxRepairs: 2,
  /** The model also writes assert statements, run after the problem's own tests. */
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

export interface Problem {
  readonly task_id: string;
  readonly prompt: string;
  readonly entry_point: string;
  readonly test: string;
  readonly canonical_solution?: string;
}

/** Problems from JSONL, gzipped or not (a path or `builtin:NAME`, see resolveDataPath); each line must carry the fields the graph runs. */
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
    const record = JSON.parse(line) as Record<string, unknown>;
    for (const field of ["task_id", "prompt", "entry_point", "test"]) {
      if (typeof record[field] !== "string") throw new InputError(`missing string field`, { file: path, line: index + 1, field });
    }
    problems.push(record as unknown as Problem);
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

/** The problems as a source whose sample ids are the task ids ("HumanEval/0"). */
function problemSource(problems: readonly Problem[]): Source {
  return {
    name: "problems",
    origin: "human",
    fields: ["task_id", "prompt", "entry_point", "test", "canonical_solution"],
    size: async () => problems.length,
    async *batches({ from }) {
      if (from < problems.length) yield problems.slice(from).map((problem, i) => ({ position: from + i, id: problem.task_id, data: { ...problem } }));
    },
  };
}

const TASK_SYSTEM = "You are an expert Python programmer. You write correct, self-contained code that uses only the standard library.";

function solvePrompt(sample: Sample): ChatMessage[] {
  return [
    { role: "system", content: TASK_SYSTEM },
    {
      role: "user",
      content:
        "Complete the following Python function so that it does what its docstring says. Reply with the whole " +
        `function, including its signature and any imports it needs, in one \`\`\`python code block.\n\n\`\`\`python\n${sample.data.prompt as string}\`\`\``,
    },
  ];
}

export default defineGraph({
  name: "code-exec",
  description: "Execution feedback (Self-Debugging, Chen et al. 2023): HumanEval problems -> solution -> sandboxed unit tests -> error-feedback repairs -> verified code",
  defaults,
  async build(options, env) {
    if (!Number.isInteger(options.maxRepairs) || options.maxRepairs < 0) {
      throw new ConfigError(`code-exec: maxRepairs must be an integer >= 0, got ${options.maxRepairs}`);
    }
    if (options.seedSolutions !== "none" && options.seedSolutions !== "canonical") {
      throw new ConfigError(`code-exec: seedSolutions is "none" or "canonical", got "${options.seedSolutions}"`);
    }
    // Fails here, with what to install, when bubblewrap or python3 is missing.
    sandboxTools();
    const problems = await readProblems(options.problemsPath, options.count);
    const endpoint = await openEndpoint(env, { seed: options.seed, price: options.price });
    const { llm } = endpoint;
    const sandboxLimits = { language: "python" as const, timeoutMs: options.timeoutMs };

    const run = (data: SampleData, signal: AbortSignal): Promise<SandboxResult> =>
      runSandboxed({
        ...sandboxLimits,
        code: data.program as string,
        // The problem's check(), then the generated asserts, in one namespace with the program.
        tests: `${data.test as string}\n\n${(data.tests as string | undefined) ?? ""}\n`,
        entryPoint: data.entry_point as string,
        signal,
      });
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
          writes: ["tests"],
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
            return { data: { ...sample.data, tests: asserts }, step: { ...answer.step, note: `${asserts ? asserts.split("\n").length : 0} assert statements` } };
          },
        }),
      );
    }

    operators.push(
      defineAsyncMap({
        name: "attempt_1",
        params: { ...sandboxLimits },
        // `solution` comes from solve, whose write is a function (generate cannot declare it).
        reads: ["prompt", "entry_point", "test"],
        writes: ["program", "status", "attempts", "history"],
        concurrency: options.sandboxConcurrency,
        async map(sample, _state, _context, signal) {
          const data: SampleData = { ...sample.data, tests: sample.data.tests ?? "" };
          data.program = assembleProgram(data.prompt as string, data.entry_point as string, data.solution as string);
          const result = await run(data, signal);
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
          params: { ...repairer.params, ...sandboxLimits, round, prompt: "self-debug-v1" },
          reads: ["status", "history"],
          concurrency: Math.min(options.sandboxConcurrency, llm.concurrency),
          async map(sample, _state, context, signal) {
            if (sample.data.status === "passed") return {};
            const history = sample.data.history as Attempt[];
            const last = history[history.length - 1]!;
            // Self-Debugging's simple feedback: the code as it was, and what running the tests said.
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
            const result = await run(data, signal);
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
    );

    return {
      sources: [problemSource(problems)],
      operators,
      dispose: endpoint.dispose,
      // Sandboxes are the bottleneck: a small budget keeps the queue in front of them short.
      budget: 64,
      // Each problem is decided by its own sandboxed runs: workers on several machines add cores.
      chunkable: true,
    };
  },
});
