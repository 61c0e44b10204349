/**
 * Claim: rxsynth's MinHash is fast and unbiased, its LSH index is compact and fast to fill, streaming
 * near-dedup is precise and complete at 0.8, and the ROUGE-L pool filter's LSH search is much faster than
 * brute force while deciding the same.
 *
 *   npx tsx benchmarks/dedup.ts
 *
 * Fixtures first (seeded synthetic documents and instructions), then the contenders side by side:
 *   1. signatures: rxsynth vs the npm `minhash` package (128 permutations, word 5-grams, same documents)
 *   2. LSH inserts and index memory (heap + array-buffer delta after GC over 100,000 signatures)
 *   3. Jaccard estimate error against exact Jaccard (1,000 near-duplicate pairs + 1,000 random pairs)
 *   4. near-dedup precision / recall at 0.8 on a corpus with planted near-duplicates
 *   5. ROUGE-L pool filter: LSH candidates vs brute force over a pool of 20,000 accepted instructions
 * Writes benchmarks/results/dedup.json.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { collect, createSample } from "../src/index.ts";
import { LshIndex } from "../operators/dedup/lsh.ts";
import { createMinHasher, hashKey64, jaccard, jaccardEstimate, normalize } from "../operators/dedup/minhash.ts";
import { nearDedup } from "../operators/dedup/near-dedup.ts";
import { RougePool } from "../operators/diversity/rouge-filter.ts";
import { seededRandom } from "../operators/diversity/sketches.ts";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

const SEED = 20240611;
const DOCS = 20_000;
const NPM_DOCS = 1_000;
const LSH_SAMPLES = 100_000;
const MAE_PAIRS = 2_000;
const DEDUP_ORIGINALS = 8_000;
const DEDUP_PLANTED = 2_000;
const EDIT_RATES = [0.002, 0.005, 0.01, 0.02, 0.04, 0.08, 0.15] as const;
const POOL = 20_000;
const ROUGE_QUERIES = 1_000;

// ---------------------------------------------------------------------------------------------------
// Fixtures


const next = seededRandom(SEED);
const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!;
const SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "ta", "shi", "po", "ve", "zu", "an", "er", "in", "or", "ul", "de", "ga", "fi", "bo", "ch"];
const vocabulary: string[] = [];
{
  const seen = new Set<string>();
  while (vocabulary.length < 8000) {
    let word = "";
    const syllables = 1 + Math.floor(next() * 3);
    for (let i = 0; i < syllables; i++) word += pick(SYLLABLES);
    if (!seen.has(word)) {
      seen.add(word);
      vocabulary.push(word);
    }
  }
}
// Zipf-like: frequent words dominate, as in real text.
const word = () => vocabulary[Math.floor(next() * next() * vocabulary.length)]!;

/** A prose-like document of 1-2 KB: sentences of 6-20 words, capitalised, with punctuation. */
function document(): string {
  const target = 1024 + Math.floor(next() * 1024);
  let text = "";
  while (text.length < target) {
    const words: string[] = [];
    const length = 6 + Math.floor(next() * 14);
    for (let i = 0; i < length; i++) words.push(word());
    words[0] = words[0]![0]!.toUpperCase() + words[0]!.slice(1);
    text += `${words.join(" ")}${next() < 0.2 ? "?" : "."} `;
  }
  return text.trimEnd();
}

/** Each word is substituted, deleted or followed by an inserted word with probability `rate`. */
function edit(text: string, rate: number): string {
  const out: string[] = [];
  for (const w of text.split(" ")) {
    if (next() >= rate) out.push(w);
    else {
      const kind = next();
      if (kind < 1 / 3) out.push(word());
      else if (kind < 2 / 3) out.push(w, word());
    }
  }
  return out.join(" ");
}

/** Word 5-gram strings of the normalised text: what both MinHash implementations hash, and the ground truth. */
function shingleStrings(text: string): string[] {
  const words = normalize(text).split(" ");
  const out: string[] = [];
  if (words.length < 5) return [words.join(" ")];
  for (let i = 0; i + 5 <= words.length; i++) out.push(`${words[i]} ${words[i + 1]} ${words[i + 2]} ${words[i + 3]} ${words[i + 4]}`);
  return out;
}

