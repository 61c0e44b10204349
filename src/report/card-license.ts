/**
 * The licence a dataset card can state: the graph's own `license` option when it has one, else that of
 * the seed data its options name. Only the built-in data files (data/README.md) have a known licence; a
 * path of the user's is theirs to state, so the card says `other` and why rather than guess.
 */

/** Licences of data/*, as data/README.md records them (SPDX ids, lowercase as the Hugging Face Hub spells them). */
const BUILTIN_LICENSES: Readonly<Record<string, { license: string; credit: string }>> = {
  "self_instruct_seed_tasks.jsonl": {
    license: "apache-2.0",
    credit: "Self-Instruct seed tasks (yizhongw/self-instruct, Apache License 2.0, copyright the Self-Instruct authors)",
  },
  "HumanEval.jsonl.gz": {
    license: "mit",
    credit: "HumanEval (openai/human-eval, MIT License, Copyright (c) OpenAI; the licence asks that its copyright and permission notice go with copies)",
  },
  "augment.jsonl": { license: "apache-2.0", credit: "rxsynth's example input augment.jsonl (Apache-2.0)" },
  "back-translation.jsonl": { license: "apache-2.0", credit: "rxsynth's example input back-translation.jsonl (Apache-2.0)" },
  "code-exec-problems.jsonl": { license: "apache-2.0", credit: "rxsynth's practice problems code-exec-problems.jsonl (Apache-2.0)" },
  "curate.jsonl": { license: "apache-2.0", credit: "rxsynth's example input curate.jsonl (Apache-2.0)" },
  "instruction-backtranslation.jsonl": { license: "apache-2.0", credit: "rxsynth's example input instruction-backtranslation.jsonl (Apache-2.0)" },
  "math-verified.jsonl": { license: "apache-2.0", credit: "rxsynth's example input math-verified.jsonl (Apache-2.0)" },
  "mix-synthetic.jsonl": { license: "apache-2.0", credit: "rxsynth's example input mix-synthetic.jsonl (Apache-2.0)" },
  "qa-from-documents.jsonl": { license: "apache-2.0", credit: "rxsynth's example input qa-from-documents.jsonl (Apache-2.0)" },
};

/**
 * The licence identifiers the Hugging Face Hub knows (huggingface/hub-docs, docs/hub/repositories-licenses.md).
 * A `license` option outside this list is stated as `other` with the value as its name, as the Hub asks.
 */
const HUB_LICENSES: ReadonlySet<string> = new Set([
  "apache-2.0", "mit", "openrail", "bigscience-openrail-m", "creativeml-openrail-m", "bigscience-bloom-rail-1.0",
  "bigcode-openrail-m", "afl-3.0", "artistic-2.0", "bsl-1.0", "bsd", "bsd-2-clause", "bsd-3-clause",
  "bsd-3-clause-clear", "c-uda", "cc", "cc0-1.0", "cc-by-2.0", "cc-by-2.5", "cc-by-3.0", "cc-by-4.0", "cc-by-sa-3.0",
  "cc-by-sa-4.0", "cc-by-nc-2.0", "cc-by-nc-3.0", "cc-by-nc-4.0", "cc-by-nd-4.0", "cc-by-nc-nd-3.0", "cc-by-nc-nd-4.0",
  "cc-by-nc-sa-2.0", "cc-by-nc-sa-3.0", "cc-by-nc-sa-4.0", "cdla-sharing-1.0", "cdla-permissive-1.0",
  "cdla-permissive-2.0", "wtfpl", "ecl-2.0", "epl-1.0", "epl-2.0", "etalab-2.0", "eupl-1.1", "eupl-1.2", "agpl-3.0",
  "gfdl", "gpl", "gpl-2.0", "gpl-3.0", "lgpl", "lgpl-2.1", "lgpl-3.0", "isc", "h-research", "intel-research",
  "lppl-1.3c", "ms-pl", "apple-ascl", "apple-amlr", "mpl-2.0", "odc-by", "odbl", "openmdw-1.0", "openrail++",
  "osl-3.0", "postgresql", "ofl-1.1", "ncsa", "unlicense", "zlib", "pddl", "lgpl-lr", "deepfloyd-if-license",
  "fair-noncommercial-research-license", "llama2", "llama3", "llama3.1", "llama3.2", "llama3.3", "llama4",
  "grok2-community", "gemma", "unknown", "other",
]);
/** Characters of the option's value quoted in a note; a licence name is a few words. */
const QUOTED_CHARS = 120;

