// Claim: the heuristic filter suite (every default Gopher rule on) judges >= 20 MB/s of realistic English
// text through the operator, several times faster than a straightforward split/regex/join implementation
// of the same rules, and both reach the same decisions. Each contender runs in its own child process on the
// same seeded ~30 MB corpus, so one's heap and JIT state do not tax another.
// (ROUGE de-duplication speed, `rouge_speedup`, is measured in benchmarks/dedup.ts, not here.)
//
//   npx tsx benchmarks/filters.ts
import { spawnSync } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { en } from "@faker-js/faker";
import { collect, createSample, type Verdict } from "../src/index.ts";
import { seededRandom } from "../operators/diversity/sketches.ts";
import { compileHeuristics, GOPHER_STOP_WORDS, gopherPreset, heuristicFilter } from "../operators/filter/index.ts";

const CORPUS_BYTES = 30_000_000;
const SEED = 20211208;
const RUNS = 3;

type Part = "operator" | "pure" | "naive";

interface PartResult {
  part: Part;
  docs: number;
  mb: number;
  /** Best of RUNS. */
  seconds: number;
  mb_per_s: number;
  kept: number;
  reasons: Record<string, number>;
  decisions: string[];
  peak_rss_mb: number;
}

// ---------------------------------------------------------------- fixtures: seeded English-like corpus


function corpus(): string[] {
  const random = seededRandom(SEED);
  const words = en.word!;
  // Squaring the uniform draw skews choices towards the front of each list: a few words common, most rare.
  const pick = <T>(list: readonly T[]) => list[Math.floor(random() * random() * list.length)]!;
  const any = <T>(list: readonly T[]) => list[Math.floor(random() * list.length)]!;
  const nouns = words.noun!;
  const adjectives = words.adjective!;
  const verbs = words.verb!;
  const adverbs = words.adverb!;
  const prepositions = ["in", "on", "with", "near", "for", "about", "under", "after", "before", "across", "through", "of"];
  const determiners = ["the", "the", "the", "a", "this", "that", "every", "their", "our", "its"];
  const subjects = ["we", "they", "she", "he", "it", "people", "most readers", "the team", "the council", "researchers"];
  const modals = ["will", "can", "should", "might", "must", "would"];
  const third = (verb: string) =>
    /[^aeiou]y$/.test(verb) ? `${verb.slice(0, -1)}ies` : /(s|sh|ch|x|z|o)$/.test(verb) ? `${verb}es` : `${verb}s`;
  const np = () => (random() < 0.5 ? `${any(determiners)} ${pick(adjectives)} ${pick(nouns)}` : `${any(determiners)} ${pick(nouns)}`);
  const capital = (s: string) => s[0]!.toUpperCase() + s.slice(1);
  const sentence = (): string => {
    const r = random();
    let s: string;
    if (r < 0.25) s = `${np()} ${third(pick(verbs))} ${any(prepositions)} ${np()}`;
    else if (r < 0.45) s = `${any(subjects)} ${any(modals)} ${pick(verbs)} ${np()} ${pick(adverbs)}, and ${any(subjects)} ${pick(verbs)} ${np()}`;
    else if (r < 0.6) s = `when ${np()} ${third(pick(verbs))}, ${any(subjects)} ${any(modals)} ${pick(verbs)} ${np()} with ${np()}`;
    else if (r < 0.7) s = `in ${1900 + Math.floor(random() * 124)}, about ${Math.floor(random() * 90) + 5} percent of ${np()} had to ${pick(verbs)} ${np()}`;
    else if (r < 0.8) s = `${np()} (${pick(adjectives)} and ${pick(adjectives)}) is ${any(prepositions)} ${np()} that ${any(subjects)} ${pick(verbs)}`;
    else if (r < 0.9) s = `"${capital(pick(adverbs))}, ${np()} ${third(pick(verbs))}," said ${any(["Anna", "Mr. Patel", "the mayor", "Dr. Okafor", "Lucia"])}`;
    else s = `is it true that ${np()} ${any(modals)} ${pick(verbs)} ${np()} ${any(prepositions)} ${np()}`;
    return capital(s) + (s.startsWith("is it") ? "?" : random() < 0.03 ? "..." : ".");
  };
  const paragraph = () => Array.from({ length: 3 + Math.floor(random() * 5) }, sentence).join(" ");
  const list = () => Array.from({ length: 3 + Math.floor(random() * 3) }, () => `- ${capital(np())} ${third(pick(verbs))} ${np()}.`).join("\n");

  const goodDoc = (target: number): string => {
    const parts: string[] = random() < 0.5 ? [`## ${capital(pick(adjectives))} ${pick(nouns)} and ${pick(nouns)}`] : [];
    let length = 0;
    while (length < target) {
      const part = random() < 0.12 ? list() : paragraph();
      parts.push(part);
      length += part.length + 2;
    }
    return parts.join("\n\n");
  };
  // About one document in eight is the web junk the rules exist for.
  const badDoc = (target: number): string => {
    const kind = Math.floor(random() * 6);
    if (kind === 0) return paragraph().split(" ").slice(0, 30).join(" "); // too short
    if (kind === 1) {
      const p = paragraph();
      return Array.from({ length: Math.max(3, Math.ceil(target / p.length)) }, (_, i) => (i % 2 ? paragraph() : p)).join("\n\n"); // repeated paragraph
    }
    if (kind === 2) return Array.from({ length: Math.ceil(target / 40) }, () => `• ${capital(np())}`).join("\n"); // bullet spam
    if (kind === 3) {
      const spam = `buy ${pick(nouns)} online cheap ${pick(nouns)}`;
      return Array.from({ length: Math.ceil(target / 200) }, () => `${sentence()} ${spam} ${spam}.`).join(" "); // keyword spam
    }
    if (kind === 4) return Array.from({ length: Math.ceil(target / 60) }, () => `${sentence().slice(0, 50)} #${pick(nouns)} #${pick(nouns)}`).join("\n"); // hashtags
    return Array.from({ length: Math.ceil(target / 80) }, () => `${sentence().slice(0, -1)}...`).join("\n"); // trailing ellipses
  };

  const docs: string[] = [];
  let bytes = 0;
  while (bytes < CORPUS_BYTES) {
    const target = 1024 + Math.floor(random() * 7 * 1024);
    let doc = random() < 0.125 ? badDoc(target) : goodDoc(target);
    if (doc.length > 8192) doc = doc.slice(0, doc.lastIndexOf(" ", 8192));
    docs.push(doc);
    bytes += Buffer.byteLength(doc);
  }
  return docs;
}