const OPENERS = [
  "Write a", "Write an essay on", "Explain why", "Explain how", "Describe", "Give an example of", "Give me a list of",
  "Generate a", "Create a", "Classify", "Summarize", "Translate", "Rewrite", "Find", "Identify", "Compare", "Suggest",
  "Tell me about", "What is", "What are", "How do I", "How can", "Why does", "List", "Name", "Design", "Plan",
  "Propose", "Evaluate", "Analyze", "Calculate", "Convert", "Correct", "Edit", "Paraphrase", "Outline", "Draft",
  "Compose", "Brainstorm", "Recommend", "Predict", "Estimate", "Sort", "Rank", "Choose", "Is it true that",
  "Can you help me with", "Imagine", "Pretend you are", "Provide",
];
const FUNCTION_WORDS = ["the", "a", "of", "to", "and", "in", "for", "with", "on", "that", "is", "your", "my", "an"];
const CLAUSES = [
  "in one sentence", "for a beginner", "using simple words", "in under 100 words", "step by step",
  "with examples", "for a ten year old", "as a table", "in the style of a news report", "without jargon",
  "and explain your answer", "in bullet points", "for a job interview", "in a formal tone", "with a short summary",
];

/** An instruction in the shape of generated ones: an opener, 3-14 content words, sometimes a closing clause. */
function instruction(): string {
  const words = [pick(OPENERS)];
  const length = 3 + Math.floor(next() * 12);
  for (let i = 0; i < length; i++) words.push(next() < 0.3 ? pick(FUNCTION_WORDS) : word());
  if (next() < 0.4) words.push(pick(CLAUSES));
  return `${words.join(" ")}${next() < 0.3 ? "?" : "."}`;
}

/** A light paraphrase: 1-2 token edits (substitute, delete, insert). */
function paraphrase(text: string): string {
  const words = text.split(" ");
  const edits = 1 + Math.floor(next() * 2);
  for (let e = 0; e < edits; e++) {
    const at = Math.floor(next() * words.length);
    const kind = next();
    if (kind < 0.4) words[at] = word();
    else if (kind < 0.7 && words.length > 2) words.splice(at, 1);
    else words.splice(at, 0, word());
  }
  return words.join(" ");
}

function rate(count: number, ms: number): number {
  return (count / ms) * 1000;
}

/** Live heap plus array-buffer bytes after full GCs; the pause lets V8's concurrent sweeper release dead buffers. */
async function heapNow(): Promise<number> {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.arrayBuffers;
}

const t0 = performance.now();
const docs = Array.from({ length: DOCS }, document);
const meanBytes = docs.reduce((sum, d) => sum + Buffer.byteLength(d), 0) / DOCS;
console.log(`fixtures: ${DOCS} documents, mean ${meanBytes.toFixed(0)} bytes (${(performance.now() - t0).toFixed(0)} ms)`);

// ---------------------------------------------------------------------------------------------------
// 1. Signatures

const hasher = createMinHasher({ numPerm: 128, seed: 1, shingle: { kind: "word", n: 5 } });
for (let i = 0; i < 2000; i++) hasher.signature(docs[i]!);
let start = performance.now();
const signatures = docs.map((d) => hasher.signature(d));
const oursMs = performance.now() - start;
const docsPerS = rate(DOCS, oursMs);

// The package ships no types; this is the part of its API used here.
const { Minhash, LshIndex: NpmLshIndex } = createRequire(import.meta.url)("minhash") as {
  Minhash: new (config?: { numPerm?: number; seed?: number }) => { update(s: string): void; jaccard(o: unknown): number; hashvalues: number[] };
  LshIndex: new (config?: { bandSize?: number }) => { insert(key: string, m: unknown): void; query(m: unknown): string[] };
};
// The package's documented use: one Minhash per document, update() with each shingle string.
const npmDoc = (text: string) => {
  const m = new Minhash({ numPerm: 128, seed: 1 });
  for (const shingle of shingleStrings(text)) m.update(shingle);
  return m;
};
for (let i = 0; i < 50; i++) npmDoc(docs[i]!);
start = performance.now();
const npmSigs = docs.slice(0, NPM_DOCS).map(npmDoc);
const npmMs = performance.now() - start;
const npmDocsPerS = rate(NPM_DOCS, npmMs);
// The package's LshIndex.query indexes band lists without checking they exist: an unseen document throws.
let npmQueryThrows = false;
try {
  const index = new NpmLshIndex({ bandSize: 4 });
  index.insert("a", npmSigs[0]);
  index.query(npmSigs[1]);
} catch {
  npmQueryThrows = true;
}

// ---------------------------------------------------------------------------------------------------
// 2. LSH inserts and memory (100,000 real signatures: the 20,000 above and 80,000 more documents)

