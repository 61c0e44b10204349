import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { defineFilter, drop, run } from "../../src/index.ts";
import { memorySource } from "../../src/io/memory-source.ts";
import { cardText, writeCard } from "../../src/report/card.ts";
import type { CardData } from "../../src/report/card-data.ts";
import { cardLicense } from "../../src/report/card-license.ts";

// The card's values come from the user: operator names, reject reasons, model names, origins, the `license`
// option. None of them may shift a table's columns, add a heading or break out of the front matter.

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "rxsynth-card-escaping-"));
});
afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

const SECTIONS = [
  "## Loading",
  "## Technique",
  "## Models and endpoints",
  "## Prompt hashes",
  "## Filters and funnel",
  "## Deduplication",
  "## Diversity",
  "## Human, synthetic and template rows",
  "## Licence: read before you train on or release these rows",
  "## Reproduce",
];

/**
 * A table row's cells as GFM reads them (cmark-gfm's table extension): a backslash escapes the character
 * after it, inside code spans too, and every other pipe ends a cell. The outer pipes are left out.
 */
function cellsOf(line: string): string[] {
  const cells: string[] = [];
  let cell = "";
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === "\\" && i + 1 < line.length) {
      cell += c + line[++i]!;
    } else if (c === "|") {
      cells.push(cell);
      cell = "";
    } else cell += c;
  }
  cells.push(cell);
  // A row starts and ends with a pipe: the first and last pieces are empty.
  return cells.slice(1, -1);
}

/** What a cell shows: the escapes of pipes and backslashes undone, the padding trimmed. */
function shown(cell: string): string {
  return cell.trim().replace(/\\([\\|])/g, "$1");
}

/** Each table of the body: its consecutive lines that start with a pipe. */
function tablesOf(body: string): string[][] {
  const tables: string[][] = [];
  let current: string[] | undefined;
  for (const line of body.split("\n")) {
    if (line.startsWith("|")) (current ??= (tables.push([]), tables.at(-1)!)).push(line);
    else current = undefined;
  }
  return tables;
}

function readCard(text: string): { front: Record<string, unknown>; body: string } {
  const match = /^---\n([\s\S]*?)\n---\n([\s\S]*)$/.exec(text);
  expect(match, "the card starts with YAML front matter between --- lines").not.toBeNull();
  return { front: parse(match![1]!) as Record<string, unknown>, body: match![2]! };
}

