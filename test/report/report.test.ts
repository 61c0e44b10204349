import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import codeExec, { defaults as codeExecDefaults, readProblems, type Problem } from "../../graphs/code-exec.ts";
import preferencePairs from "../../graphs/preference-pairs.ts";
import quickstart from "../../graphs/quickstart.ts";
import { InputError } from "../../src/errors.ts";
import { buildGraph, run, type GraphDefinition, type GraphOptionValues } from "../../src/index.ts";
import { writeReport } from "../../src/report/report-write.ts";
import { errorLines, rxsynth } from "../cli/run-cli.ts";
import { readShards, useScriptedModel, type OutputRow } from "../support/graph-run.ts";
import { describeWithSandbox } from "../support/sandbox.ts";
import { chartMarks, launchChromium, openReport, shownSamples, type OpenedReport } from "./report-browser.ts";

/** Where screenshots go: RXSYNTH_TEST_ARTIFACTS (CI keeps it), else a folder under the system temp folder. */
const ARTIFACTS = process.env.RXSYNTH_TEST_ARTIFACTS ?? join(tmpdir(), "rxsynth-test-artifacts");

let root: string;
let browser: Browser;
const opened: OpenedReport[] = [];

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "rxsynth-report-"));
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  await Promise.all(opened.map((report) => report.close()));
  await browser?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

async function runInto<O extends GraphOptionValues>(definition: GraphDefinition<O>, overrides: Partial<O>, name: string): Promise<string> {
  const out = join(root, name);
  const built = await buildGraph(definition, overrides, { log: () => {}, out });
  await run(built, { out, log: () => {} });
  return out;
}

async function open(file: string): Promise<OpenedReport> {
  const report = await openReport(browser, file);
  opened.push(report);
  return report;
}

/** Counts by `operator: reason`, from rows read back by hyparquet. */
function rejectCounts(rejects: readonly OutputRow[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const row of rejects) {
    const key = `${row.reject!.operator}: ${row.reject!.reason}`;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

/** The funnel section's table of rejects, as the page shows it. */
async function shownRejectCounts(page: Page): Promise<Record<string, number>> {
  const rows = await page.$$eval("#funnel table tbody tr", (trs) => trs.map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent ?? "")));
  return Object.fromEntries(rows.map(([operator, reason, count]) => [`${operator}: ${reason}`, Number(count!.replace(/,/g, ""))]));
}

function expectDrawn(marks: Record<string, { marks: number; frame: number }>, names: readonly string[]): void {
  for (const name of names) expect(Object.keys(marks), `chart ${name} is on the page`).toContain(name);
  for (const [name, { marks: drawn, frame }] of Object.entries(marks)) {
    expect(drawn - frame, `chart ${name} draws marks beyond its axes and legend`).toBeGreaterThan(0);
  }
}