const lshSigs: Uint32Array[] = [...signatures];
while (lshSigs.length < LSH_SAMPLES) lshSigs.push(hasher.signature(document()));
// The index nearDedup builds at 0.8 (bands for 99% candidate recall at the threshold: 21 x 6).
// Warm-up on a throwaway index first, as for the signatures: the timed run measures compiled code.
// (In a function, so nothing of it can linger in the module's suspended frame across the awaits below.)
function warmUpInserts(): number {
  const warm = new LshIndex({ numPerm: 128, threshold: 0.8, recall: 0.99 });
  for (let i = 0; i < 20_000; i++) warm.insert(`warm-${i}`, lshSigs[i]!);
  return warm.size;
}
warmUpInserts();
let before = await heapNow();
start = performance.now();
const index = new LshIndex({ numPerm: 128, threshold: 0.8, recall: 0.99 });
for (let i = 0; i < LSH_SAMPLES; i++) index.insert(`doc-${i}`, lshSigs[i]!);
const insertMs = performance.now() - start;
const indexBytes = (await heapNow()) - before;
// The fixtures are used below, so they stay alive across the measurement (V8 frees dead locals early,
// which would otherwise subtract them from the delta).
const lshInsertsPerS = rate(LSH_SAMPLES, insertMs);
const indexBytesPerSample = indexBytes / LSH_SAMPLES;
const indexEstimatePerSample = index.memoryBytes() / LSH_SAMPLES;
start = performance.now();
let candidateTotal = 0;
for (let i = 0; i < 10_000; i++) candidateTotal += index.query(hasher.signature(docs[i]!)).length;
if (lshSigs.length !== LSH_SAMPLES || npmSigs.length !== NPM_DOCS || signatures.length !== DOCS) throw new Error("fixtures lost");
const queriesPerS = rate(10_000, performance.now() - start);

// ---------------------------------------------------------------------------------------------------
// 3. Jaccard estimate error

let nearError = 0;
let randomError = 0;
let ideal = 0;
const half = MAE_PAIRS / 2;
for (let i = 0; i < half; i++) {
  const a = docs[i]!;
  const b = edit(a, pick([0.01, 0.02, 0.03, 0.05, 0.08, 0.12]));
  const exact = jaccard(new Set(shingleStrings(a)), new Set(shingleStrings(b)));
  nearError += Math.abs(jaccardEstimate(hasher.signature(a), hasher.signature(b)) - exact);
  // What perfectly random permutations would give: E|Binomial(128, J)/128 - J|.
  ideal += binomialMae(exact, 128);
  const c = docs[half + i]!;
  const d = docs[DOCS - 1 - i]!;
  const exactRandom = jaccard(new Set(shingleStrings(c)), new Set(shingleStrings(d)));
  randomError += Math.abs(jaccardEstimate(hasher.signature(c), hasher.signature(d)) - exactRandom);
}
const jaccardMae = (nearError + randomError) / MAE_PAIRS;

function binomialMae(p: number, n: number): number {
  if (p <= 0 || p >= 1) return 0;
  let total = 0;
  let logC = 0;
  for (let k = 0; k <= n; k++) {
    if (k > 0) logC += Math.log((n - k + 1) / k);
    total += Math.exp(logC + k * Math.log(p) + (n - k) * Math.log(1 - p)) * Math.abs(k / n - p);
  }
  return total;
}

// ---------------------------------------------------------------------------------------------------
// 4. Near-dedup quality