/** Lines a Markdown reader would take for structure the card did not write: setext underlines, thematic breaks, headings. */
function expectOnlyItsOwnStructure(body: string): void {
  const lines = body.split("\n");
  let fenced = false;
  const headings: string[] = [];
  for (const line of lines) {
    if (line.startsWith("```")) fenced = !fenced;
    if (fenced) continue;
    expect(line, "no line is a setext underline or a thematic break").not.toMatch(/^ {0,3}(?:(?:-[ \t]*){3,}|(?:_[ \t]*){3,}|(?:\*[ \t]*){3,}|=+[ \t]*)$/);
    if (/^ {0,3}#{1,6}(?:[ \t]|$)/.test(line)) headings.push(line);
  }
  expect(headings.slice(1)).toEqual(SECTIONS);
}

function expectTablesAligned(body: string): void {
  const tables = tablesOf(body);
  expect(tables.length).toBeGreaterThan(0);
  for (const table of tables) {
    const columns = cellsOf(table[0]!).length;
    for (const line of table) expect(cellsOf(line), line).toHaveLength(columns);
  }
}

function cardData(names: { operator: string; reason: string; model: string; origin: string; group: string; license?: string }): CardData {
  const dedup = `${names.operator} dedup`;
  return {
    graph: "custom",
    options: names.license === undefined ? { count: 3 } : { count: 3, license: names.license },
    optionsHash: "0123abcd",
    identity: { endpoint: { baseURL: "http://127.0.0.1:1/v1", model: names.model } },
    identityHistory: undefined,
    createdAt: "2026-01-01T00:00:00.000Z",
    updatedAt: "2026-01-01T00:00:01.000Z",
    complete: true,
    chunks: 0,
    accepted: { format: "parquet", paths: [`part-${names.group}.parquet`], files: 1, rows: 2, bytes: 10 },
    rejects: { format: "parquet", paths: ["rejects-*.parquet"], files: 1, rows: 1, bytes: 10 },
    rows: 2,
    rejectedRows: 1,
    origins: { [names.origin]: 1, human: 1 },
    depths: [[0, 1], [1, 1]],
    promptHashes: [{ operator: names.operator, steps: 2, distinct: 1, capped: false, top: [{ hash: "abc|def", count: 2 }] }],
    models: [{ operator: names.operator, model: names.model, steps: 2 }],
    funnel: [
      { operator: names.operator, in: 3, out: 2, rejected: 1 },
      { operator: dedup, in: 2, out: 2, rejected: 0 },
    ],
    rejectReasons: [{ operator: names.operator, reason: names.reason, count: 1 }],
    totals: { "dedup.indexed": 2 },
    operators: { [dedup]: { version: "1", params: { fields: [names.reason], threshold: 0.8 } } },
    diversity: { summary: { groups: { [names.group]: { samples: 2, distinct1: { ratio: 0.5 } } } }, note: undefined },
  };
}

/** Strings made of what Markdown tables and YAML front matter are sensitive to. */
const hostile = fc.string({
  unit: fc.constantFrom("a", "|", "||", "\\", "\\|", "\n", "\r\n", "\r", "`", "---", "===", " ", "#", "*", ":", "[", "'", '"', "-"),
  minLength: 1,
  maxLength: 24,
});

describe("the card's tables", () => {
  it("keep every row's column count when an operator name or reject reason holds pipes and line breaks", () => {
    const data = cardData({ operator: "a||b", reason: "too|long\nfor | one", model: "m|x\\", origin: "hu|man", group: "g\\|h" });
    const { body } = readCard(cardText(data));
    expectTablesAligned(body);
    const funnel = tablesOf(body).find((table) => table[0]!.startsWith("| operator | in |"))!;
    expect(cellsOf(funnel[2]!).map(shown)).toEqual(["a||b", "3", "2", "1"]);
    const reasons = tablesOf(body).find((table) => table[0]!.startsWith("| operator | reason |"))!;
    expect(cellsOf(reasons[2]!).map(shown)).toEqual(["a||b", "too|long for | one", "1"]);
    expectOnlyItsOwnStructure(body);
  });

  it("stay aligned for any names made of pipes, backslashes, backticks and line breaks", () => {
    fc.assert(
      fc.property(hostile, hostile, hostile, hostile, hostile, (operator, reason, model, origin, group) => {
        const { body } = readCard(cardText(cardData({ operator, reason, model, origin, group })));
        expectTablesAligned(body);
        const reasons = tablesOf(body).find((table) => table[0]!.startsWith("| operator | reason |"))!;
        const oneLine = (text: string) => text.replace(/\r\n?|\n/g, " ").trim();
        expect(cellsOf(reasons[2]!).map(shown)).toEqual([oneLine(operator), oneLine(reason), "1"]);
      }),
      { seed: 13, numRuns: 300 },
    );
  });
});

describe("the card's licence", () => {
  const KNOWN = ["apache-2.0", "mit", "cc-by-4.0", "cc-by-nc-sa-4.0", "llama3.1", "openrail++", "other", "unknown"];

  it("keeps a Hugging Face identifier, in the Hub's lower case", () => {
    for (const id of KNOWN) expect(cardLicense({ license: id }).license).toBe(id);
    expect(cardLicense({ license: " MIT " }).license).toBe("mit");
    expect(cardLicense({ license: "Apache-2.0" }).license).toBe("apache-2.0");
  });

  it("says `other` for an unknown value, names it with a slug and quotes it on one line", () => {
    const hostileValue = "mit\n---\nevil: [";
    const licence = cardLicense({ license: hostileValue });
    expect(licence).toMatchObject({ license: "other", name: "mit-evil" });
    const { front, body } = readCard(cardText(cardData({ operator: "op", reason: "r", model: "m", origin: "human", group: "all", license: hostileValue })));
    expect(front).toMatchObject({ license: "other", license_name: "mit-evil" });
    expect(front.license_details).toContain("`mit --- evil: [`");
    expect(front).not.toHaveProperty("evil");
    expect(body).toContain("Front matter licence: `other`.");
    expect(body).toContain("- The graph's `license` option, `mit --- evil: [`, is not a Hugging Face licence identifier");
    expectOnlyItsOwnStructure(body);
  });

  it("writes front matter that parses as YAML, with a known identifier or `other`, for any value", () => {
    const linesFor = (license: string) =>
      readCard(cardText(cardData({ operator: "op", reason: "r", model: "m", origin: "human", group: "all", license }))).body.split("\n").length;
    fc.assert(
      fc.property(fc.oneof(hostile, fc.string({ maxLength: 40 }), fc.constantFrom(...KNOWN)), (license) => {
        const text = cardText(cardData({ operator: "op", reason: "r", model: "m", origin: "human", group: "all", license }));
        const { front, body } = readCard(text);
        const id = license.trim().toLowerCase();
        expect(front.license).toBe(KNOWN.includes(id) ? id : "other");
        expect(Object.keys(front).sort()).toEqual(
          ["configs", "license", "pretty_name", "size_categories", "tags", "task_categories", ...(front.license === "other" ? ["license_details", "license_name"] : [])].sort(),
        );
        if (front.license === "other") expect(front.license_name).toMatch(/^[a-z0-9.+-]+$/);
        // Whatever the value, the card has the lines it has for a plain one: the value took one line's part.
        expect(body.split("\n")).toHaveLength(linesFor(front.license === "other" ? "my-own-licence" : "mit"));
        expectOnlyItsOwnStructure(body);
      }),
      { seed: 13, numRuns: 300 },
    );
  });
});

describe("the card of a run whose operator and reasons are hostile", () => {
  it("parses as YAML front matter and aligned tables when written from the run folder", async () => {
    const out = join(root, "hostile");
    await run(
      {
        name: "hostile",
        options: { license: "mit\n---\nevil: [", count: 6 },
        sources: [memorySource("numbers", Array.from({ length: 6 }, (_, n) => ({ n, text: `row ${n}` })))],
        operators: [defineFilter({ name: "a||b", test: (sample) => ((sample.data.n as number) % 3 === 0 ? drop("odd|even\nthird") : true) })],
      },
      { out, log: () => {} },
    );
    await writeCard(out);
    const { front, body } = readCard(await readFile(join(out, "README.md"), "utf8"));
    expect(front).toMatchObject({ license: "other", license_name: "mit-evil" });
    expectTablesAligned(body);
    const reasons = tablesOf(body).find((table) => table[0]!.startsWith("| operator | reason |"))!;
    expect(cellsOf(reasons[2]!).map(shown)).toEqual(["a||b", "odd|even third", "2"]);
    expectOnlyItsOwnStructure(body);
  });
});
