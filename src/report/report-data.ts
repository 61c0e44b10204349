import { readFile } from "node:fs/promises";
import type { Manifest } from "../io/manifest.ts";
import type { TimelinePoint } from "../run/timeline.ts";
import { shardBatches } from "./report-read.ts";
import { openRunFolder, readDiversity, readTimeline, type RunFolder } from "./report-run.ts";
import { RowPass, type ReportRow, type RowFigures, type RowKind } from "./report-rows.ts";

export interface ReportDataOptions {
  /** Seed of every sample the report draws (rows shown, token counts, quantiles). Default 42. */
  readonly seed?: number;
}

/** Everything the page draws, computed from the run folder in one bounded pass; embedded in the page as JSON. */
export interface ReportData {
  readonly title: string;
  readonly identity: Identity;
  readonly funnel: Funnel;
  readonly rows: RowFigures;
  readonly diversity: { readonly summary: unknown; readonly snapshots: readonly unknown[]; readonly note: string | null };
  readonly pairwise: readonly { readonly operator: string; readonly agreed: number; readonly disagreed: number }[];
  readonly llmTotals: Readonly<Record<string, number>>;
  readonly timeline: readonly TimelineRow[];
}

export interface Identity {
  readonly graph: string;
  readonly options: unknown;
  readonly optionsHash: string;
  readonly endpoint: unknown;
  readonly identityHistory: unknown;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly complete: boolean;
  readonly chunks: number;
  readonly operators: Readonly<Record<string, { readonly version: string }>>;
  readonly versions: { readonly rxsynth: string; readonly node: string };
  readonly sessions: readonly { readonly session: number; readonly startedAt: number; readonly endedAt: number; readonly accepted: number; readonly rejected: number }[];
  readonly shards: { readonly accepted: number; readonly rejects: number; readonly bytes: number };
}

export interface Funnel {
  readonly operators: readonly { readonly name: string; readonly in: number; readonly out: number; readonly rejected: number }[];
  readonly accepted: number;
  readonly rejected: number;
}

/** A timeline point reduced to what the page plots. */
export interface TimelineRow {
  readonly at: number;
  readonly session: number;
  readonly accepted: number;
  readonly rejected: number;
  readonly inFlight: number;
  readonly budget: number;
  readonly requests: number;
  readonly promptTokens: number;
  readonly completionTokens: number;
  readonly costUsd: number;
  readonly projectedUsd: number | null;
}

/** Most timeline points the page gets; a longer timeline is thinned evenly, each session's last point kept. */
const TIMELINE_POINTS = 1_500;
const PAIRWISE_DISAGREEMENT = "position_bias";
const PAIRWISE_TIE = "tie";

/** Where the pass gets its rows: groups of one kind's rows from the shards listed. */
export type RowGroups = (kind: RowKind, files: readonly string[]) => AsyncIterable<readonly ReportRow[]>;

/** Batch by batch from the shard files: at most one small batch of rows is held at a time. */
export async function* shardRowGroups(_kind: RowKind, files: readonly string[]): AsyncGenerator<readonly ReportRow[]> {
  for (const file of files) {
    for await (const batch of shardBatches(file)) yield batch as unknown as ReportRow[];
  }
}

/**
 * The page's figures for `runDir`. `groups` is for comparing with other ways of reading the rows (the
 * benchmark's load-everything baseline); the default streams the shards.
 */
export async function collectReportData(runDir: string, options: ReportDataOptions = {}, groups: RowGroups = shardRowGroups): Promise<ReportData> {
  const run = await openRunFolder(runDir);
  const seed = options.seed ?? 42;
  const expected = { accepted: sum(run.accepted.map((s) => s.rows)), rejected: sum(run.rejects.map((s) => s.rows)) };
  const pass = new RowPass(seed, expected);
  for await (const group of groups("accepted", run.accepted.map((s) => s.path))) for (const row of group) pass.add(row, "accepted");
  for await (const group of groups("rejected", run.rejects.map((s) => s.path))) for (const row of group) pass.add(row, "rejected");
  const rows = pass.result();
  const [timeline, diversity, versions] = await Promise.all([readTimeline(run), readDiversity(run), readVersions()]);
  const manifest = run.manifest;
  const funnel: Funnel = {
    operators: Object.entries(manifest.operatorCounts ?? {}).map(([name, count]) => ({ name, ...count })),
    accepted: rows.rows.accepted,
    rejected: rows.rows.rejected,
  };
  return {
    title: `${manifest.graph} — rxsynth run report`,
    identity: identityOf(run, timeline, versions),
    funnel,
    rows,
    diversity: { summary: diversity.summary ?? null, snapshots: diversity.snapshots, note: diversity.note ?? null },
    pairwise: pairwiseAgreement(funnel, rows, manifest.operators),
    llmTotals: Object.fromEntries(Object.entries(manifest.totals).filter(([key]) => key.startsWith("llm."))),
    timeline: thin(timeline).map(timelineRow),
  };
}