describe("rxsynth report of a quickstart run", () => {
  let out: string;
  let report: OpenedReport;

  beforeAll(async () => {
    vi.stubEnv("OPENAI_BASE_URL", "");
    out = await runInto(quickstart, { target: 60 }, "quickstart");
    vi.unstubAllEnvs();
    await writeReport(out);
    report = await open(join(out, "report.html"));
  }, 120_000);

  it("opens offline with no console errors and draws every chart it holds", async () => {
    expect(report.errors).toEqual([]);
    expect(report.requests).toEqual([]);
    const marks = await chartMarks(report.page);
    expectDrawn(marks, ["funnel", "flow", "lengths:instruction", "lengths:output", "distinct", "leading", "openings", "clusters", "llm-tokens"]);
    // The runner writes a timeline, so the run is drawn over time too.
    expectDrawn(marks, ["throughput", "inflight", "llm-time", "cost-time"]);
    await mkdir(ARTIFACTS, { recursive: true });
    await report.page.screenshot({ path: join(ARTIFACTS, "report-quickstart.png"), fullPage: true });
  });

  it("counts rejects by operator and reason as an independent reader of the shards does", async () => {
    const rejects = await readShards(out, "rejects");
    const accepted = await readShards(out, "part");
    expect(await shownRejectCounts(report.page)).toEqual(rejectCounts(rejects));
    const headline = await report.page.textContent("header p");
    expect(headline).toContain(`${accepted.length} accepted, ${rejects.length} rejected`);
  });

  it("shows word lengths that add up to every row with the field", async () => {
    const data = JSON.parse((await report.page.textContent("#report-data"))!) as {
      rows: { lengths: { field: string; words: { accepted: number[]; rejected: number[] } }[] };
    };
    const accepted = await readShards(out, "part");
    const rejects = await readShards(out, "rejects");
    const instruction = data.rows.lengths.find((l) => l.field === "instruction")!;
    const sum = (counts: number[]) => counts.reduce((a, b) => a + b, 0);
    expect(sum(instruction.words.accepted)).toBe(accepted.filter((r) => typeof r.data.instruction === "string").length);
    expect(sum(instruction.words.rejected)).toBe(rejects.filter((r) => typeof r.data.instruction === "string").length);
  });

  it("filters the sample browser by reject reason", async () => {
    const page = report.page;
    const all = await shownSamples(page);
    const reasons = [...new Set(all.map((row) => row.reason).filter(Boolean))];
    expect(reasons.length).toBeGreaterThan(0);
    for (const reason of reasons) {
      await page.selectOption("#filter-reason", reason);
      const shown = await shownSamples(page);
      expect(shown.length).toBeGreaterThan(0);
      expect(shown.length).toBeLessThan(all.length);
      expect(shown.every((row) => row.reason === reason)).toBe(true);
    }
    await page.selectOption("#filter-reason", "");
    await page.selectOption("#filter-kind", "accepted");
    expect((await shownSamples(page)).every((row) => row.kind === "accepted" && row.reason === "")).toBe(true);
    await page.selectOption("#filter-kind", "all");
    // Each sampled row opens to its provenance steps.
    expect(await page.$$eval("#sample-list .sample table tr", (trs) => trs.length)).toBeGreaterThan(all.length);
  });

  it("writes the same page for the same folder", async () => {
    const again = join(root, "again.html");
    await writeReport(out, { out: again });
    expect(await readFile(again, "utf8")).toBe(await readFile(join(out, "report.html"), "utf8"));
  });

  it("reads a scaled-out folder's chunks as one run, and marks resumes on the timeline", async () => {
    const scaled = join(root, "scaled");
    await cp(out, join(scaled, "chunks", "rounds-0"), { recursive: true });
    await cp(out, join(scaled, "chunks", "rounds-9"), { recursive: true });
    const { file } = await writeReport(scaled);
    const page = (await open(file)).page;
    const single = await shownRejectCounts(report.page);
    const doubled = Object.fromEntries(Object.entries(single).map(([key, count]) => [key, 2 * count]));
    expect(await shownRejectCounts(page)).toEqual(doubled);
    expect(await page.textContent("#identity")).toContain("2 chunk folders, merged");

    // A resumed folder: a second session continues the counts.
    const resumed = join(root, "resumed");
    await cp(out, resumed, { recursive: true });
    const lines = (await readFile(join(out, "timeline.jsonl"), "utf8")).trim().split("\n").map((line) => JSON.parse(line) as { at: number; session: number; accepted: number });
    const last = lines.at(-1)!;
    const later = lines.map((point, i) => JSON.stringify({ ...point, session: last.session + 1, at: last.at + 60_000 + i * 1_000, accepted: last.accepted + point.accepted }));
    await writeFile(join(resumed, "timeline.jsonl"), `${lines.map((l) => JSON.stringify(l)).join("\n")}\n${later.join("\n")}\n`);
    const resumedPage = (await open((await writeReport(resumed)).file)).page;
    expect(await resumedPage.textContent("#timeline")).toContain("resumed 1 times");
    expect(await resumedPage.textContent("#identity")).toContain("1 (resume)");
  });
});

describe("rxsynth report of a preference-pairs run", () => {
  it("gives each pairwise judge's agreement in both orders as the shards count it", { timeout: 120_000 }, async () => {
    vi.stubEnv("OPENAI_BASE_URL", "");
    const out = await runInto(preferencePairs, { judge: "pairwise", count: 8 }, "preference-pairs");
    vi.unstubAllEnvs();
    const report = await open((await writeReport(out)).file);
    expect(report.errors).toEqual([]);
    expectDrawn(await chartMarks(report.page), ["pairwise", "score:judge_margin"]);
    const accepted = await readShards(out, "part");
    const rejects = await readShards(out, "rejects");
    const judged = (reason: string) => rejects.filter((row) => row.reject!.operator === "judge" && row.reject!.reason === reason).length;
    // Kept pairs agreed in both orders (scores.judge_agreement = 1), and so did the ties it dropped.
    const agreed = accepted.filter((row) => row.scores.judge_agreement === 1).length + judged("tie");
    const disagreed = judged("position_bias");
    expect(disagreed).toBeGreaterThan(0);
    const cells = await report.page.$$eval("#judges table tbody tr td", (tds) => tds.map((td) => td.textContent));
    expect(cells).toEqual(["judge", String(agreed), String(disagreed), `${((100 * agreed) / (agreed + disagreed)).toFixed(1)} %`]);
  });
});

