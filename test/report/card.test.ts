import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { glob } from "tinyglobby";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { parse } from "yaml";
import * as readyGraphs from "../../graphs/index.ts";
import mix from "../../graphs/mix.ts";
import preferencePairs from "../../graphs/preference-pairs.ts";
import quickstart from "../../graphs/quickstart.ts";
import { buildGraph, isGraphDefinition, run, type GraphDefinition, type GraphOptionValues } from "../../src/index.ts";
import { arrowFormat, jsonlFormat } from "../../src/io/index.ts";
import { sizeCategory, writeCard } from "../../src/report/card.ts";
import { cardLicense } from "../../src/report/card-license.ts";
import { knownTechniqueGraphs, techniqueOf } from "../../src/report/card-techniques.ts";

let root: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "rxsynth-card-"));
});

afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

async function runInto<O extends GraphOptionValues>(definition: GraphDefinition<O>, overrides: Partial<O>, name: string, jsonl = false): Promise<string> {
  const out = join(root, name);
  vi.stubEnv("OPENAI_BASE_URL", "");
  try {
    const built = await buildGraph(definition, overrides, { log: () => {}, out });
    await run(jsonl ? { ...built, output: { formats: [jsonlFormat()] } } : built, { out, log: () => {} });
  } finally {
    vi.unstubAllEnvs();
  }
  return out;
}

// --- reading the card back -------------------------------------------------------------------------

interface Card {
  readonly front: Record<string, unknown>;
  readonly body: string;
}

async function readCard(dir: string): Promise<Card> {
  const text = await readFile(join(dir, "README.md"), "utf8");
  const match = /^---\n([\s\S]*?)\n---\n([\s\S]*)$/.exec(text);
  expect(match, "the card starts with YAML front matter between --- lines").not.toBeNull();
  return { front: parse(match![1]!) as Record<string, unknown>, body: match![2]! };
}

/** The cells of the first Markdown table after the line that starts with `heading` and within its section, header row left out. */
function tableAfter(body: string, heading: string): string[][] {
  const lines = body.split("\n");
  const start = lines.findIndex((line) => line.startsWith(heading));
  expect(start, `the card has "${heading}"`).toBeGreaterThanOrEqual(0);
  const rows: string[][] = [];
  let inTable = false;
  for (const line of lines.slice(start + 1)) {
    if (line.startsWith("## ")) break;
    if (line.startsWith("|")) {
      inTable = true;
      rows.push(line.slice(1, -1).split(" | ").map((cell) => cell.trim()));
    } else if (inTable) break;
  }
  return rows.slice(2);
}

interface DataConfig {
  config_name: string;
  data_files: { split: string; path: string | string[] }[];
}

function configPaths(front: Record<string, unknown>, name: string): string[] {
  const config = (front.configs as DataConfig[]).find((c) => c.config_name === name);
  expect(config, `config ${name}`).toBeDefined();
  return config!.data_files.flatMap((files) => (Array.isArray(files.path) ? files.path : [files.path]));
}

/** Files the manifest(s) list for one kind, relative to the run folder. */
async function listedShards(dir: string, kind: "accepted" | "rejects", chunks: readonly string[] = []): Promise<string[]> {
  const folders = chunks.length > 0 ? chunks.map((chunk) => `chunks/${chunk}/`) : [""];
  const files: string[] = [];
  for (const folder of folders) {
    const manifest = JSON.parse(await readFile(join(dir, folder, "manifest.json"), "utf8")) as { shards: { file: string; kind: string }[] };
    for (const shard of manifest.shards) if (shard.kind === kind) files.push(`${folder}${shard.file}`);
  }
  return files.sort();
}

async function globbed(dir: string, patterns: readonly string[]): Promise<string[]> {
  return (await glob([...patterns], { cwd: dir, onlyFiles: true })).sort();
}

// --- the independent reader: DuckDB over the same files ------------------------------------------

type Rows = unknown[][];

async function duck(sql: string): Promise<Rows> {
  const { DuckDBInstance } = await import("@duckdb/node-api");
  const db = await DuckDBInstance.create(":memory:");
  const connection = await db.connect();
  try {
    return (await connection.runAndReadAll(sql)).getRows().map((row) => row.map((cell) => (typeof cell === "bigint" ? Number(cell) : cell)));
  } finally {
    connection.closeSync();
  }
}

