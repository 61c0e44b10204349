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
  "curate.jsonl": { license: "apache-2.0", credit: "rxsynth's example input curate.jsonl (Apache-2.0)" },
  "instruction-backtranslation.jsonl": { license: "apache-2.0", credit: "rxsynth's example input instruction-backtranslation.jsonl (Apache-2.0)" },
  "math-verified.jsonl": { license: "apache-2.0", credit: "rxsynth's example input math-verified.jsonl (Apache-2.0)" },
  "mix-synthetic.jsonl": { license: "apache-2.0", credit: "rxsynth's example input mix-synthetic.jsonl (Apache-2.0)" },
  "qa-from-documents.jsonl": { license: "apache-2.0", credit: "rxsynth's example input qa-from-documents.jsonl (Apache-2.0)" },
};

/** Option names that hold the path of a graph's input data. */
const INPUT_OPTION = /^(input|seedTasks)$|Path$/;

export interface CardLicense {
  /** The front matter's `license`: an SPDX id, or `other`. */
  readonly license: string;
  /** Where the seed data came from, and why the licence is `other` when it is. */
  readonly notes: readonly string[];
}

export function cardLicense(options: unknown): CardLicense {
  const values = options !== null && typeof options === "object" && !Array.isArray(options) ? (options as Record<string, unknown>) : {};
  if (typeof values.license === "string" && values.license !== "") {
    return { license: values.license, notes: [`The licence is the graph's \`license\` option.`] };
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
      credits.push(`\`${key}\`: ${builtin.credit}.`);
    } else {
      unknown.push(`\`${key}\` (${value})`);
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