/**
 * A pairwise judge asks in both orders and rejects disagreements as `position_bias`; what it kept, and
 * the ties it dropped, agreed in both orders. Other rejects (a bad answer) were not decided, so not counted.
 * Judges are known by that reason, or by the pairwise judge's own options (operators/filter/judge-pairwise.ts).
 */
function pairwiseAgreement(funnel: Funnel, rows: RowFigures, operators: Manifest["operators"]): ReportData["pairwise"] {
  const judges = new Set(rows.rejectsByReason.filter((r) => r.reason === PAIRWISE_DISAGREEMENT).map((r) => r.operator));
  for (const [name, op] of Object.entries(operators)) {
    const params = op.params as Record<string, unknown> | null;
    if (params && typeof params === "object" && "keepTies" in params && "scorePrefix" in params) judges.add(name);
  }
  const rejects = (operator: string, reason: string) => rows.rejectsByReason.find((r) => r.operator === operator && r.reason === reason)?.count ?? 0;
  return [...judges]
    .sort()
    .map((operator) => {
      const out = funnel.operators.find((op) => op.name === operator)?.out ?? 0;
      return { operator, agreed: out + rejects(operator, PAIRWISE_TIE), disagreed: rejects(operator, PAIRWISE_DISAGREEMENT) };
    })
    .filter((judge) => judge.agreed + judge.disagreed > 0);
}

function identityOf(run: RunFolder, timeline: readonly TimelinePoint[], versions: Identity["versions"]): Identity {
  const m = run.manifest;
  const sessions = new Map<number, { session: number; startedAt: number; endedAt: number; accepted: number; rejected: number }>();
  if (run.chunks === 0) {
    for (const point of timeline) {
      const s = sessions.get(point.session) ?? { session: point.session, startedAt: point.at - point.elapsedMs, endedAt: point.at, accepted: 0, rejected: 0 };
      s.endedAt = point.at;
      s.accepted = point.accepted;
      s.rejected = point.rejected;
      sessions.set(point.session, s);
    }
  }
  return {
    graph: m.graph,
    options: m.options,
    optionsHash: m.optionsHash,
    endpoint: m.identity ?? null,
    identityHistory: m.identityHistory ?? [],
    createdAt: m.createdAt,
    updatedAt: m.updatedAt,
    complete: m.complete,
    chunks: run.chunks,
    operators: Object.fromEntries(Object.entries(m.operators).map(([name, op]) => [name, { version: op.version }])),
    versions,
    sessions: [...sessions.values()].sort((a, b) => a.session - b.session),
    shards: { accepted: run.accepted.length, rejects: run.rejects.length, bytes: sum([...run.accepted, ...run.rejects].map((s) => s.bytes)) },
  };
}

async function readVersions(): Promise<Identity["versions"]> {
  const pkg = JSON.parse(await readFile(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
  return { rxsynth: pkg.version, node: process.version };
}

function thin(points: readonly TimelinePoint[]): TimelinePoint[] {
  if (points.length <= TIMELINE_POINTS) return [...points];
  const step = points.length / TIMELINE_POINTS;
  return points.filter((point, i) => {
    const next = points[i + 1];
    return Math.floor(i / step) !== Math.floor((i + 1) / step) || !next || next.session !== point.session;
  });
}

function timelineRow(point: TimelinePoint): TimelineRow {
  const total = (key: string) => point.totals?.[key] ?? 0;
  return {
    at: point.at,
    session: point.session,
    accepted: point.accepted,
    rejected: point.rejected,
    inFlight: point.inFlight,
    budget: point.budget,
    requests: total("llm.requests"),
    promptTokens: total("llm.prompt_tokens"),
    completionTokens: total("llm.completion_tokens"),
    costUsd: point.cost?.spentUsd ?? total("llm.cost_usd"),
    projectedUsd: point.cost?.projectedUsd ?? null,
  };
}

function sum(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0);
}
