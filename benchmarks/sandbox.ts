// Claim: the code-execution sandbox passes all 164 HumanEval canonical solutions (canonical_pass_rate 1.0) and
// fails their broken variants, including every adversarial one built to fool a naive harness (always-equal
// answers, exiting early with code 0, walking frames to the reporter, forging a verdict on a descriptor, an
// excepthook that swallows the failure): forged 0. It does this at no less than half the rate of running the
// same programs bare (`python3 file.py`, the same real interpreter behind any pyenv shim, same concurrency):
// vs_bare >= 0.5. A program that writes 2 GB is stopped at the writable-space cap (crashed) and the host's
// disk does not fill (max_host_disk_used_mb ~ 0: the sandbox writes only to memory-backed tmpfs).
//
// Sandboxed and bare runs are measured side by side in one run, in alternating rounds (best of ROUNDS,
// medians reported too), with one worker per core by default; every broken variant is also run bare, and a
// plain wrong variant that passes bare (right by chance, e.g. `return 0` where 0 is the answer) is left out
// of broken_fail_rate. Another process using the CPUs shows in the absolute rates more than in vs_bare.
//
//   npm run bench -- sandbox                            (or: npx tsx benchmarks/sandbox.ts)
//   SANDBOX_BENCH_QUICK=1 npm run bench -- sandbox      (or: npx tsx benchmarks/sandbox.ts --quick)
//     20 problems, 10 JavaScript programs, 2 rounds; prints the tables, writes no results file
//   SANDBOX_BENCH_CONCURRENCY=4 / --concurrency 4       workers for both contenders (default: core count)
import { statfsSync } from "node:fs";
import { mkdir, mkdtemp, open, rm, writeFile } from "node:fs/promises";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { spawnSync } from "node:child_process";
import { runSandboxed, SANDBOX_DEFAULTS, type SandboxResult } from "../src/sandbox/index.ts";
import { interpreterPath, resolveRuntime } from "../src/sandbox/host.ts";
import {
  bareSource,
  canonical,
  humanEval,
  javascriptSet,
  lastReturnZero,
  pool,
  pythonBroken,
  runBare,
  type BareResult,
  type Program,
} from "./lib/sandbox-work.ts";

const argv = process.argv.slice(2);
const flag = (name: string) => {
  const at = argv.indexOf(name);
  return at >= 0 ? argv[at + 1] : undefined;
};
const QUICK = argv.includes("--quick") || ["1", "true", "yes"].includes(process.env.SANDBOX_BENCH_QUICK ?? "");
const CONCURRENCY = Number(flag("--concurrency") ?? process.env.SANDBOX_BENCH_CONCURRENCY ?? cpus().length);
const PROBLEMS = QUICK ? 20 : 164;
const JS_PROGRAMS = QUICK ? 10 : 40;
const ROUNDS = QUICK ? 2 : 3;
const TIMEOUT_MS = SANDBOX_DEFAULTS.timeoutMs;
const DISK_WRITE_MB = 2048;
const DISK_POLL_MS = 20;
const MiB = 1024 * 1024;

if (!Number.isInteger(CONCURRENCY) || CONCURRENCY < 1) throw new Error(`concurrency must be a whole number of at least 1, got ${CONCURRENCY}`);

