import { open, rename } from "node:fs/promises";
import { join } from "node:path";
import { stringify } from "yaml";
import { collectCardData, type CardData, type ConfigFiles } from "./card-data.ts";
import { cardLicense } from "./card-license.ts";
import { techniqueOf, type Technique } from "./card-techniques.ts";

export const CARD_FILE = "README.md";
const SIMULATOR = "builtin-simulator";
/** Prompt hashes listed per operator (card-data keeps this many of the most repeated). */
const TOP_LISTED = 10;

/**
 * Writes the run folder's dataset card, `README.md`: Hugging Face front matter, then what the run made
 * and how, from its manifest(s) and one bounded pass over its shards. The same folder gives the same
 * bytes (the only times in it are the manifest's). Written to a temporary name and renamed, so a reader
 * never sees half a card.
 */
export async function writeCard(runDir: string): Promise<{ file: string }> {
  const text = cardText(await collectCardData(runDir));
  const file = join(runDir, CARD_FILE);
  const temporary = `${file}.${process.pid}.tmp`;
  const handle = await open(temporary, "w");
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temporary, file);
  return { file };
}

/** The card for `data`: front matter, then the body. */
export function cardText(data: CardData): string {
  const technique = techniqueOf(data.graph);
  const sections = [
    overview(data, technique),
    loading(data),
    techniqueSection(data, technique),
    modelsSection(data),
    promptHashSection(data),
    funnelSection(data),
    dedupSection(data),
    diversitySection(data),
    provenanceSection(data),
    licenceSection(data),
    reproduceSection(data),
  ];
  return `---\n${stringify(frontMatter(data, technique), { lineWidth: 0 })}---\n\n${sections.join("\n\n")}\n`;
}

/** Hugging Face's size buckets, by accepted rows. */
export function sizeCategory(rows: number): string {
  const buckets: [number, string][] = [
    [1e3, "n<1K"],
    [1e4, "1K<n<10K"],
    [1e5, "10K<n<100K"],
    [1e6, "100K<n<1M"],
    [1e7, "1M<n<10M"],
    [1e8, "10M<n<100M"],
    [1e9, "100M<n<1B"],
    [1e10, "1B<n<10B"],
    [1e11, "10B<n<100B"],
    [1e12, "100B<n<1T"],
  ];
  return buckets.find(([limit]) => rows < limit)?.[1] ?? "n>1T";
}

const LANGUAGE_CODES: Readonly<Record<string, string>> = {
  english: "en", german: "de", french: "fr", spanish: "es", italian: "it", portuguese: "pt", dutch: "nl",
  chinese: "zh", japanese: "ja", korean: "ko", russian: "ru", arabic: "ar", hindi: "hi", polish: "pl", turkish: "tr",
};

/** The ready graphs write English; a translation graph adds the languages its options name. */
function languages(data: CardData, technique: Technique | undefined): string[] | undefined {
  if (!technique) return undefined;
  const options = (data.options ?? {}) as Record<string, unknown>;
  const named = Object.entries(options)
    .filter(([key, value]) => key.endsWith("Language") && typeof value === "string")
    .map(([, value]) => LANGUAGE_CODES[(value as string).toLowerCase()])
    .filter((code): code is string => code !== undefined);
  return [...new Set(["en", ...named])];
}

function frontMatter(data: CardData, technique: Technique | undefined): Record<string, unknown> {
  const language = languages(data, technique);
  const configs: Record<string, unknown>[] = [];
  if (data.accepted) configs.push({ config_name: "default", data_files: [{ split: "train", path: pathValue(data.accepted) }] });
  if (data.rejects) configs.push({ config_name: "rejects", data_files: [{ split: "train", path: pathValue(data.rejects) }] });
  const { license, name, notes } = cardLicense(data.options);
  // The Hub asks an `other` licence for a name; the reason it is not known goes in its text field.
  const unstated = license === "other" ? { license_name: name ?? "unstated", license_details: notes.join(" ") } : {};
  return {
    license,
    ...unstated,
    ...(language ? { language } : {}),
    task_categories: [...(technique?.taskCategories ?? ["text-generation"])],
    size_categories: [sizeCategory(data.rows)],
    tags: [...new Set(["synthetic", "rxsynth", technique?.tag ?? "custom-graph"])],
    pretty_name: `${data.graph} (rxsynth)`,
    ...(configs.length > 0 ? { configs } : {}),
  };
}

