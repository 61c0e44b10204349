import { lookupPrice, PRICES_AS_OF } from "../llm/prices.ts";
import { CappedCounter, LengthHistogram, NumberSample, RecentKeys, Reservoir, sampled, type NumberSummary } from "./report-stats.ts";
import { fieldTokens } from "./report-tokens.ts";

/** A row as the shard readers decode it (src/io/schema.ts `decodeSampleRow`). */
export interface ReportRow {
  readonly id: string;
  readonly data: Readonly<Record<string, unknown>>;
  readonly provenance: {
    readonly origin: string;
    readonly source: string;
    readonly depth: number;
    readonly parents: readonly string[];
    readonly steps: readonly ReportStep[];
  };
  readonly scores: Readonly<Record<string, number>> | ReadonlyMap<string, number>;
  readonly reject?: {
    readonly operator: string;
    readonly reason: string;
    readonly value?: number;
    readonly threshold?: number;
    readonly message?: string;
    readonly duplicateOf?: string;
  };
}

export interface ReportStep {
  readonly op: string;
  readonly version?: string;
  readonly at: number;
  readonly model?: string;
  readonly promptHash?: string;
  readonly promptTokens?: number;
  readonly completionTokens?: number;
  readonly latencyMs?: number;
  readonly note?: string;
}

export type RowKind = "accepted" | "rejected";

/** The fixed sizes of every accumulator: they, not the run's size, bound the pass's memory. */
export const LIMITS = {
  textFields: 16,
  scoreKeys: 32,
  reasons: 64,
  models: 64,
  /** Values kept per number sample (scores, run times, latencies, Jaccard): quantiles are exact below it. */
  numberSample: 4096,
  acceptedSamples: 40,
  samplesPerReason: 8,
  /** Rows whose text fields are tokenised, per kind: tiktoken costs far more than counting words. */
  tokenRows: 5_000,
  /** Kept samples with duplicates whose cluster is counted. */
  clusters: 100_000,
  /** LLM steps remembered to count a step shared by a fan-out's children once. */
  recentSteps: 65_536,
  shownChars: 600,
  shownNoteChars: 300,
} as const;

/** What the sandbox decides about a program (src/sandbox/types.ts); other reasons are not execution verdicts. */
const EXECUTION_FAILURES = new Set(["syntax_error", "test_failed", "timeout", "crashed", "sandbox_violation", "tampering"]);
const RUN_TIME_SCORE = "exec_ms";

export interface ShownRow {
  readonly id: string;
  readonly kind: RowKind;
  readonly operator: string | null;
  readonly reason: string | null;
  readonly rejectDetail: string | null;
  readonly origin: string;
  readonly depth: number;
  readonly data: Record<string, string>;
  readonly scores: Record<string, number>;
  readonly steps: readonly ShownStep[];
}

export interface ShownStep {
  readonly op: string;
  readonly version: string | null;
  readonly model: string | null;
  readonly promptTokens: number | null;
  readonly completionTokens: number | null;
  readonly latencyMs: number | null;
  readonly note: string | null;
}

interface LlmTally {
  calls: number;
  cached: number;
  promptTokens: number;
  completionTokens: number;
  latency: NumberSample;
}

/** The report's streaming pass over every committed row: feed rows with `add`, read the figures with `result`. */
export class RowPass {
  private readonly lengths = new Map<string, { words: Record<RowKind, LengthHistogram>; tokens: Record<RowKind, LengthHistogram> }>();
  private readonly tokenRate: Record<RowKind, number>;
  private readonly tokenRows: Record<RowKind, number> = { accepted: 0, rejected: 0 };
  /**
   * Texts of the token sample, counted when the pass is over: tiktoken's encoder (tens of MB of WASM)
   * is then loaded after the shard reader's peak, not on top of it.
   */
  private readonly tokenTexts: { histogram: LengthHistogram; text: string }[] = [];
  private readonly rows: Record<RowKind, number> = { accepted: 0, rejected: 0 };
  private readonly reasons = new CappedCounter(LIMITS.reasons);
  private readonly scores = new Map<string, Record<RowKind, NumberSample>>();
  private readonly clusters = new CappedCounter(LIMITS.clusters);
  /** Similarity of each reject to what it duplicates (`value`: Jaccard for near dedup, ROUGE-L for novelty), by reason. */
  private readonly similarity = new Map<string, NumberSample>();
  private readonly verdicts = new CappedCounter(LIMITS.reasons);
  private readonly runTime: NumberSample;
  private readonly llm = new Map<string, LlmTally>();
  private readonly seenSteps = new RecentKeys(LIMITS.recentSteps);
  private readonly origins = new CappedCounter(16);
  private readonly depths = new CappedCounter(64);
  private readonly accepted: Reservoir<ShownRow>;
  private readonly rejected = new Map<string, Reservoir<ShownRow>>();

