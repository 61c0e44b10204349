// Scale-out of the `curate` graph with real processes: near-dedup and exact dedup shared by three
// `rxsynth worker`s through Redis, one worker killed by SIGKILL inside its first chunk (after renaming its
// shards, before its manifest: the chunk is reclaimed and replayed by another), one started late, Redis
// restarted twice mid-run (AOF on), once under a running worker. The output is checked against what a shared index promises, not
// against the single-process rows (which copy of a cluster is kept depends on timing): every document is
// kept or rejected exactly once, exact dedup rejects as many as `rxsynth run`, no kept pair reaches the
// near-dedup threshold, and as many are kept as by `rxsynth run`.
import { existsSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { defaults } from "../../graphs/curate.ts";
import { MINHASH_DEFAULTS, shingles, words } from "../../operators/dedup/minhash.ts";
import { readRows } from "../../src/io/read.ts";
import { STOP_WORDS, madeUpWords, mulberry32 } from "../support/corpus.ts";
import { skipRedis } from "../support/redis-server.ts";
import { scaleCluster } from "../support/scale-cluster.ts";

const cluster = scaleCluster("rxsynth-scale-curate-");
const { cli, dir } = cluster;

// ---------------------------------------------------------------------------------------------------
// The corpus

interface Corpus {
  readonly file: string;
  readonly ids: readonly string[];
  /** Near-duplicate clusters planted (each also holds its original). */
  readonly clusters: number;
}

/**
 * A seeded JSONL corpus `{id, text}`: unrelated documents of random words (a fifth of them stop words, so
 * the Gopher rules pass them), near-duplicate clusters, exact copies and a few documents too short to keep.
 *
 * Every cluster is a clique far above the threshold and far from everything else: its members are one
 * 150-200 word original with the word at one position replaced by a different word in each (exact Jaccard
 * of their 5-gram sets about 0.93 for every pair), and unrelated documents share almost no 5-gram. So
 * whichever member arrives first, exactly one per cluster survives, and no pair sits near the threshold,
 * where MinHash's estimate (what the operator decides on) and the exact Jaccard (what the test checks)
 * could disagree.
 */
function writeCorpus(path: string): Corpus {
  const next = mulberry32(20240611);
  const words = madeUpWords(600);
  const pick = (list: readonly string[]) => list[Math.floor(next() * list.length)]!;
  const document = (length: number) =>
    Array.from({ length }, (_, i) => {
      const word = next() < 0.2 ? pick(STOP_WORDS) : pick(words);
      return i === 0 ? word[0]!.toUpperCase() + word.slice(1) : word;
    }).join(" ") + ".";
  const texts: string[] = [];
  for (let i = 0; i < 2_200; i++) texts.push(document(60 + Math.floor(next() * 90)));
  const clusters = 150;
  for (let c = 0; c < clusters; c++) {
    const original = document(150 + Math.floor(next() * 50)).split(" ");
    texts.push(original.join(" "));
    const at = 1 + Math.floor(next() * (original.length - 2));
    const used = new Set([original[at]]);
    const variants = 1 + Math.floor(next() * 3);
    for (let v = 0; v < variants; v++) {
      let word = pick(words);
      while (used.has(word)) word = pick(words);
      used.add(word);
      texts.push(original.map((w, i) => (i === at ? word : w)).join(" "));
    }
  }
  // Exact copies of earlier documents, some in capitals or with their spaces doubled (the same text to exact dedup).
  const copies = 120;
  const originals = texts.length;
  for (let i = 0; i < copies; i++) {
    const text = texts[Math.floor(next() * originals)]!;
    texts.push(i % 3 === 0 ? text.toUpperCase() : i % 3 === 1 ? ` ${text.replace(/ /g, "  ")}\n` : text);
  }
  for (let i = 0; i < 30; i++) texts.push(document(5 + Math.floor(next() * 30)));
  // Fisher-Yates with the same generator: copies and cluster members land in different chunks and workers.
  for (let i = texts.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [texts[i], texts[j]] = [texts[j]!, texts[i]!];
  }
  const ids = texts.map((_, n) => `d${String(n).padStart(5, "0")}`);
  writeFileSync(path, texts.map((text, n) => JSON.stringify({ id: ids[n], text })).join("\n") + "\n");
  return { file: path, ids, clusters };
}

/**
 * Every pair of texts whose exact Jaccard similarity of word 5-gram sets is at or above `threshold`, with
 * the operator's own shingling (`shingles`: lowercased words, punctuation deleted, each 5-gram hashed to 32
 * bits). All pairs are compared; an inverted index from shingle to documents only skips the pairs that
 * share no shingle, whose similarity is 0.
 */
function pairsAtOrAbove(docs: readonly { id: string; text: string }[], threshold: number): string[] {
  const sets = docs.map((doc) => new Set(shingles(doc.text, MINHASH_DEFAULTS.shingle)));
  const holders = new Map<number, number[]>();
  sets.forEach((set, d) => {
    for (const shingle of set) {
      const list = holders.get(shingle);
      if (list) list.push(d);
      else holders.set(shingle, [d]);
    }
  });
  const shared = new Map<number, number>();
  for (const list of holders.values()) {
    for (let i = 0; i < list.length; i++) {
      for (let j = i + 1; j < list.length; j++) {
        const key = list[i]! * docs.length + list[j]!;
        shared.set(key, (shared.get(key) ?? 0) + 1);
      }
    }
  }
  const pairs: string[] = [];
  for (const [key, common] of shared) {
    const a = Math.floor(key / docs.length);
    const b = key % docs.length;
    const similarity = common / (sets[a]!.size + sets[b]!.size - common);
    if (similarity >= threshold) pairs.push(`${docs[a]!.id} ~ ${docs[b]!.id}: ${similarity.toFixed(3)}`);
  }
  return pairs;
}

// ---------------------------------------------------------------------------------------------------

type Row = { id: string; data: { id: string; text: string }; reject?: { operator: string; reason: string; duplicateOf?: string } };
const rowsOf = async (folder: string, prefix: "part" | "rejects") => (await readRows(folder, { prefix })) as unknown as Row[];
const count = (rows: readonly Row[], reason: string) => rows.filter((row) => row.reject?.reason === reason).length;

describe.skipIf(skipRedis)("rxsynth submit curate / worker: near-dedup shared in Redis", () => {
  it("three workers, one killed inside a chunk and one started late, Redis restarted: each document once, no kept pair at the threshold, as many kept as one process", async () => {
    const corpus = writeCorpus(join(dir, "corpus.jsonl"));
    const threshold = defaults.threshold;
    const options = ["--set", `input=${corpus.file}`];

    const single = join(dir, "single");
    const alone = await cli(["run", "curate", "--out", single, "--quiet", ...options]).exit;
    expect(alone.code, alone.stderr).toBe(0);
    const singleKept = await rowsOf(single, "part");
    const singleRejected = await rowsOf(single, "rejects");
    // The fixture does what it says: the run finds the planted duplicates and short documents.
    expect(count(singleRejected, "too_few_words")).toBe(30);
    expect(count(singleRejected, "exact_duplicate")).toBeGreaterThan(100);
    expect(count(singleRejected, "near_duplicate")).toBeGreaterThan(corpus.clusters);

    const out = join(dir, "scaled");
    const run = "curate-test";
    const submit = await cli(["submit", "curate", "--redis", cluster.redis.url, "--run", run, "--out", out, "--chunk-size", "100", "--reclaim-seconds", "1", ...options]).exit;
    expect(submit.code, submit.stderr).toBe(0);
    const worker = (env: Record<string, string> = {}) => cli(["worker", "--redis", cluster.redis.url, "--run", run], env);
    // Killed inside its first chunk, after renaming that chunk's shards and before its manifest: the chunk
    // is held, not acknowledged, and its samples already went through the shared indexes.
    const doomed = worker({ RXSYNTH_FAULT: "shards:1" });
    expect((await doomed.exit).signal).toBe("SIGKILL");
    // Redis restarts with what the dead worker's chunk put in the shared indexes only in its AOF.
    await cluster.redis.stop();
    await new Promise((done) => setTimeout(done, 300));
    await cluster.redis.restart();
    const first = worker();
    await waitFor(() => existsSync(join(out, "chunks")) && readdirSync(join(out, "chunks")).length >= 4, 30_000);
    // And again under a running worker's index commands: those cut off are sent again, none becomes a reject.
    await cluster.redis.stop();
    await new Promise((done) => setTimeout(done, 300));
    await cluster.redis.restart();
    const late = worker();
    for (const exit of await Promise.all([first.exit, late.exit])) expect(exit.code, exit.stderr).toBe(0);

    const kept = await rowsOf(out, "part");
    const rejected = await rowsOf(out, "rejects");
    // Every reject is a verdict on the document, none an infrastructure error taken for one.
    expect(new Set(rejected.map((row) => row.reject!.reason))).toEqual(new Set(["too_few_words", "exact_duplicate", "near_duplicate"]));
    const ids = [...kept, ...rejected].map((row) => row.data.id);
    expect(ids.length).toBe(corpus.ids.length);
    expect(ids.sort()).toEqual([...corpus.ids].sort());
    expect(count(rejected, "exact_duplicate")).toBe(count(singleRejected, "exact_duplicate"));
    expect(count(rejected, "too_few_words")).toBe(count(singleRejected, "too_few_words"));
    // A near-duplicate names a kept document, wherever it was committed; an exact duplicate names one that
    // passed exact dedup (kept, or a near-duplicate of another).
    const keptIds = new Set(kept.map((row) => row.id));
    const nearIds = new Set(rejected.filter((row) => row.reject!.reason === "near_duplicate").map((row) => row.id));
    const orphans = rejected.filter((row) => {
      const of = row.reject!.duplicateOf;
      if (row.reject!.reason === "near_duplicate") return !keptIds.has(of!);
      return row.reject!.reason === "exact_duplicate" && !keptIds.has(of!) && !nearIds.has(of!);
    });
    expect(orphans.map((row) => `${row.id} ${row.reject!.reason} of ${row.reject!.duplicateOf}`)).toEqual([]);
    expect(pairsAtOrAbove(kept.map((row) => row.data), threshold)).toEqual([]);
    // Clusters are cliques (see writeCorpus), so arrival order cannot change how many survive: no margin needed.
    expect(kept.length).toBe(singleKept.length);

    const status = await cli(["status", "--redis", cluster.redis.url, "--run", run, "--json"]).exit;
    const report = JSON.parse(status.stdout) as { state: string; reclaimed: number; distinct: { name: string; distinct: number; total: number }[] };
    expect(report.state).toBe("complete");
    expect(report.reclaimed).toBeGreaterThanOrEqual(1);
    // The run's distinct words, one HyperLogLog merged from every chunk (a replayed one included), against
    // the exact count over what was kept; the items counted are every kept document's words, once.
    const keptWords = kept.map((row) => words(String(row.data.text)));
    const unigrams = report.distinct.find((counter) => counter.name === "diversity.distinct_1")!;
    const exactDistinct = new Set(keptWords.flat()).size;
    expect(Math.abs(unigrams.distinct - exactDistinct) / exactDistinct).toBeLessThan(0.03);
    expect(unigrams.total).toBe(keptWords.reduce((sum, list) => sum + list.length, 0));
    expect(report.distinct.map((counter) => counter.name)).toEqual(["diversity.distinct_1", "diversity.distinct_2", "diversity.distinct_3"]);
  }, 120_000);

  it("Redis refusing the shared index's commands under a worker: it stops with one line and rejects nothing for it; then another finishes each document once", async () => {
    const corpus = writeCorpus(join(dir, "corpus-refused.jsonl"));
    const options = ["--set", `input=${corpus.file}`];
    const single = join(dir, "single-refused");
    expect((await cli(["run", "curate", "--out", single, "--quiet", ...options]).exit).code).toBe(0);
    const singleRejected = await rowsOf(single, "rejects");

    const out = join(dir, "refused");
    const run = "refused-test";
    const submit = await cli(["submit", "curate", "--redis", cluster.redis.url, "--run", run, "--out", out, "--chunk-size", "100", "--reclaim-seconds", "1", ...options]).exit;
    expect(submit.code, submit.stderr).toBe(0);
    const worker = () => cli(["worker", "--redis", cluster.redis.url, "--run", run]);
    const first = worker();
    await waitFor(() => existsSync(join(out, "chunks")) && readdirSync(join(out, "chunks")).length >= 3, 30_000);
    // The exact-dedup index's key holds a string for a while (its claims moved aside, not lost): every claim
    // is refused with WRONGTYPE, while the queue's own commands still work, so a refused claim taken for a
    // verdict would be committed as a reject.
    const index = `rxsynth:run:{${run}}:index:exact_dedup`;
    // In one script: between a separate RENAME and SET a claim would land in a fresh hash that SET then drops.
    await cluster.redis.call("EVAL", "redis.call('RENAME', KEYS[1], KEYS[2]); redis.call('SET', KEYS[1], 'not a hash')", "2", index, `${index}:aside`);
    const refused = await first.exit;
    expect(refused.code).not.toBe(0);
    expect(refused.stderr.trim().split("\n").at(-1)).toMatch(/^rxsynth: redis error: Redis refused a command of the run's shared state: WRONGTYPE.*start the worker again/);
    await cluster.redis.call("RENAME", `${index}:aside`, index);
    const rest = await worker().exit;
    expect(rest.code, rest.stderr).toBe(0);

    const kept = await rowsOf(out, "part");
    const rejected = await rowsOf(out, "rejects");
    expect(new Set(rejected.map((row) => row.reject!.reason))).toEqual(new Set(["too_few_words", "exact_duplicate", "near_duplicate"]));
    const ids = [...kept, ...rejected].map((row) => row.data.id);
    expect(ids.sort()).toEqual([...corpus.ids].sort());
    expect(count(rejected, "exact_duplicate")).toBe(count(singleRejected, "exact_duplicate"));
  }, 120_000);
});

async function waitFor(condition: () => boolean, timeoutMs: number): Promise<void> {
  const started = Date.now();
  while (!condition()) {
    if (Date.now() - started > timeoutMs) throw new Error("timed out waiting");
    await new Promise((done) => setTimeout(done, 20));
  }
}