function pathValue(files: ConfigFiles): string | string[] {
  return files.paths.length === 1 ? files.paths[0]! : [...files.paths];
}

function overview(data: CardData, technique: Technique | undefined): string {
  const made = technique ? `${technique.name}, with the rxsynth graph \`${data.graph}\`` : `the custom rxsynth graph \`${data.graph}\``;
  const state = data.complete ? "The run is complete" : "The run is not complete: this card describes what it had committed";
  const scale = data.chunks > 0 ? ` It was scaled out: ${data.chunks} chunk folders under \`chunks/\`, described here as one run.` : "";
  return [
    `# ${data.graph} (rxsynth)`,
    "",
    `Synthetic data made by ${made}: ${data.rows} accepted rows, and ${data.rejectedRows} rejected rows kept apart with their reasons (the \`rejects\` config). ` +
      `${state} (started ${data.createdAt}, last committed ${data.updatedAt}).${scale}` +
      (isSimulated(data) ? " **Its model answers came from rxsynth's built-in simulator: they are placeholders, not training data.**" : ""),
  ].join("\n");
}

function loading(data: CardData): string {
  const lines = ["## Loading", "", "```python", "from datasets import load_dataset", "", 'rows = load_dataset("path/to/this/folder")  # the accepted rows, split "train"'];
  if (data.rejects) lines.push('rejects = load_dataset("path/to/this/folder", "rejects")  # rejected rows, with reject.operator and reject.reason');
  lines.push("```", "");
  lines.push("| config | format | files | rows | paths |", "|---|---|---|---|---|");
  for (const [name, files] of [["default", data.accepted], ["rejects", data.rejects]] as const) {
    if (files) lines.push(tableRow([name, files.format, files.files, files.rows, files.paths.map((p) => `\`${p}\``).join(", ")]));
  }
  lines.push(
    "",
    "Each row is `{id, data, provenance, scores}` (rejects add `reject`): `data` holds the fields, `provenance` the origin, " +
      "source, parents, generation depth and every step that changed the row (operator, version, model, prompt hash, tokens).",
  );
  return lines.join("\n");
}

function techniqueSection(data: CardData, technique: Technique | undefined): string {
  const lines = ["## Technique", ""];
  if (!technique) {
    lines.push(`\`${data.graph}\` is not one of rxsynth's ready graphs, so its technique is not recorded here: describe it and cite what it follows.`);
    return lines.join("\n");
  }
  lines.push(`${technique.name}.`);
  if (technique.papers.length === 0) {
    lines.push("", "No paper: the rows come from seeded templates.");
    return lines.join("\n");
  }
  lines.push("", "| paper | authors | year | link | what the graph takes from it |", "|---|---|---|---|---|");
  for (const paper of technique.papers) {
    const link = paper.arxiv ? `[arXiv:${paper.arxiv}](${paper.url})` : `[link](${paper.url})`;
    lines.push(tableRow([paper.title, paper.authors, paper.year, link, paper.role ?? "the technique"]));
  }
  return lines.join("\n");
}

function modelsSection(data: CardData): string {
  const lines = ["## Models and endpoints", ""];
  if (!data.identity) lines.push("No endpoint is recorded: no model answered this run.");
  else for (const [key, value] of Object.entries(data.identity)) lines.push(`- ${key}: ${describeEndpoint(value)}`);
  if (data.identityHistory && data.identityHistory.length > 0) {
    lines.push("", "The folder was resumed against other endpoints (`--allow-endpoint-change`); earlier identities, oldest first:", "");
    for (const entry of data.identityHistory) {
      const parts = Object.entries(entry.identity).map(([key, value]) => `${key} ${describeEndpoint(value)}`);
      lines.push(`- until ${entry.until}: ${parts.join("; ")}`);
    }
  }
  if (data.models.length > 0) {
    lines.push("", "Model steps in the accepted rows' provenance:", "", "| operator | model | steps |", "|---|---|---|");
    for (const { operator, model, steps } of data.models) lines.push(tableRow([operator, model, steps]));
  }
  return lines.join("\n");
}

function describeEndpoint(value: unknown): string {
  if (value && typeof value === "object" && "baseURL" in value) {
    const { baseURL, model, ...rest } = value as { baseURL: unknown; model?: unknown };
    const extra = Object.keys(rest).length > 0 ? ` ${JSON.stringify(rest)}` : "";
    return `model \`${String(model ?? "(unset)")}\` at \`${String(baseURL)}\`${extra}`;
  }
  return `\`${JSON.stringify(value)}\``;
}