// ---------------------------------------------------------------- contender: the naive baseline

/**
 * The same rules and definitions as heuristicFilter, written the obvious way: split, regex-trim, join
 * n-grams into strings, count them in Maps. This is the shape most Python and JS filters take.
 */
function naiveJudge(text: string): string {
  const p = gopherPreset;
  const tokens = text.split(/\s+/).filter((t) => t.length > 0);
  const words = tokens.map((t) => t.replace(/^[\p{P}\p{S}]+|[\p{P}\p{S}]+$/gu, "")).filter((w) => w.length > 0);
  if (words.length < p.minWords) return "too_few_words";
  if (words.length > p.maxWords) return "too_many_words";
  const wordChars = words.reduce((sum, w) => sum + w.length, 0);
  const mean = wordChars / words.length;
  if (mean < p.minMeanWordLength || mean > p.maxMeanWordLength) return "mean_word_length";
  const hashes = (text.match(/#/g) ?? []).length;
  const ellipses = (text.match(/\.\.\./g) ?? []).length + (text.match(/…/g) ?? []).length;
  if (Math.max(hashes, ellipses) / words.length > p.maxSymbolRatio) return "symbol_ratio";
  const lines = text.split("\n").map((l) => l.trim()).filter((l) => l.length > 0);
  if (lines.filter((l) => /^[•\-*‣]/.test(l)).length / lines.length > p.maxBulletLines) return "bullet_lines";
  if (lines.filter((l) => l.endsWith("...") || l.endsWith("…")).length / lines.length > p.maxEllipsisLines) return "ellipsis_lines";
  if (tokens.filter((t) => /\p{L}/u.test(t)).length / tokens.length < p.minAlphaWords) return "alpha_words";
  const lowered = words.map((w) => w.replace(/[A-Z]/g, (c) => c.toLowerCase()));
  if (lowered.filter((w) => GOPHER_STOP_WORDS.includes(w)).length < p.minStopWords) return "stop_words";
  const paragraphs = text.split(/\n[^\S\n]*\n/).map((s) => s.trim()).filter((s) => s.length > 0);
  const dups = (items: string[]) => {
    const seen = new Set<string>();
    let count = 0;
    let chars = 0;
    for (const item of items) {
      if (seen.has(item)) {
        count++;
        chars += item.length;
      } else seen.add(item);
    }
    return { count, chars };
  };
  const para = dups(paragraphs);
  if (para.count / paragraphs.length > p.maxDupParaFrac) return "dup_para_frac";
  if (para.chars / text.length > p.maxDupParaCharFrac) return "dup_para_char_frac";
  const line = dups(lines);
  if (line.count / lines.length > p.maxDupLineFrac) return "dup_line_frac";
  if (line.chars / text.length > p.maxDupLineCharFrac) return "dup_line_char_frac";
  const grams = (n: number) => {
    const list: string[] = [];
    for (let i = 0; i + n <= lowered.length; i++) list.push(lowered.slice(i, i + n).join(" "));
    const counts = new Map<string, number>();
    for (const g of list) counts.set(g, (counts.get(g) ?? 0) + 1);
    return { list, counts };
  };
  for (const [n, limit] of Object.entries(p.maxTopNgram)) {
    const { counts } = grams(Number(n));
    let best = 0;
    let bestCount = 1;
    for (const [g, count] of counts) {
      const chars = g.length - (Number(n) - 1);
      if (count > bestCount || (count === bestCount && count > 1 && chars * count > best)) {
        bestCount = count;
        best = count * chars;
      }
    }
    if (best / wordChars > limit) return `top_${n}gram`;
  }
  for (const [n, limit] of Object.entries(p.maxDupNgram)) {
    const size = Number(n);
    const { list, counts } = grams(size);
    const covered = new Array<boolean>(words.length).fill(false);
    list.forEach((g, i) => {
      if (counts.get(g)! > 1) for (let k = i; k < i + size; k++) covered[k] = true;
    });
    const chars = words.reduce((sum, w, i) => sum + (covered[i] ? w.length : 0), 0);
    if (chars / wordChars > limit) return `dup_${n}gram`;
  }
  return "";
}

// ---------------------------------------------------------------- parts (each in its own process)

function reasonOf(verdict: Verdict): string {
  return verdict === true || verdict.keep ? "" : verdict.reason;
}

async function runPart(part: Part): Promise<PartResult> {
  const docs = corpus();
  const mb = docs.reduce((sum, d) => sum + Buffer.byteLength(d), 0) / 1e6;
  const samples = docs.map((text, i) => createSample({ id: `doc${i}`, data: { text }, source: "bench" }));
  const index = new Map(samples.map((s, i) => [s.id, i]));

  const once = async (): Promise<string[]> => {
    const decisions = new Array<string>(docs.length).fill("");
    if (part === "operator") {
      const { rejects } = await collect(heuristicFilter(), samples);
      for (const r of rejects) decisions[index.get(r.sample.id)!] = r.reason;
    } else if (part === "pure") {
      const judge = compileHeuristics();
      for (let i = 0; i < docs.length; i++) decisions[i] = reasonOf(judge(docs[i]!));
    } else {
      for (let i = 0; i < docs.length; i++) decisions[i] = naiveJudge(docs[i]!);
    }
    return decisions;
  };

  // Warm the JIT on a slice first, the same for every contender.
  const warm = docs.slice(0, 300);
  if (part === "naive") warm.forEach(naiveJudge);
  else if (part === "pure") warm.forEach(compileHeuristics());
  else await collect(heuristicFilter(), samples.slice(0, 300));

  let best = Infinity;
  let decisions: string[] = [];
  for (let run = 0; run < RUNS; run++) {
    const started = process.hrtime.bigint();
    decisions = await once();
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    best = Math.min(best, seconds);
  }
  const reasons: Record<string, number> = {};
  for (const d of decisions) if (d) reasons[d] = (reasons[d] ?? 0) + 1;
  return {
    part,
    docs: docs.length,
    mb,
    seconds: best,
    mb_per_s: mb / best,
    kept: decisions.filter((d) => d === "").length,
    reasons,
    decisions,
    peak_rss_mb: process.resourceUsage().maxRSS / 1024,
  };
}

function inChild(part: Part): PartResult {
  const result = spawnSync(process.execPath, ["--import", "tsx", fileURLToPath(import.meta.url), "--part", part], {
    encoding: "utf8",
    maxBuffer: 256 * 1024 * 1024,
  });
  if (result.status !== 0) throw new Error(`benchmark part ${part} failed:\n${result.stderr}`);
  return JSON.parse(result.stdout.trim().split("\n").at(-1)!) as PartResult;
}

const round = (value: number, digits = 2) => Math.round(value * 10 ** digits) / 10 ** digits;

async function main() {
  const partFlag = process.argv.indexOf("--part");
  if (partFlag >= 0) {
    console.log(JSON.stringify(await runPart(process.argv[partFlag + 1] as Part)));
    return;
  }
  console.log(`filters benchmark: every default Gopher rule over a seeded ~${CORPUS_BYTES / 1e6} MB English corpus, best of ${RUNS}`);
  const operator = inChild("operator");
  const pure = inChild("pure");
  const naive = inChild("naive");

  const agree = (a: PartResult, b: PartResult) => a.decisions.filter((d, i) => d === b.decisions[i]).length / a.decisions.length;
  const row = (r: PartResult) => ({
    "MB/s": round(r.mb_per_s),
    seconds: round(r.seconds, 3),
    kept: r.kept,
    dropped: r.docs - r.kept,
    "peak RSS MB": round(r.peak_rss_mb, 1),
  });
  console.table({
    "heuristicFilter via collect()": row(operator),
    "compileHeuristics() loop": row(pure),
    "naive split/regex/join": row(naive),
  });
  console.table(
    Object.fromEntries(
      [...new Set([...Object.keys(operator.reasons), ...Object.keys(naive.reasons)])]
        .sort()
        .map((reason) => [reason, { operator: operator.reasons[reason] ?? 0, naive: naive.reasons[reason] ?? 0 }]),
    ),
  );

  const result = {
    filters_mb_per_s: round(operator.mb_per_s),
    vs_naive: round(operator.mb_per_s / naive.mb_per_s, 2),
    pure_mb_per_s: round(pure.mb_per_s),
    naive_mb_per_s: round(naive.mb_per_s),
    pure_vs_naive: round(pure.mb_per_s / naive.mb_per_s, 2),
    decisions_agree_with_naive: round(agree(operator, naive), 6),
    corpus_mb: round(operator.mb, 3),
    docs: operator.docs,
    kept: operator.kept,
    reasons: operator.reasons,
    peak_rss_mb: round(operator.peak_rss_mb, 1),
    naive_peak_rss_mb: round(naive.peak_rss_mb, 1),
    runs: RUNS,
    node: process.version,
    measured_at: new Date().toISOString(),
  };
  console.table(Object.fromEntries(Object.entries(result).filter(([, v]) => typeof v !== "object")));
  const dir = fileURLToPath(new URL("./results/", import.meta.url));
  await mkdir(dir, { recursive: true });
  await writeFile(`${dir}filters.json`, `${JSON.stringify(result, null, 2)}\n`);
  console.log("wrote benchmarks/results/filters.json");
}

await main();