/** A DuckDB table function over a config's paths, as the Hub would read them. */
function reader(dir: string, paths: readonly string[]): string {
  const list = `[${paths.map((path) => `'${join(dir, path).replace(/'/g, "''")}'`).join(", ")}]`;
  return paths[0]!.endsWith(".jsonl") ? `read_json(${list}, format = 'newline_delimited')` : `read_parquet(${list})`;
}

/** Each figure the card states, as DuckDB computes it from the files its configs name. */
async function expectFiguresMatchDuckDB(dir: string, card: Card): Promise<void> {
  const accepted = reader(dir, configPaths(card.front, "default"));
  const rejects = reader(dir, configPaths(card.front, "rejects"));
  const jsonl = configPaths(card.front, "default")[0]!.endsWith(".jsonl");
  const promptHash = jsonl ? "promptHash" : "prompt_hash";

  const [[rows]] = (await duck(`select count(*) from ${accepted}`)) as [[number]];
  const [[rejected]] = (await duck(`select count(*) from ${rejects}`)) as [[number]];
  expect(card.body).toContain(`: ${rows} accepted rows, and ${rejected} rejected rows`);

  const reasons = await duck(`select reject.operator, reject.reason, count(*) n from ${rejects} group by all order by n desc, 1, 2`);
  const shownReasons = tableAfter(card.body, "Rejected rows by operator and reason").map(([op, reason, n]) => [op, reason, Number(n)]);
  expect(shownReasons).toEqual(reasons);

  const origins = await duck(`select provenance.origin, count(*) from ${accepted} group by all order by 1`);
  const shownOrigins = tableAfter(card.body, "## Human, synthetic and template rows").map(([origin, n, share]) => [origin, Number(n), share]);
  expect(shownOrigins).toEqual(origins.map(([origin, n]) => [origin, n, `${((100 * (n as number)) / rows).toFixed(1)} %`]));

  const depths = await duck(`select provenance.depth, count(*) from ${accepted} group by all order by 1`);
  expect(tableAfter(card.body, "Generation depth").map(([depth, n]) => [Number(depth), Number(n)])).toEqual(depths);

  const hashes = await duck(
    `select s.op, count(*), count(distinct s.${promptHash}) from (select unnest(provenance.steps) s from ${accepted}) where s.${promptHash} is not null group by all order by 1`,
  );
  const shownHashes = tableAfter(card.body, "## Prompt hashes");
  expect(shownHashes.map(([op, steps, distinct]) => [op, Number(steps), Number(distinct)]).sort()).toEqual(hashes);
  const perHash = new Map(
    (await duck(`select s.op || ' ' || s.${promptHash}, count(*) from (select unnest(provenance.steps) s from ${accepted}) where s.${promptHash} is not null group by all`)).map(
      ([key, n]) => [key as string, n as number],
    ),
  );
  for (const [op, , , listed] of shownHashes) {
    const pairs = [...listed!.matchAll(/`([0-9a-f]+)`: (\d+)/g)];
    const counts = pairs.map(([, hash, n]) => [perHash.get(`${op} ${hash}`), Number(n)]);
    for (const [actual, shown] of counts) expect(shown, `count of a listed prompt hash of ${op}`).toBe(actual);
    // Listed are the most repeated: none left out is sent more often than the least listed.
    const least = Math.min(...counts.map(([, n]) => n!));
    const others = [...perHash].filter(([key]) => key.startsWith(`${op} `) && !pairs.some(([, hash]) => key === `${op} ${hash}`));
    if (pairs.length > 0) for (const [, n] of others) expect(n).toBeLessThanOrEqual(least);
  }
}

/** The funnel table equals the manifest's operatorCounts, in pipeline order. */
function expectFunnel(card: Card, counts: Record<string, { in: number; out: number; rejected: number }>): void {
  const shown = tableAfter(card.body, "Samples into and out of each operator").map(([op, i, o, r]) => [op, Number(i), Number(o), Number(r)]);
  expect(shown).toEqual(Object.entries(counts).map(([op, c]) => [op, c.in, c.out, c.rejected]));
}

async function manifestOf(dir: string) {
  return JSON.parse(await readFile(join(dir, "manifest.json"), "utf8")) as {
    shards: { file: string; kind: string; rows: number }[];
    operatorCounts: Record<string, { in: number; out: number; rejected: number }>;
  };
}

// --- the cases -----------------------------------------------------------------------------------