/** Option names that hold the path of a graph's input data. */
const INPUT_OPTION = /^(input|seedTasks)$|Path$/;

export interface CardLicense {
  /** The front matter's `license`: one of the Hub's identifiers, or `other`. */
  readonly license: string;
  /** With `other`: the front matter's `license_name` (a slug of the option's value); unset means unstated. */
  readonly name?: string;
  /** Where the seed data came from, and why the licence is `other` when it is. */
  readonly notes: readonly string[];
}

export function cardLicense(options: unknown): CardLicense {
  const values = options !== null && typeof options === "object" && !Array.isArray(options) ? (options as Record<string, unknown>) : {};
  if (typeof values.license === "string" && values.license.trim() !== "") {
    const id = values.license.trim().toLowerCase();
    if (HUB_LICENSES.has(id)) return { license: id, notes: [`The licence is the graph's \`license\` option.`] };
    return {
      license: "other",
      name: licenseSlug(values.license),
      notes: [
        `The graph's \`license\` option, ${codeSpan(values.license)}, is not a Hugging Face licence identifier: ` +
          "add the licence's text as a LICENSE file beside the rows, or use one of the Hub's identifiers.",
      ],
    };
  }
  const inputs = Object.entries(values)
    .filter(([key, value]) => INPUT_OPTION.test(key) && typeof value === "string" && value !== "")
    .sort(([a], [b]) => (a < b ? -1 : 1)) as [string, string][];
  if (inputs.length === 0) {
    return { license: "other", notes: ["The graph reads no seed data, so no licence follows from it: state the licence you release the rows under."] };
  }
  const known: string[] = [];
  const credits: string[] = [];
  const unknown: string[] = [];
  for (const [key, value] of inputs) {
    const builtin = value.startsWith("builtin:") ? BUILTIN_LICENSES[value.slice("builtin:".length)] : undefined;
    if (builtin) {
      known.push(builtin.license);
      credits.push(`${codeSpan(key)}: ${builtin.credit}.`);
    } else {
      unknown.push(`${codeSpan(key)} (${codeSpan(value)})`);
    }
  }
  if (unknown.length > 0) {
    const notes = [...credits, `The licence of ${unknown.join(", ")} is not known to rxsynth: replace \`other\` with it.`];
    return { license: "other", notes };
  }
  const distinct = [...new Set(known)];
  if (distinct.length > 1) {
    return { license: "other", notes: [...credits, `The seed data comes under several licences (${distinct.join(", ")}): the rows must respect each.`] };
  }
  return { license: distinct[0]!, notes: [...credits, "The licence is that of the seed data."] };
}

/** The Hub's `license_name` is a slug (`my-license-1.0`): one line, no YAML or Markdown syntax left. */
function licenseSlug(value: string): string {
  const slug = value
    .normalize("NFKD")
    .toLowerCase()
    .replace(/[^a-z0-9.+]+/g, "-")
    .replace(/^[-.]+|[-.]+$/g, "")
    .slice(0, 64);
  return slug === "" ? "unstated" : slug;
}

/**
 * `value` as one line of Markdown code, shown as written: line breaks become spaces (so no `---` line can
 * turn the note into a heading or end the front matter), and the fence is longer than any backtick run in it.
 */
function codeSpan(value: string): string {
  const line = value.replace(/\s+/g, " ").trim();
  const shown = line.length > QUOTED_CHARS ? `${line.slice(0, QUOTED_CHARS)}…` : line;
  const fence = "`".repeat(Math.max(0, ...Array.from(shown.matchAll(/`+/g), (run) => run[0].length)) + 1);
  const pad = shown.startsWith("`") || shown.endsWith("`") ? " " : "";
  return `${fence}${pad}${shown}${pad}${fence}`;
}