  constructor(
    private readonly seed: number,
    expectedRows: Record<RowKind, number>,
  ) {
    this.tokenRate = {
      accepted: Math.min(1, LIMITS.tokenRows / Math.max(1, expectedRows.accepted)),
      rejected: Math.min(1, LIMITS.tokenRows / Math.max(1, expectedRows.rejected)),
    };
    this.runTime = new NumberSample(LIMITS.numberSample, seed);
    this.accepted = new Reservoir(LIMITS.acceptedSamples, seed);
  }

  add(row: ReportRow, kind: RowKind): void {
    this.rows[kind]++;
    this.addLengths(row, kind);
    const scores = scoreEntries(row.scores);
    for (const [key, value] of scores) this.scoreSample(key)?.[kind].add(row.id, value);
    if (kind === "accepted") {
      this.origins.add(row.provenance.origin ?? "unknown");
      this.depths.add(String(row.provenance.depth ?? 0));
    }
    const reject = row.reject;
    if (reject) this.addReject(row, reject);
    const runTime = scores.find(([key]) => key === RUN_TIME_SCORE)?.[1];
    if (runTime !== undefined) this.runTime.add(row.id, runTime);
    if (kind === "accepted" && runTime !== undefined) this.verdicts.add("passed");
    this.addSteps(row.provenance.steps ?? []);
    const shown = () => showRow(row, kind);
    if (kind === "accepted") this.accepted.offer(row.id, shown);
    else this.reservoirFor(`${reject?.operator ?? "?"}\u0000${reject?.reason ?? "?"}`)?.offer(row.id, shown);
  }

  private addLengths(row: ReportRow, kind: RowKind): void {
    // The hash sample's size is only expected to be `tokenRows`; the cap makes it a bound.
    const tokens = this.tokenRows[kind] < LIMITS.tokenRows * 1.1 && sampled(row.id, this.tokenRate[kind], this.seed);
    if (tokens) this.tokenRows[kind]++;
    for (const [field, value] of Object.entries(row.data ?? {})) {
      if (typeof value !== "string") continue;
      let histograms = this.lengths.get(field);
      if (!histograms) {
        if (this.lengths.size >= LIMITS.textFields) continue;
        histograms = {
          words: { accepted: new LengthHistogram(), rejected: new LengthHistogram() },
          tokens: { accepted: new LengthHistogram(), rejected: new LengthHistogram() },
        };
        this.lengths.set(field, histograms);
      }
      histograms.words[kind].add(wordCount(value));
      if (tokens) this.tokenTexts.push({ histogram: histograms.tokens[kind], text: value });
    }
  }

  private scoreSample(key: string): Record<RowKind, NumberSample> | undefined {
    let sample = this.scores.get(key);
    if (!sample && this.scores.size < LIMITS.scoreKeys) {
      sample = { accepted: new NumberSample(LIMITS.numberSample, this.seed), rejected: new NumberSample(LIMITS.numberSample, this.seed) };
      this.scores.set(key, sample);
    }
    return sample;
  }

  private addReject(row: ReportRow, reject: NonNullable<ReportRow["reject"]>): void {
    this.reasons.add(`${reject.operator}\u0000${reject.reason}`);
    if (reject.duplicateOf) {
      this.clusters.add(`${reject.reason}\u0000${reject.duplicateOf}`);
      if (typeof reject.value === "number") this.similaritySample(reject.reason)?.add(row.id, reject.value);
    }
    if (EXECUTION_FAILURES.has(reject.reason)) this.verdicts.add(reject.reason);
  }

  /** Tokens and latencies of LLM steps, each call once: a fan-out's children share their parent's step. */
  private addSteps(steps: readonly ReportStep[]): void {
    for (const step of steps) {
      if (!step.model || (step.promptTokens === undefined && step.completionTokens === undefined)) continue;
      const key = `${step.op}\u0000${step.promptHash ?? ""}\u0000${step.at}`;
      if (!this.seenSteps.firstSight(key)) continue;
      const group = `${step.op}\u0000${step.model}`;
      let tally = this.llm.get(group);
      if (!tally) {
        if (this.llm.size >= LIMITS.models) continue;
        tally = { calls: 0, cached: 0, promptTokens: 0, completionTokens: 0, latency: new NumberSample(LIMITS.numberSample, this.seed) };
        this.llm.set(group, tally);
      }
      // An answer from the response cache is noted so by most operators; it never takes a real call's milliseconds.
      const cached = /\bcached\b/.test(step.note ?? "") || step.latencyMs === 0;
      tally.calls++;
      tally.promptTokens += step.promptTokens ?? 0;
      tally.completionTokens += step.completionTokens ?? 0;
      if (cached) tally.cached++;
      else if (typeof step.latencyMs === "number") tally.latency.add(key, step.latencyMs);
    }
  }