function promptHashSection(data: CardData): string {
  const lines = ["## Prompt hashes", ""];
  if (data.promptHashes.length === 0) {
    lines.push("No step of the accepted rows sent a prompt.");
    return lines.join("\n");
  }
  lines.push(
    "Each LLM step records the hash of the messages it sent. Counted over the accepted rows' steps (a step a row inherited from its parent counts in each row); " +
      `listed: every hash when there are at most ${TOP_LISTED}, else the most repeated ones.`,
    "",
    "| operator | steps with a prompt | distinct prompts | most repeated (hash: rows) |",
    "|---|---|---|---|",
  );
  for (const tally of data.promptHashes) {
    const distinct = tally.capped ? `more than ${tally.distinct} (counted up to ${tally.distinct})` : String(tally.distinct);
    const shown = tally.distinct <= TOP_LISTED && !tally.capped ? tally.top : tally.top.filter(({ count }) => count > 1);
    const top = shown.length > 0 ? shown.map(({ hash, count }) => `\`${hash}\`: ${count}`).join(", ") : "each prompt once";
    lines.push(tableRow([tally.operator, tally.steps, distinct, top]));
  }
  return lines.join("\n");
}

function funnelSection(data: CardData): string {
  const lines = ["## Filters and funnel", ""];
  if (data.funnel.length > 0) {
    lines.push(
      "Samples into and out of each operator, in pipeline order (added up over every session of the folder; a sample redone after a crash counts in each):",
      "",
      "| operator | in | out | rejected |",
      "|---|---|---|---|",
    );
    for (const step of data.funnel) lines.push(tableRow([step.operator, step.in, step.out, step.rejected]));
    lines.push("");
  }
  if (data.rejectReasons.length === 0) {
    lines.push("No row was rejected.");
    return lines.join("\n");
  }
  lines.push("Rejected rows by operator and reason, counted from the rejects shards:", "", "| operator | reason | rows |", "|---|---|---|");
  for (const { operator, reason, count } of data.rejectReasons) lines.push(tableRow([operator, reason, count]));
  return lines.join("\n");
}

function dedupSection(data: CardData): string {
  const lines = ["## Deduplication", ""];
  const order = data.funnel.map((step) => step.operator);
  const position = (name: string) => (order.includes(name) ? order.indexOf(name) : order.length);
  const operators = Object.entries(data.operators)
    .filter(([name]) => name.includes("dedup"))
    .sort(([a], [b]) => position(a) - position(b) || (a < b ? -1 : 1));
  const figures = Object.entries(data.totals).filter(([key]) => key.startsWith("dedup."));
  if (operators.length === 0 && figures.length === 0) {
    lines.push("The graph has no dedup operator.");
    return lines.join("\n");
  }
  if (operators.length > 0) {
    lines.push("| operator | settings | rejected rows |", "|---|---|---|");
    for (const [name, { params }] of operators) {
      const rejected = data.rejectReasons.filter((r) => r.operator === name).reduce((sum, r) => sum + r.count, 0);
      lines.push(tableRow([name, dedupSettings(params), rejected]));
    }
  }
  if (figures.length > 0) {
    lines.push("", "Index figures from the manifest:", "");
    for (const [key, value] of figures) lines.push(`- ${key}: ${value}`);
  }
  return lines.join("\n");
}

function dedupSettings(params: unknown): string {
  if (!params || typeof params !== "object") return "";
  const keys = ["fields", "threshold", "numPerm", "bands", "rows", "shingle", "lowercase", "collapseWhitespace"];
  return keys
    .filter((key) => key in params)
    .map((key) => `${key} ${JSON.stringify((params as Record<string, unknown>)[key])}`)
    .join(", ");
}

interface DiversityGroup {
  samples?: number;
  distinct1?: { ratio?: number };
  distinct2?: { ratio?: number };
  distinct3?: { ratio?: number };
  vocabulary?: number;
  length?: { mean?: number };
}