describeWithSandbox("rxsynth report of a code-exec run", () => {
  // Problem 0 gets its reference solution (passes), problem 1 a function that returns None (fails its
  // tests), problem 2 prose (a syntax error): the three verdicts the execution section counts.
  let problems: Problem[] = [];
  useScriptedModel((request) => {
    const user = request.messages.find((m) => m.role === "user")!.content;
    const entry = /def (\w+)\(/.exec(user)?.[1];
    const at = problems.findIndex((p) => p.entry_point === entry);
    if (at === 0) return `\`\`\`python\n${problems[0]!.prompt}${problems[0]!.canonical_solution}\`\`\``;
    if (at === 1) return `\`\`\`python\ndef ${entry}(*args):\n    return None\n\`\`\``;
    return "Here is how I would think about it, in words rather than code.";
  });
  let out: string | undefined;

  async function codeExecRun(): Promise<string> {
    problems = await readProblems(codeExecDefaults.problemsPath, 3);
    out ??= await runInto(codeExec, { count: 3, maxRepairs: 0 }, "code-exec");
    return out;
  }

  it("draws the execution verdicts and run times, counted as the shards say", { timeout: 120_000 }, async () => {
    const dir = await codeExecRun();
    const { file } = await writeReport(dir);
    const report = await open(file);
    expect(report.errors).toEqual([]);
    expect(report.requests).toEqual([]);
    expectDrawn(await chartMarks(report.page), ["funnel", "flow", "verdicts", "runtime", "llm-tokens", "latency"]);
    const rejects = await readShards(dir, "rejects");
    expect(await shownRejectCounts(report.page)).toEqual(rejectCounts(rejects));
    const data = JSON.parse((await report.page.textContent("#report-data"))!) as { rows: { execution: { verdicts: { reason: string; count: number }[] } } };
    const accepted = await readShards(dir, "part");
    const expected = [{ reason: "passed", count: accepted.length }, ...Object.entries(rejectCounts(rejects)).map(([key, count]) => ({ reason: key.split(": ")[1]!, count }))];
    expect([...data.rows.execution.verdicts].sort((a, b) => a.reason.localeCompare(b.reason))).toEqual(expected.sort((a, b) => a.reason.localeCompare(b.reason)));
    expect(data.rows.execution.verdicts.map((v) => v.reason).sort()).toEqual(["passed", "syntax_error", "test_failed"]);
    await mkdir(ARTIFACTS, { recursive: true });
    await report.page.screenshot({ path: join(ARTIFACTS, "report-code-exec.png"), fullPage: true });
  });
});

describe("rxsynth report on the command line", () => {
  it("prints one line with the page's path and size, and one with the dataset card's", async () => {
    vi.stubEnv("OPENAI_BASE_URL", "");
    const out = await runInto(quickstart, { target: 20 }, "cli");
    vi.unstubAllEnvs();
    const result = await rxsynth(["report", out]);
    expect(result.code).toBe(0);
    const escaped = (path: string) => path.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    expect(result.stdout.trim()).toMatch(new RegExp(`^report: ${escaped(join(out, "report.html"))} \\(\\d+(\\.\\d)? (MB|KB)\\)\ndataset card: ${escaped(join(out, "README.md"))}$`));
  }, 120_000);

  it("says in one line that a folder holds no run", async () => {
    const empty = join(root, "empty");
    await mkdir(empty, { recursive: true });
    await expect(writeReport(empty)).rejects.toBeInstanceOf(InputError);
    const result = await rxsynth(["report", empty]);
    expect(result.code).toBe(1);
    expect(errorLines(result.stderr)).toEqual([`rxsynth: input error: ${empty}: not a run folder: it has no manifest.json (nor chunks/*/manifest.json of a scaled-out run)`]);
  }, 60_000);
});