  private similaritySample(reason: string): NumberSample | undefined {
    let sample = this.similarity.get(reason);
    if (!sample && this.similarity.size < LIMITS.reasons) {
      sample = new NumberSample(LIMITS.numberSample, this.seed);
      this.similarity.set(reason, sample);
    }
    return sample;
  }

  private reservoirFor(key: string): Reservoir<ShownRow> | undefined {
    let reservoir = this.rejected.get(key);
    if (!reservoir && this.rejected.size < LIMITS.reasons) {
      reservoir = new Reservoir(LIMITS.samplesPerReason, this.seed);
      this.rejected.set(key, reservoir);
    }
    return reservoir;
  }

  result(): RowFigures {
    for (const { histogram, text } of this.tokenTexts.splice(0)) histogram.add(fieldTokens(text));
    const split = (key: string) => key.split("\u0000") as [string, string];
    return {
      rows: { ...this.rows },
      lengths: [...this.lengths].map(([field, h]) => ({
        field,
        words: { accepted: h.words.accepted.counts, rejected: h.words.rejected.counts },
        tokens: { accepted: h.tokens.accepted.counts, rejected: h.tokens.rejected.counts },
        meanWords: { accepted: mean(h.words.accepted), rejected: mean(h.words.rejected) },
      })),
      lengthEdges: LengthHistogram.EDGES,
      tokenSample: { accepted: this.tokenRows.accepted, rejected: this.tokenRows.rejected, limit: LIMITS.tokenRows },
      rejectsByReason: this.reasons.sorted().map(([key, count]) => ({ operator: split(key)[0], reason: split(key)[1], count })),
      otherRejects: this.reasons.others,
      scores: [...this.scores].map(([key, s]) => ({ key, accepted: s.accepted.summary() ?? null, rejected: s.rejected.summary() ?? null })),
      dedup: {
        clusterSizes: clusterSizes(this.clusters),
        clustersCapped: this.clusters.others > 0,
        similarity: [...this.similarity].map(([reason, sample]) => ({ reason, summary: sample.summary(20)! })),
      },
      execution: {
        verdicts: this.verdicts.sorted().map(([reason, count]) => ({ reason, count })),
        runTime: this.runTime.summary() ?? null,
        runTimeScore: RUN_TIME_SCORE,
      },
      llm: {
        pricesAsOf: PRICES_AS_OF,
        byOperator: [...this.llm].map(([key, t]) => {
          const [operator, model] = split(key);
          const price = lookupPrice(model);
          // Answers served from the response cache cost nothing this time; list price for the rest.
          const fresh = t.calls === 0 ? 0 : (t.calls - t.cached) / t.calls;
          const costUsd = price ? (fresh * (t.promptTokens * price.input + t.completionTokens * price.output)) / 1e6 : null;
          const latency = t.latency.summary();
          return {
            operator,
            model,
            calls: t.calls,
            cached: t.cached,
            promptTokens: t.promptTokens,
            completionTokens: t.completionTokens,
            costUsd,
            latency: latency ? { p50: latency.p50, p90: latency.p90, p99: latency.p99, count: latency.count } : null,
          };
        }),
      },
      origins: this.origins.sorted().map(([origin, count]) => ({ origin, count })),
      depths: this.depths.sorted().map(([depth, count]) => ({ depth: Number(depth), count })).sort((a, b) => a.depth - b.depth),
      samples: [
        ...this.accepted.values(),
        ...[...this.rejected.keys()].sort().flatMap((key) => this.rejected.get(key)!.values()),
      ],
    };
  }
}