const round = (value: number, digits = 2) => Math.round(value * 10 ** digits) / 10 ** digits;
const median = (values: readonly number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

type Language = "python" | "javascript";

interface Contender {
  /** Seconds for the whole set, per round. */
  seconds: number[];
  /** Runs that passed, per round. */
  passed: number[];
  failures: string[];
}

// ---------------------------------------------------------------- the two ways to run a program

interface Runner {
  readonly language: Language;
  /** The real interpreter, as the sandbox resolves it (no shim). */
  readonly executable: string;
  readonly folder: string;
  readonly extension: string;
}

const sandboxed = (runner: Runner, program: Program): Promise<SandboxResult> =>
  runSandboxed({ language: runner.language, code: program.code, tests: program.tests, entryPoint: program.entryPoint, timeoutMs: TIMEOUT_MS });

/** Writes each program's bare file once, before anything is timed; returns the paths. */
async function bareFiles(runner: Runner, programs: readonly Program[]): Promise<string[]> {
  return Promise.all(
    programs.map(async (program, i) => {
      const file = join(runner.folder, `${i}-${program.id.replace(/[^A-Za-z0-9_-]/g, "_")}${runner.extension}`);
      await writeFile(file, bareSource(program));
      return file;
    }),
  );
}

const bare = (runner: Runner, file: string): Promise<BareResult> => runBare(runner.executable, file, runner.folder, TIMEOUT_MS);

/** The canonical set through both contenders, alternating which goes first, ROUNDS times. */
async function throughput(runner: Runner, programs: readonly Program[]) {
  const files = await bareFiles(runner, programs);
  // Warm-up, the same for both: the runtime lookup, the page cache for the interpreter and the harness.
  await sandboxed(runner, programs[0]!);
  await bare(runner, files[0]!);
  const sandbox: Contender = { seconds: [], passed: [], failures: [] };
  const plain: Contender = { seconds: [], passed: [], failures: [] };
  const sandboxRound = async () => {
    const started = performance.now();
    const results = await pool(programs, CONCURRENCY, (program) => sandboxed(runner, program));
    sandbox.seconds.push((performance.now() - started) / 1000);
    sandbox.passed.push(results.filter((r) => r.status === "passed").length);
    results.forEach((r, i) => {
      if (r.status !== "passed") sandbox.failures.push(`${programs[i]!.id}: ${r.status} ${r.message}`);
    });
  };
  const bareRound = async () => {
    const started = performance.now();
    const results = await pool(files, CONCURRENCY, (file) => bare(runner, file));
    plain.seconds.push((performance.now() - started) / 1000);
    plain.passed.push(results.filter((r) => r.passed).length);
    results.forEach((r, i) => {
      if (!r.passed) plain.failures.push(`${programs[i]!.id}: exit ${r.exitCode ?? r.signal}${r.timedOut ? " (timeout)" : ""} ${r.stderr.trim().split("\n").at(-1) ?? ""}`);
    });
  };
  for (let r = 0; r < ROUNDS; r++) {
    if (r % 2 === 0) {
      await sandboxRound();
      await bareRound();
    } else {
      await bareRound();
      await sandboxRound();
    }
  }
  return { sandbox, bare: plain };
}

interface VariantOutcome {
  readonly program: Program;
  readonly status: SandboxResult["status"];
  readonly message: string;
  readonly barePassed: boolean;
}

/** Every broken variant, sandboxed and bare (the bare run only to tell which are right by chance). */
async function variants(runner: Runner, programs: readonly Program[]): Promise<VariantOutcome[]> {
  const files = await bareFiles(runner, programs);
  const inSandbox = await pool(programs, CONCURRENCY, (program) => sandboxed(runner, program));
  const outside = await pool(files, CONCURRENCY, (file) => bare(runner, file));
  return programs.map((program, i) => ({ program, status: inSandbox[i]!.status, message: inSandbox[i]!.message, barePassed: outside[i]!.passed }));
}

// ---------------------------------------------------------------- disk

/** Bytes free to unprivileged users on the filesystem of the host's temporary folder. */
function free(): number {
  const stats = statfsSync(tmpdir());
  return stats.bavail * stats.bsize;
}

interface DiskOutcome {
  readonly folder: string;
  readonly status: SandboxResult["status"];
  readonly message: string;
  readonly stopMs: number;
  readonly hostDropMb: number;
  readonly samples: number;
  readonly capMessage: boolean;
}

/** A program that writes 2 GB (16 MiB files) under `folder`, with the default cap; the host's free space polled meanwhile. */
async function diskWriter(python: string, folder: string): Promise<DiskOutcome> {
  const code = [
    "import os",
    "def fill(folder):",
    "    chunk = b'x' * (1 << 20)",
    "    written = 0",
    "    i = 0",
    `    while written < ${DISK_WRITE_MB} << 20:`,
    "        with open(os.path.join(folder, 'fill-%d' % i), 'wb') as f:",
    "            for _ in range(16):",
    "                f.write(chunk)",
    "                written += len(chunk)",
    "        i += 1",
    "    return written",
    "",
  ].join("\n");
  const tests = `def check(candidate):\n    assert candidate(${JSON.stringify(folder)}) == ${DISK_WRITE_MB} << 20\n`;
  const before = free();
  let lowest = before;
  let samples = 1;
  const poll = setInterval(() => {
    lowest = Math.min(lowest, free());
    samples++;
  }, DISK_POLL_MS);
  let result: SandboxResult;
  try {
    result = await runSandboxed({ language: "python", code, tests, entryPoint: "fill", interpreter: python });
  } finally {
    clearInterval(poll);
  }
  lowest = Math.min(lowest, free());
  samples++;
  return {
    folder,
    status: result.status,
    message: result.message,
    stopMs: result.durationMs,
    hostDropMb: (before - lowest) / MiB,
    samples,
    capMessage: /writable space/.test(result.message),
  };
}

/**
 * The control for the disk numbers: the same statfs reading, before and after this process writes (and
 * fsyncs) 64 MiB to a file in the host's temporary folder, shows the measurement can see a real write.
 */
async function hostWriteControl(folder: string): Promise<number> {
  const file = join(folder, "control-64mib");
  const before = free();
  const handle = await open(file, "w");
  try {
    const chunk = Buffer.alloc(MiB, 120);
    for (let i = 0; i < 64; i++) await handle.write(chunk);
    await handle.sync();
  } finally {
    await handle.close();
  }
  const after = free();
  await rm(file, { force: true });
  return (before - after) / MiB;
}

// ---------------------------------------------------------------- main

function statusCounts(outcomes: readonly VariantOutcome[]): string {
  const counts: Record<string, number> = {};
  for (const o of outcomes) counts[o.status] = (counts[o.status] ?? 0) + 1;
  return Object.entries(counts)
    .sort((a, b) => b[1] - a[1])
    .map(([status, n]) => `${status}:${n}`)
    .join(" ");
}

function byKind(outcomes: readonly VariantOutcome[]) {
  const kinds = [...new Set(outcomes.map((o) => o.program.kind))];
  return kinds.map((kind) => {
    const of = outcomes.filter((o) => o.program.kind === kind);
    const attack = of[0]!.program.attack;
    const rightByChance = attack ? [] : of.filter((o) => o.barePassed);
    return {
      kind,
      attack,
      run: of.length,
      sandbox_passed: of.filter((o) => o.status === "passed").length,
      bare_passed: of.filter((o) => o.barePassed).length,
      excluded_right_by_chance: rightByChance.length,
      counted: of.length - rightByChance.length,
      failed_counted: of.filter((o) => o.status !== "passed" && (attack || !o.barePassed)).length,
      statuses: statusCounts(of),
    };
  });
}

async function main() {
  const python = await resolveRuntime("python", interpreterPath("python"));
  const node = await resolveRuntime("javascript", interpreterPath("javascript"));
  const pythonVersion = spawnSync(python.executable, ["-c", "import sys; print(sys.version.split()[0])"], { encoding: "utf8" }).stdout.trim();
  const work = await mkdtemp(join(tmpdir(), "rxsynth-bench-sandbox-"));
  try {
    const pyRunner: Runner = { language: "python", executable: python.executable, folder: work, extension: ".py" };
    const jsRunner: Runner = { language: "javascript", executable: node.executable, folder: work, extension: ".cjs" };
    const all = humanEval();
    if (all.length !== 164) throw new Error(`expected 164 HumanEval problems, read ${all.length}`);
    const problems = all.slice(0, PROBLEMS);
    console.log(
      `sandbox benchmark${QUICK ? " (QUICK: a reduced set; no results file is written)" : ""}: ${problems.length} HumanEval problems, ` +
        `${JS_PROGRAMS} JavaScript programs, concurrency ${CONCURRENCY}, best of ${ROUNDS} alternating rounds\n` +
        `python ${pythonVersion} at ${python.executable} (sandboxed and bare), node ${process.version} at ${node.executable}; ` +
        `load average ${loadavg().map((n) => round(n)).join(" ")} on ${cpus().length} cpus`,
    );

    // Throughput: canonical solutions, sandboxed and bare, side by side.
    const pyCanonical = problems.map(canonical);
    const py = await throughput(pyRunner, pyCanonical);
    const js = javascriptSet(JS_PROGRAMS);
    const jsT = await throughput(jsRunner, js.canonical);

    // Broken and adversarial variants.
    const pyBroken = pythonBroken(problems, lastReturnZero(python.executable, problems));
    const pyOutcomes = await variants(pyRunner, pyBroken);
    const jsOutcomes = await variants(jsRunner, js.broken);

    // Disk: /sandbox (the program's cwd) and /tmp, each under the default cap.
    const diskSandbox = await diskWriter(python.executable, "/sandbox");
    const diskTmp = await diskWriter(python.executable, "/tmp");
    const controlDropMb = await hostWriteControl(work);

    // ------------------------------------------------------------ numbers
    const rate = (n: number, seconds: number) => n / seconds;
    const best = (c: Contender, n: number) => rate(n, Math.min(...c.seconds));
    const mid = (c: Contender, n: number) => rate(n, median(c.seconds));
    const passRate = (c: Contender, n: number) => c.passed.reduce((a, b) => a + b, 0) / (n * c.passed.length);

    const summarize = (outcomes: readonly VariantOutcome[]) => {
      const attacks = outcomes.filter((o) => o.program.attack);
      const plain = outcomes.filter((o) => !o.program.attack);
      const plainCounted = plain.filter((o) => !o.barePassed);
      const counted = [...plainCounted, ...attacks];
      return {
        variants: outcomes.length,
        counted: counted.length,
        excluded: plain.length - plainCounted.length,
        brokenFailRate: counted.filter((o) => o.status !== "passed").length / counted.length,
        plainFailRate: plainCounted.filter((o) => o.status !== "passed").length / plainCounted.length,
        plainPassedSandboxOnly: plain.filter((o) => o.status === "passed" && !o.barePassed).map((o) => o.program.id),
        attacks: attacks.length,
        forged: attacks.filter((o) => o.status === "passed"),
        attacksPassingBare: attacks.filter((o) => o.barePassed).length,
      };
    };
    const pyS = summarize(pyOutcomes);
    const jsS = summarize(jsOutcomes);
    const n = pyCanonical.length;
    const jn = js.canonical.length;

    // ------------------------------------------------------------ tables
    const throughputRow = (c: Contender, count: number) => ({
      programs: count,
      "best s": round(Math.min(...c.seconds), 3),
      "median s": round(median(c.seconds), 3),
      "programs/s (best)": round(best(c, count)),
      "programs/s (median)": round(mid(c, count)),
      "passed (per round)": c.passed.join(" "),
    });
    console.log(`\nthroughput: canonical solutions, ${ROUNDS} alternating rounds at concurrency ${CONCURRENCY} (the keys use the best round)`);
    console.table({
      "python sandboxed (runSandboxed)": throughputRow(py.sandbox, n),
      "python bare (python file.py)": throughputRow(py.bare, n),
      "javascript sandboxed": throughputRow(jsT.sandbox, jn),
      "javascript bare (node file.cjs)": throughputRow(jsT.bare, jn),
    });
    for (const [label, failures] of [
      ["python sandboxed", py.sandbox.failures],
      ["python bare", py.bare.failures],
      ["javascript sandboxed", jsT.sandbox.failures],
      ["javascript bare", jsT.bare.failures],
    ] as const) {
      if (failures.length) console.log(`${label}: canonical runs that did not pass:\n  ${[...new Set(failures)].slice(0, 20).join("\n  ")}`);
    }

    console.log(
      "\nbroken variants: sandboxed verdicts, and bare runs (exit code 0 = a naive harness's pass). A plain wrong variant that passes bare\n" +
        "is right by chance and is left out of broken_fail_rate; attacks are always counted (they compute nothing), and any attack that\n" +
        "passes sandboxed is `forged`.",
    );
    console.table(byKind([...pyOutcomes, ...jsOutcomes]));
    for (const o of [...pyS.forged, ...jsS.forged]) console.log(`FORGED: ${o.program.id} passed in the sandbox`);
    for (const id of [...pyS.plainPassedSandboxOnly, ...jsS.plainPassedSandboxOnly]) console.log(`passed sandboxed but not bare: ${id}`);

    console.log(`\ndisk: a program writing ${DISK_WRITE_MB} MB (16 MiB files) under the default cap of ${SANDBOX_DEFAULTS.diskMb} MB; host free space of ${tmpdir()} polled every ${DISK_POLL_MS} ms`);
    console.table(
      Object.fromEntries(
        [diskSandbox, diskTmp].map((d) => [
          `writes to ${d.folder}`,
          { status: d.status, "stopped after ms": d.stopMs, "host free-space drop MB": round(d.hostDropMb, 2), polls: d.samples, message: d.message.slice(0, 110) },
        ]),
      ),
    );
    console.log(`control: this process writing 64 MiB to ${tmpdir()} on the host moved the same reading by ${round(controlDropMb, 2)} MB`);

    const result = {
      canonical_pass_rate: round(passRate(py.sandbox, n), 4),
      broken_fail_rate: round(pyS.brokenFailRate, 4),
      attacks: pyS.attacks,
      forged: pyS.forged.length,
      programs_per_s: round(best(py.sandbox, n)),
      bare_programs_per_s: round(best(py.bare, n)),
      vs_bare: round(best(py.sandbox, n) / best(py.bare, n), 3),
      disk_cap_mb: SANDBOX_DEFAULTS.diskMb,
      max_host_disk_used_mb: round(Math.max(diskSandbox.hostDropMb, diskTmp.hostDropMb), 2),
      // extras
      problems: n,
      broken_variants: pyS.variants,
      broken_counted: pyS.counted,
      broken_excluded_right_by_chance: pyS.excluded,
      plain_broken_fail_rate: round(pyS.plainFailRate, 4),
      attacks_passing_bare: pyS.attacksPassingBare,
      forged_ids: pyS.forged.map((o) => o.program.id),
      variants_by_kind: Object.fromEntries(byKind(pyOutcomes).map(({ kind, ...rest }) => [kind, rest])),
      bare_canonical_pass_rate: round(passRate(py.bare, n), 4),
      programs_per_s_median: round(mid(py.sandbox, n)),
      bare_programs_per_s_median: round(mid(py.bare, n)),
      vs_bare_median: round(mid(py.sandbox, n) / mid(py.bare, n), 3),
      js_programs: jn,
      js_canonical_pass_rate: round(passRate(jsT.sandbox, jn), 4),
      js_programs_per_s: round(best(jsT.sandbox, jn)),
      js_bare_programs_per_s: round(best(jsT.bare, jn)),
      js_vs_bare: round(best(jsT.sandbox, jn) / best(jsT.bare, jn), 3),
      js_vs_bare_median: round(mid(jsT.sandbox, jn) / mid(jsT.bare, jn), 3),
      js_broken_fail_rate: round(jsS.brokenFailRate, 4),
      js_attacks: jsS.attacks,
      js_forged: jsS.forged.length,
      js_variants_by_kind: Object.fromEntries(byKind(jsOutcomes).map(({ kind, ...rest }) => [kind, rest])),
      disk_writer_status: diskSandbox.status,
      disk_writer_message: diskSandbox.message,
      disk_writer_stop_ms: diskSandbox.stopMs,
      disk_writer_tmp_status: diskTmp.status,
      disk_writer_tmp_message: diskTmp.message,
      disk_writer_tmp_stop_ms: diskTmp.stopMs,
      disk_writer_stopped_at_cap: diskSandbox.status === "crashed" && diskSandbox.capMessage && diskTmp.status === "crashed" && diskTmp.capMessage,
      disk_write_attempted_mb: DISK_WRITE_MB,
      host_write_control_drop_mb: round(controlDropMb, 2),
      disk_poll_ms: DISK_POLL_MS,
      concurrency: CONCURRENCY,
      rounds: ROUNDS,
      rate_from: "best round",
      timeout_ms: TIMEOUT_MS,
      python: python.executable,
      python_version: pythonVersion,
      node: process.version,
      cpus: cpus().length,
      load_average_1m: round(loadavg()[0]!),
      measured_at: new Date().toISOString(),
    };
    console.table(Object.fromEntries(Object.entries(result).filter(([, v]) => typeof v !== "object")));
    if (QUICK) {
      console.log("quick run: benchmarks/results/sandbox.json not written (run without --quick / SANDBOX_BENCH_QUICK for the full set)");
      return;
    }
    const dir = fileURLToPath(new URL("./results/", import.meta.url));
    await mkdir(dir, { recursive: true });
    await writeFile(`${dir}sandbox.json`, `${JSON.stringify(result, null, 2)}\n`);
    console.log("wrote benchmarks/results/sandbox.json");
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

await main();