describe("the dataset card of a quickstart run", () => {
  let out: string;
  let card: Card;

  beforeAll(async () => {
    out = await runInto(quickstart, { target: 60 }, "quickstart");
    await writeCard(out);
    card = await readCard(out);
  }, 120_000);

  it("has Hugging Face front matter that parses as YAML", () => {
    expect(card.front).toMatchObject({
      license: "apache-2.0",
      language: ["en"],
      task_categories: ["text-generation"],
      size_categories: ["n<1K"],
      tags: ["synthetic", "rxsynth", "self-instruct"],
    });
    const configs = card.front.configs as DataConfig[];
    expect(configs.map((c) => c.config_name)).toEqual(["default", "rejects"]);
    expect(configs[0]!.data_files).toEqual([{ split: "train", path: "part-*.parquet" }]);
  });

  it("points its configs at exactly the shards the manifest lists", async () => {
    expect(await globbed(out, configPaths(card.front, "default"))).toEqual(await listedShards(out, "accepted"));
    expect(await globbed(out, configPaths(card.front, "rejects"))).toEqual(await listedShards(out, "rejects"));
  });

  it("states rows, rejects by reason, origins, depths and prompt hashes as DuckDB counts them from the Parquet files", async () => {
    await expectFiguresMatchDuckDB(out, card);
    expectFunnel(card, (await manifestOf(out)).operatorCounts);
  });

  it("names the paper, the model and endpoint, and the licence notes", () => {
    expect(card.body).toContain("[arXiv:2212.10560](https://arxiv.org/abs/2212.10560)");
    expect(card.body).toContain("model `rxsynth-sim` at `builtin-simulator`");
    expect(card.body).toContain("built-in simulator: every model-written field is a placeholder");
    expect(card.body).toContain("restrict using outputs to develop models that compete");
    expect(card.body).toContain("Self-Instruct seed tasks (yizhongw/self-instruct, Apache License 2.0");
  });

  it("writes the same bytes again for the same folder", async () => {
    const first = await readFile(join(out, "README.md"), "utf8");
    await writeCard(out);
    expect(await readFile(join(out, "README.md"), "utf8")).toBe(first);
  });

  it("lists the committed shards by name when a glob would also match a crashed run's leftover", async () => {
    const leftover = join(root, "leftover");
    await cp(out, leftover, { recursive: true });
    await writeFile(join(leftover, "part-99999.parquet"), "not committed");
    await writeCard(leftover);
    const again = await readCard(leftover);
    expect(configPaths(again.front, "default")).toEqual(await listedShards(leftover, "accepted"));
  });

  it("describes a scaled-out folder's chunks as one run", async () => {
    const scaled = join(root, "scaled");
    await cp(out, join(scaled, "chunks", "rounds-0"), { recursive: true });
    await cp(out, join(scaled, "chunks", "rounds-9"), { recursive: true });
    await writeCard(scaled);
    const merged = await readCard(scaled);
    const chunks = ["rounds-0", "rounds-9"];
    expect(configPaths(merged.front, "default")).toEqual(["chunks/*/part-*.parquet"]);
    expect(await globbed(scaled, configPaths(merged.front, "default"))).toEqual(await listedShards(scaled, "accepted", chunks));
    expect(await globbed(scaled, configPaths(merged.front, "rejects"))).toEqual(await listedShards(scaled, "rejects", chunks));
    expect(merged.body).toContain("2 chunk folders under `chunks/`, described here as one run");
    await expectFiguresMatchDuckDB(scaled, merged);
    const single = (await manifestOf(out)).operatorCounts;
    expectFunnel(merged, Object.fromEntries(Object.entries(single).map(([op, c]) => [op, { in: 2 * c.in, out: 2 * c.out, rejected: 2 * c.rejected }])));
  });
});

describe("the dataset card of a preference-pairs run written as JSONL", () => {
  it("points its configs at the JSONL shards and states what DuckDB counts in them", { timeout: 120_000 }, async () => {
    const out = await runInto(preferencePairs, { count: 8 }, "preference-pairs", true);
    await writeCard(out);
    const card = await readCard(out);
    expect(card.front).toMatchObject({ license: "apache-2.0", tags: ["synthetic", "rxsynth", "preference-pairs"] });
    expect(configPaths(card.front, "default")).toEqual(["part-*.jsonl"]);
    expect(await globbed(out, configPaths(card.front, "default"))).toEqual(await listedShards(out, "accepted"));
    expect(await globbed(out, configPaths(card.front, "rejects"))).toEqual(await listedShards(out, "rejects"));
    await expectFiguresMatchDuckDB(out, card);
    expect(card.body).toContain("[arXiv:2310.01377](https://arxiv.org/abs/2310.01377)");
  });
});