function diversitySection(data: CardData): string {
  const lines = ["## Diversity", ""];
  const figures = Object.entries(data.totals).filter(([key]) => key.startsWith("diversity."));
  for (const [key, value] of figures) lines.push(`- ${key.slice("diversity.".length)}: ${round(value)}`);
  const groups = (data.diversity.summary as { groups?: Record<string, DiversityGroup> } | undefined)?.groups;
  if (groups && Object.keys(groups).length > 0) {
    if (figures.length > 0) lines.push("");
    lines.push("From `diversity-summary.json`, by group:", "", "| group | samples | distinct-1 | distinct-2 | distinct-3 | vocabulary | mean words |", "|---|---|---|---|---|---|---|");
    for (const [name, group] of Object.entries(groups)) {
      const cells = [group.samples, group.distinct1?.ratio, group.distinct2?.ratio, group.distinct3?.ratio, group.vocabulary, group.length?.mean];
      lines.push(tableRow([name, ...cells.map((cell) => (cell === undefined ? "" : round(cell)))]));
    }
  }
  if (data.diversity.note) lines.push("", `Note: ${data.diversity.note}.`);
  if (lines.length === 2) lines.push("The graph tracks no diversity figures.");
  return lines.join("\n");
}

function provenanceSection(data: CardData): string {
  const lines = ["## Human, synthetic and template rows", "", "| origin | rows | share |", "|---|---|---|"];
  for (const [origin, count] of Object.entries(data.origins)) lines.push(tableRow([origin, count, percent(count, data.rows)]));
  lines.push("", "Generation depth (0 = human or template data, 1 = written from it by a model, ...):", "", "| depth | rows | share |", "|---|---|---|");
  for (const [depth, count] of data.depths) lines.push(tableRow([depth, count, percent(count, data.rows)]));
  return lines.join("\n");
}

function licenceSection(data: CardData): string {
  const { license, notes } = cardLicense(data.options);
  const lines = ["## Licence: read before you train on or release these rows", "", `Front matter licence: \`${license}\`.`, ""];
  for (const note of notes) lines.push(`- ${note}`);
  const models = [...new Set(data.models.map((m) => m.model))];
  if (isSimulated(data)) {
    lines.push(
      "- This run was answered by rxsynth's built-in simulator: every model-written field is a placeholder with the shape of a real answer. Run the graph against a real endpoint for data to train on.",
    );
  }
  if (data.identity || models.length > 0) {
    const which = isSimulated(data) ? "Against a real endpoint, model-written fields" : `Model-written fields (models: ${models.length > 0 ? models.map((m) => `\`${m}\``).join(", ") : "see above"})`;
    lines.push(
      `- ${which} are bound by the terms of whoever served the model and by the model's licence, ` +
        "not only by the licence above. Many API providers' terms restrict using outputs to develop models that compete with theirs, and some open-weight model licences " +
        "set conditions on models trained on their outputs: read them before you train on or publish these rows.",
    );
  }
  lines.push(
    "- Synthetic rows inherit the teacher's errors and biases, and training on generated data generation after generation narrows a model: keep human data in the mix and watch the depth distribution above.",
  );
  return lines.join("\n");
}

function reproduceSection(data: CardData): string {
  return [
    "## Reproduce",
    "",
    `Graph \`${data.graph}\`, options hash \`${data.optionsHash}\`; the same options and the same endpoint answers give the same rows.`,
    "",
    "```json",
    JSON.stringify(data.options ?? null, null, 2),
    "```",
  ].join("\n");
}

function isSimulated(data: CardData): boolean {
  const identities = [data.identity, ...(data.identityHistory ?? []).map((entry) => entry.identity)];
  return identities.some((identity) => identity !== undefined && JSON.stringify(identity).includes(`"${SIMULATOR}"`));
}

/** One row of a Markdown table: every cell is made safe to sit between pipes. */
function tableRow(cells: readonly unknown[]): string {
  return `| ${cells.map(tableCell).join(" | ")} |`;
}

/**
 * GFM splits a table row at every pipe no backslash escapes (inside code spans too) and ends it at a line
 * break, so an operator named `a||b` or a reason with a newline would shift or cut the columns. Backslashes
 * are doubled first, so a cell ending in one cannot unescape the pipe after it.
 */
function tableCell(value: unknown): string {
  return String(value).replace(/\r\n?|\n/g, " ").replace(/[\\|]/g, "\\$&");
}

function percent(part: number, whole: number): string {
  return whole === 0 ? "0.0 %" : `${((100 * part) / whole).toFixed(1)} %`;
}

function round(value: number): string {
  return Number.isInteger(value) ? String(value) : value.toFixed(4);
}