export interface RowFigures {
  readonly rows: Record<RowKind, number>;
  readonly lengths: readonly {
    readonly field: string;
    readonly words: Record<RowKind, readonly number[]>;
    readonly tokens: Record<RowKind, readonly number[]>;
    readonly meanWords: Record<RowKind, number | null>;
  }[];
  readonly lengthEdges: readonly number[];
  readonly tokenSample: { readonly accepted: number; readonly rejected: number; readonly limit: number };
  readonly rejectsByReason: readonly { readonly operator: string; readonly reason: string; readonly count: number }[];
  readonly otherRejects: number;
  readonly scores: readonly { readonly key: string; readonly accepted: NumberSummary | null; readonly rejected: NumberSummary | null }[];
  readonly dedup: {
    readonly clusterSizes: readonly { readonly reason: string; readonly size: number; readonly clusters: number }[];
    readonly clustersCapped: boolean;
    readonly similarity: readonly { readonly reason: string; readonly summary: NumberSummary }[];
  };
  readonly execution: {
    readonly verdicts: readonly { readonly reason: string; readonly count: number }[];
    readonly runTime: NumberSummary | null;
    readonly runTimeScore: string;
  };
  readonly llm: {
    readonly pricesAsOf: string;
    readonly byOperator: readonly {
      readonly operator: string;
      readonly model: string;
      readonly calls: number;
      readonly cached: number;
      readonly promptTokens: number;
      readonly completionTokens: number;
      readonly costUsd: number | null;
      readonly latency: { readonly p50: number; readonly p90: number; readonly p99: number; readonly count: number } | null;
    }[];
  };
  readonly origins: readonly { readonly origin: string; readonly count: number }[];
  readonly depths: readonly { readonly depth: number; readonly count: number }[];
  readonly samples: readonly ShownRow[];
}

function mean(histogram: LengthHistogram): number | null {
  return histogram.count === 0 ? null : histogram.sum / histogram.count;
}

/** A cluster is a kept sample and the rejects that name it in `duplicate_of`, for one reject reason. */
function clusterSizes(clusters: CappedCounter): { reason: string; size: number; clusters: number }[] {
  const bySize = new Map<string, number>();
  for (const [key, duplicates] of clusters.counts) {
    const at = `${key.slice(0, key.indexOf("\u0000"))}\u0000${duplicates + 1}`;
    bySize.set(at, (bySize.get(at) ?? 0) + 1);
  }
  return [...bySize]
    .map(([key, count]) => ({ reason: key.split("\u0000")[0]!, size: Number(key.split("\u0000")[1]), clusters: count }))
    .sort((a, b) => (a.reason < b.reason ? -1 : a.reason > b.reason ? 1 : a.size - b.size));
}

function scoreEntries(scores: ReportRow["scores"] | null | undefined): [string, number][] {
  if (!scores) return [];
  const entries = scores instanceof Map ? [...scores] : Object.entries(scores);
  return entries.filter((entry): entry is [string, number] => typeof entry[1] === "number");
}

function wordCount(text: string): number {
  let words = 0;
  let inWord = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const space = c === 32 || (c >= 9 && c <= 13) || c === 0xa0;
    if (!space && !inWord) words++;
    inWord = !space;
  }
  return words;
}

function clip(text: string, chars: number): string {
  return text.length <= chars ? text : `${text.slice(0, chars)}… (${text.length.toLocaleString("en")} chars)`;
}

function showRow(row: ReportRow, kind: RowKind): ShownRow {
  const data: Record<string, string> = {};
  for (const [field, value] of Object.entries(row.data ?? {})) {
    if (value === undefined || value === null) continue;
    data[field] = clip(typeof value === "string" ? value : JSON.stringify(value), LIMITS.shownChars);
  }
  const reject = row.reject;
  const detail = reject
    ? [reject.message, reject.value === undefined ? undefined : `value ${reject.value}`, reject.threshold === undefined ? undefined : `threshold ${reject.threshold}`, reject.duplicateOf ? `duplicate of ${reject.duplicateOf}` : undefined]
        .filter(Boolean)
        .join("; ")
    : "";
  return {
    id: row.id,
    kind,
    operator: reject?.operator ?? null,
    reason: reject?.reason ?? null,
    rejectDetail: detail ? clip(detail, LIMITS.shownChars) : null,
    origin: row.provenance.origin,
    depth: row.provenance.depth,
    data,
    scores: Object.fromEntries(scoreEntries(row.scores)),
    steps: (row.provenance.steps ?? []).map((step) => ({
      op: step.op,
      version: step.version ?? null,
      model: step.model ?? null,
      promptTokens: step.promptTokens ?? null,
      completionTokens: step.completionTokens ?? null,
      latencyMs: step.latencyMs ?? null,
      note: step.note ? clip(step.note, LIMITS.shownNoteChars) : null,
    })),
  };
}