describe("the dataset card of a mix run", () => {
  let out: string;
  let card: Card;

  beforeAll(async () => {
    out = await runInto(mix, {}, "mix");
    await writeCard(out);
    card = await readCard(out);
  }, 60_000);

  it("gives the human/synthetic ratio DuckDB counts in the shards", async () => {
    const origins = tableAfter(card.body, "## Human, synthetic and template rows").map(([origin]) => origin);
    expect(origins).toEqual(["human", "synthetic"]);
    await expectFiguresMatchDuckDB(out, card);
    expect(card.body).toContain("[arXiv:2404.01413](https://arxiv.org/abs/2404.01413)");
  });

  it("names an unknown licence `unstated` in the front matter and says why", async () => {
    const custom = join(root, "custom-input");
    await cp(out, custom, { recursive: true });
    const manifest = JSON.parse(await readFile(join(custom, "manifest.json"), "utf8")) as { options: Record<string, unknown> };
    manifest.options.humanPath = "my-prompts.jsonl";
    await writeFile(join(custom, "manifest.json"), JSON.stringify(manifest));
    await writeCard(custom);
    const { front } = await readCard(custom);
    expect(front).toMatchObject({ license: "other", license_name: "unstated" });
    expect(front.license_details).toContain("`humanPath` (`my-prompts.jsonl`) is not known to rxsynth");
  });

  it("states the same figures for the same run written as Arrow, whose configs name the .arrow shards", { timeout: 60_000 }, async () => {
    const arrow = join(root, "mix-arrow");
    vi.stubEnv("OPENAI_BASE_URL", "");
    try {
      const built = await buildGraph(mix, {}, { log: () => {}, out: arrow });
      await run({ ...built, output: { formats: [arrowFormat()] } }, { out: arrow, log: () => {} });
    } finally {
      vi.unstubAllEnvs();
    }
    await writeCard(arrow);
    const arrowCard = await readCard(arrow);
    expect(configPaths(arrowCard.front, "default")).toEqual(["part-*.arrow"]);
    expect(await globbed(arrow, configPaths(arrowCard.front, "default"))).toEqual(await listedShards(arrow, "accepted"));
    for (const heading of ["## Human, synthetic and template rows", "Generation depth", "Rejected rows by operator and reason", "## Prompt hashes"]) {
      expect(tableAfter(arrowCard.body, heading), heading).toEqual(tableAfter(card.body, heading));
    }
  });
});

describe("the card's tables", () => {
  it("knows the technique of every ready graph", () => {
    const names = (Object.values(readyGraphs) as unknown[])
      .filter(isGraphDefinition)
      .map((graph) => graph.name)
      .sort();
    expect(knownTechniqueGraphs()).toEqual(names);
    for (const name of names) {
      for (const paper of techniqueOf(name)!.papers) {
        if (paper.arxiv) expect(paper.url).toBe(`https://arxiv.org/abs/${paper.arxiv}`);
        if (paper.arxiv) expect(paper.arxiv).toMatch(/^\d{4}\.\d{5}$/);
      }
    }
  });

  it("takes the licence from the graph's option, else the built-in seed data's, else says other and why", () => {
    expect(cardLicense({ license: "cc-by-4.0", input: "mine.jsonl" }).license).toBe("cc-by-4.0");
    expect(cardLicense({ problemsPath: "builtin:HumanEval.jsonl.gz" })).toMatchObject({ license: "mit" });
    const mine = cardLicense({ input: "data/mine.jsonl", seed: 1 });
    expect(mine.license).toBe("other");
    expect(mine.notes.join(" ")).toContain("`input` (`data/mine.jsonl`) is not known to rxsynth");
    expect(cardLicense({ kind: "invoice", count: 5 }).license).toBe("other");
  });

  it("puts a row count in Hugging Face's size buckets", () => {
    expect([0, 999, 1000, 9999, 10_000, 999_999, 1_000_000, 2e12].map(sizeCategory)).toEqual([
      "n<1K",
      "n<1K",
      "1K<n<10K",
      "1K<n<10K",
      "10K<n<100K",
      "100K<n<1M",
      "1M<n<10M",
      "n>1T",
    ]);
  });
});