interface Planted {
  text: string;
  rate: number | undefined;
}
const stream: Planted[] = docs.slice(0, DEDUP_ORIGINALS).map((text) => ({ text, rate: undefined }));
for (let i = 0; i < DEDUP_PLANTED; i++) {
  // A copy of an earlier document, edited at a known rate, placed somewhere after it.
  const source = Math.floor(next() * stream.length);
  const at = source + 1 + Math.floor(next() * (stream.length - source));
  stream.splice(at, 0, { text: edit(stream[source]!.text, EDIT_RATES[i % EDIT_RATES.length]!), rate: EDIT_RATES[i % EDIT_RATES.length]! });
}
// Ground truth: streaming dedup with exact Jaccard of word 5-gram sets (64-bit hashes of the shingle
// strings, an independent hash from the one under test): a document is a duplicate when an earlier kept
// document has exact Jaccard >= 0.8. Every pair sharing a shingle is compared, through an inverted index.
start = performance.now();
const sets = stream.map((item) => new Set(shingleStrings(item.text).map(hashKey64)));
const postings = new Map<string, number[]>();
const truthDuplicate: boolean[] = [];
for (let i = 0; i < stream.length; i++) {
  const counts = new Map<number, number>();
  for (const key of sets[i]!) for (const doc of postings.get(key) ?? []) counts.set(doc, (counts.get(doc) ?? 0) + 1);
  let duplicate = false;
  for (const [doc, shared] of counts) {
    if (shared / (sets[i]!.size + sets[doc]!.size - shared) >= 0.8) {
      duplicate = true;
      break;
    }
  }
  truthDuplicate.push(duplicate);
  if (!duplicate) {
    for (const key of sets[i]!) {
      const list = postings.get(key);
      if (list) list.push(i);
      else postings.set(key, [i]);
    }
  }
}
const truthMs = performance.now() - start;
const samples = stream.map((item, i) => createSample({ id: `s${i}`, data: { text: item.text }, source: "bench" }));
start = performance.now();
const { rejects } = await collect(nearDedup({ threshold: 0.8 }), samples);
const dedupMs = performance.now() - start;
const predicted = new Set(rejects.map((r) => Number(r.sample.id.slice(1))));
let truePositives = 0;
let truthPositives = 0;
const byRate = new Map<string, { planted: number; truth: number; caught: number }>();
for (let i = 0; i < stream.length; i++) {
  if (truthDuplicate[i]) truthPositives++;
  if (truthDuplicate[i] && predicted.has(i)) truePositives++;
  const key = stream[i]!.rate === undefined ? "original" : String(stream[i]!.rate);
  const row = byRate.get(key) ?? { planted: 0, truth: 0, caught: 0 };
  row.planted++;
  if (truthDuplicate[i]) row.truth++;
  if (predicted.has(i)) row.caught++;
  byRate.set(key, row);
}
const precision = predicted.size === 0 ? 1 : truePositives / predicted.size;
const recall = truthPositives === 0 ? 1 : truePositives / truthPositives;

// ---------------------------------------------------------------------------------------------------
// 5. ROUGE-L pool filter

// The pool is what the filter accepts: instructions are generated until 20,000 pass it.
const builder = new RougePool({ threshold: 0.7 });
const poolTexts: string[] = [];
let generated = 0;
start = performance.now();
while (poolTexts.length < POOL) {
  generated++;
  const text = instruction();
  const prepared = builder.prepare(text);
  if (!builder.best(prepared)) {
    builder.add(`p${poolTexts.length}`, prepared);
    poolTexts.push(text);
  }
}
const poolMs = performance.now() - start;
const queries = Array.from({ length: ROUGE_QUERIES }, (_, i) => (i % 2 === 0 ? paraphrase(pick(poolTexts)) : instruction()));
const lshPool = new RougePool({ threshold: 0.7, search: "lsh" });
const brutePool = new RougePool({ threshold: 0.7, search: "brute" });
poolTexts.forEach((text, i) => {
  lshPool.add(`p${i}`, lshPool.prepare(text));
  brutePool.add(`p${i}`, brutePool.prepare(text));
});
// Timed: what the filter does per sample (tokenise, search, LCS), pool fixed at 20,000.
const decide = (pool: RougePool) => {
  const started = performance.now();
  const decisions = queries.map((q) => pool.best(pool.prepare(q))?.id ?? null);
  return { decisions, ms: performance.now() - started };
};
decide(lshPool);
let comparisons = [lshPool.comparisons, brutePool.comparisons];
const lsh = decide(lshPool);
const brute = decide(brutePool);
comparisons = [(lshPool.comparisons - comparisons[0]!) / ROUGE_QUERIES, (brutePool.comparisons - comparisons[1]!) / ROUGE_QUERIES];
const rougeLshPerS = rate(ROUGE_QUERIES, lsh.ms);
const rougeBrutePerS = rate(ROUGE_QUERIES, brute.ms);
let agree = 0;
for (let i = 0; i < ROUGE_QUERIES; i++) if ((lsh.decisions[i] === null) === (brute.decisions[i] === null)) agree++;
// Recall of the candidate search: of all (query, pool) pairs at ROUGE-L >= 0.7, the share LSH finds.
let pairsBrute = 0;
let pairsLsh = 0;
for (const q of queries) {
  pairsBrute += brutePool.matches(brutePool.prepare(q)).length;
  pairsLsh += lshPool.matches(lshPool.prepare(q)).length;
}

// ---------------------------------------------------------------------------------------------------
// Report

