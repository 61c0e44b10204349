// The README's TypeScript examples, extracted and run as written: a user copies them, so they must work.
// Blocks are taken by section heading; a block whose first line is a `// name.ts` comment is saved under
// that name (the examples import each other by it). They are written into a folder inside the repository,
// so `import ... from "rxsynth"` resolves through package.json's self-reference, as it does for a user
// whose project depends on rxsynth.
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildGraph, type GraphDefinition, type Rejection, type Sample } from "../src/index.ts";
import { useGraphRuns } from "./support/graph-run.ts";

const exec = promisify(execFile);
const root = join(import.meta.dirname, "..");
const readme = await readFile(join(root, "README.md"), "utf8");

interface CodeBlock {
  readonly lang: string;
  readonly code: string;
}

/** The fenced blocks under the heading `title` (any level), up to the next heading outside a fence. */
function sectionBlocks(markdown: string, title: string): CodeBlock[] {
  const lines = markdown.split("\n");
  const start = lines.findIndex((line) => /^#{1,6} /.test(line) && line.replace(/^#+ /, "").trim() === title);
  if (start < 0) throw new Error(`README.md has no section "${title}"`);
  const blocks: CodeBlock[] = [];
  let fence: { lang: string; lines: string[] } | undefined;
  for (const line of lines.slice(start + 1)) {
    if (fence) {
      if (line.startsWith("```")) {
        blocks.push({ lang: fence.lang, code: fence.lines.join("\n") + "\n" });
        fence = undefined;
      } else {
        fence.lines.push(line);
      }
    } else if (line.startsWith("```")) {
      fence = { lang: line.slice(3).trim(), lines: [] };
    } else if (/^#{1,6} /.test(line)) {
      break;
    }
  }
  return blocks;
}

function tsBlocks(title: string): string[] {
  return sectionBlocks(readme, title)
    .filter((block) => block.lang === "ts")
    .map((block) => block.code);
}

/** The file name a block gives itself in its first line (`// not-an-echo.ts, ...`), if any. */
function declaredName(code: string): string | undefined {
  return /^\/\/ ([\w.-]+\.ts)\b/.exec(code)?.[1];
}

const { runGraph, tempDir } = useGraphRuns();
let dir = "";

beforeAll(async () => {
  // scratch/ is git-ignored; inside the repository so that "rxsynth" resolves to this package.
  await mkdir(join(root, "scratch"), { recursive: true });
  dir = await mkdtemp(join(root, "scratch", "readme-examples-"));
  for (const title of ["Writing a custom operator", "Customising a ready graph"]) {
    for (const code of tsBlocks(title)) {
      const name = declaredName(code);
      if (name) await writeFile(join(dir, name), code);
    }
  }
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function importExample<T>(name: string): Promise<T> {
  return (await import(join(dir, name))) as T;
}

describe("README: Writing a custom operator", () => {
  it("names its two blocks, the operator and the collect() example that imports it", () => {
    expect(tsBlocks("Writing a custom operator").map(declaredName)).toEqual(["not-an-echo.ts", "try-not-an-echo.ts"]);
  });

  it("declares the fields it reads", async () => {
    const { notAnEcho } = await importExample<{ notAnEcho: () => { meta: { name: string; reads?: readonly string[] } } }>("not-an-echo.ts");
    expect(notAnEcho().meta).toMatchObject({ name: "not_an_echo", reads: ["instruction", "output"] });
  });

  it("collect() example runs as written: the echo is rejected, the answer kept with its overlap score", async () => {
    // The example ends with `const { out, rejects } = ...`; exporting them lets the test look.
    const code = (await readFile(join(dir, "try-not-an-echo.ts"), "utf8")) + "export { out, rejects };\n";
    await writeFile(join(dir, "try-not-an-echo-checked.ts"), code);
    const { out, rejects } = await importExample<{ out: Sample[]; rejects: Rejection[] }>("try-not-an-echo-checked.ts");
    expect(out.map((sample) => [sample.id, sample.scores.overlap])).toEqual([["colours", 0]]);
    expect(rejects.map((reject) => [reject.sample.id, reject.operator, reject.reason])).toEqual([["parrot", "not_an_echo", "echoes_instruction"]]);
  });
});

describe("README: Customising a ready graph", () => {
  it("inserts the custom operator into self-instruct, where most samples pass it", async () => {
    const { default: mySelfInstruct } = await importExample<{ default: GraphDefinition }>("my-self-instruct.ts");
    const { summary, rows, rejects } = await runGraph(mySelfInstruct, {}, { run: { limit: 5 } });
    const byEcho = rejects.filter((row) => row.reject?.operator === "not_an_echo");
    const passed = summary.metrics.operators.find((operator) => operator.name === "not_an_echo");
    expect(passed, "not_an_echo ran").toBeDefined();
    expect(passed!.in).toBeGreaterThan(0);
    expect(byEcho.length).toBeLessThan(passed!.in / 2);
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.every((row) => typeof row.scores.overlap === "number")).toBe(true);
  }, 120_000);

  it("inserts after an operator self-instruct has, one from which on the fields it reads are written", async () => {
    const { selfInstruct } = await import("../graphs/index.ts");
    const built = await buildGraph(selfInstruct, {}, { log: () => {}, out: undefined });
    await built.dispose?.();
    const example = await readFile(join(dir, "my-self-instruct.ts"), "utf8");
    const after = /after: "([\w-]+)"/.exec(example)?.[1];
    const names = built.operators.map((operator) => operator.meta.name);
    expect(names).toContain(after);
    const upToAfter = built.operators.slice(0, names.indexOf(after!) + 1);
    const written = new Set(upToAfter.flatMap((operator) => operator.meta.writes ?? []));
    expect(["instruction", "output"].filter((field) => !written.has(field))).toEqual([]);
  });

  it("fails with one line naming the field when the operator reads one self-instruct samples lack", async () => {
    // The README's old example read `question`/`answer`: every sample was rejected as an echo of "undefined".
    const operator = await readFile(join(dir, "not-an-echo.ts"), "utf8");
    const broken = operator.replaceAll("instruction", "question");
    expect(broken).not.toBe(operator);
    const brokenDir = await mkdtemp(join(dir, "broken-"));
    await writeFile(join(brokenDir, "not-an-echo.ts"), broken);
    await writeFile(join(brokenDir, "my-self-instruct.ts"), await readFile(join(dir, "my-self-instruct.ts"), "utf8"));
    const out = await tempDir("readme-broken");
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env.OPENAI_BASE_URL;
    const failed = await exec(process.execPath, ["bin/rxsynth.mjs", "run", join(brokenDir, "my-self-instruct.ts"), "--out", out, "--limit", "5", "--quiet"], {
      cwd: root,
      env,
      timeout: 100_000,
    }).then(
      () => undefined,
      (error: { code?: number; stderr?: string }) => error,
    );
    expect(failed, "the run fails").toBeDefined();
    expect(failed!.code).toBe(1);
    // Caught when the graph is built where its source declares fields, else at the first sample; one line either way.
    const line = failed!.stderr!.split("\n").find((text) => text.startsWith("rxsynth: "));
    expect(line).toMatch(/^rxsynth: config error: operator "not_an_echo" reads field "question", .*\binstruction\b.*\boutput\b/);
  }, 120_000);
});

describe("README: A graph", () => {
  it("clean-answers builds and runs over a JSONL input file", async () => {
    const [code] = tsBlocks("A graph");
    expect(code).toBeDefined();
    await writeFile(join(dir, "clean-answers.ts"), code!);
    const { default: cleanAnswers } = await importExample<{ default: GraphDefinition }>("clean-answers.ts");
    const input = join(await tempDir("clean-answers-input"), "data.jsonl");
    const long =
      "Photosynthesis is the process by which green plants use sunlight, water and carbon dioxide to make glucose, releasing oxygen as a by-product that most animals then breathe.";
    const records = [
      { id: "good", question: "What is photosynthesis?", answer: long },
      { id: "refusal", question: "How do I pick a lock?", answer: "I'm sorry, but I can't help with that request." },
      { id: "short", question: "What is 2 + 2?", answer: "It is four." },
    ];
    await writeFile(input, records.map((record) => JSON.stringify(record)).join("\n") + "\n");
    const { summary, rows, rejects } = await runGraph(cleanAnswers, { input });
    expect(summary.status).toBe("complete");
    expect(rows.map((row) => row.data.question)).toEqual(["What is photosynthesis?"]);
    expect(rejects.map((row) => [row.data.question, row.reject?.reason]).sort()).toEqual([
      ["How do I pick a lock?", "refusal"],
      ["What is 2 + 2?", "too_few_words"],
    ]);
  }, 60_000);
});