const results = {
  docs_per_s: Math.round(docsPerS),
  lsh_inserts_per_s: Math.round(lshInsertsPerS),
  vs_npm_minhash: round(docsPerS / npmDocsPerS, 1),
  jaccard_mae: round(jaccardMae, 4),
  precision: round(precision, 4),
  recall: round(recall, 4),
  index_bytes_per_sample: Math.round(indexBytesPerSample),
  rouge_speedup: round(rougeLshPerS / rougeBrutePerS, 1),
  rouge_agreement: round(agree / ROUGE_QUERIES, 4),
  npm_minhash_docs_per_s: Math.round(npmDocsPerS),
  npm_minhash_docs_measured: NPM_DOCS,
  jaccard_mae_near_pairs: round(nearError / half, 4),
  jaccard_mae_random_pairs: round(randomError / half, 4),
  jaccard_mae_near_pairs_ideal: round(ideal / half, 4),
  index_bytes_per_sample_estimate: Math.round(indexEstimatePerSample),
  lsh_queries_per_s: Math.round(queriesPerS),
  near_dedup_samples_per_s: Math.round(rate(samples.length, dedupMs)),
  rouge_lsh_samples_per_s: Math.round(rougeLshPerS),
  rouge_brute_samples_per_s: Math.round(rougeBrutePerS),
  rouge_pair_recall: round(pairsBrute === 0 ? 1 : pairsLsh / pairsBrute, 4),
  peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
};

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

const table: Array<[string, string, string, string]> = [
  ["MinHash signatures (docs/s, 128 perm, word 5-grams)", fmt(docsPerS), `${fmt(npmDocsPerS)} (npm minhash, ${NPM_DOCS} docs)`, ">= 20,000"],
  ["  speed-up over npm minhash", `${results.vs_npm_minhash}x`, "", ">= 30x"],
  [`LSH inserts/s (0.8, ${index.bands} x ${index.rows} bands, 100k docs)`, fmt(lshInsertsPerS), "", ">= 200,000"],
  ["LSH queries/s (signature + query)", fmt(queriesPerS), npmQueryThrows ? "npm: query throws on unseen docs" : "", ""],
  ["index bytes/sample (heap+buffers after GC)", fmt(indexBytesPerSample), `memoryBytes(): ${fmt(indexEstimatePerSample)}`, "<= 1,024"],
  ["Jaccard MAE (1000 near + 1000 random pairs)", String(results.jaccard_mae), "", "<= 0.02"],
  ["  near pairs / ideal 128-perm floor", String(results.jaccard_mae_near_pairs), String(results.jaccard_mae_near_pairs_ideal), ""],
  ["  random pairs", String(results.jaccard_mae_random_pairs), "", ""],
  [`near-dedup precision @0.8 (${stream.length} docs)`, String(results.precision), "", ">= 0.95"],
  ["near-dedup recall @0.8", String(results.recall), "", ">= 0.95"],
  ["near-dedup samples/s (operator via collect)", fmt(rate(samples.length, dedupMs)), `ground truth ${fmt(truthMs)} ms`, ""],
  ["ROUGE-L filter samples/s, pool 20,000", `${fmt(rougeLshPerS)} (LSH)`, `${fmt(rougeBrutePerS)} (brute)`, ""],
  ["  speed-up", `${results.rouge_speedup}x`, "", ">= 20x"],
  ["  decisions identical to brute force", String(results.rouge_agreement), "", ""],
  ["  LCS computed per sample", comparisons[0]!.toFixed(1), `${comparisons[1]!.toFixed(0)} (brute, after the length bound)`, ""],
  ["  pairs >= 0.7 found by LSH / by brute", `${pairsLsh} / ${pairsBrute}`, String(results.rouge_pair_recall), ""],
];

function fmt(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

const widths = [0, 1, 2, 3].map((c) => Math.max(...table.map((row) => row[c]!.length), ["metric", "rxsynth", "baseline / detail", "target"][c]!.length));
const line = (row: readonly string[]) => row.map((cell, c) => cell.padEnd(widths[c]!)).join("  ");
console.log();
console.log(line(["metric", "rxsynth", "baseline / detail", "target"]));
console.log(widths.map((w) => "-".repeat(w)).join("  "));
for (const row of table) console.log(line(row));
console.log();
console.log("near-dedup by planted edit rate (documents / truth duplicates / rejected):");
for (const key of ["original", ...EDIT_RATES.map(String)]) {
  const row = byRate.get(key);
  if (row) console.log(`  ${key.padEnd(8)} ${String(row.planted).padStart(6)} ${String(row.truth).padStart(6)} ${String(row.caught).padStart(6)}`);
}
console.log(
  `ROUGE pool: ${POOL} accepted of ${generated} generated instructions in ${fmt(poolMs)} ms; queries: half light paraphrases of pool members, half fresh`,
);
console.log(`LSH: ${(candidateTotal / 10_000).toFixed(2)} candidates per query on average; peak RSS ${results.peak_rss_mb} MB`);

const out = join(dirname(fileURLToPath(import.meta.url)), "results", "dedup.json");
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`);
console.log(`wrote ${out} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
