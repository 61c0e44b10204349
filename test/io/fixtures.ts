import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { OutputRow, RejectRow, Sample } from "../../src/index.ts";

export async function tempDir(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), "rxsynth-io-"));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

const TEXTS = ["plain ascii", "héllo wörld", "日本語のテキスト", "emoji 😀🎉 and more", "مرحبا بالعالم", "tab\tand\nnewline"];
const AT = Date.UTC(2025, 4, 17, 12, 30, 0);

/**
 * Samples that exercise the schema: unicode, two-step provenance with every optional field and one
 * with none, a data key whose type changes (number, then string), nested objects and arrays, explicit
 * nulls, a key and a value type that appear only after the first shard, booleans.
 */
export function sampleRows(count: number): Sample[] {
  return Array.from({ length: count }, (_, i): Sample => {
    const data: Record<string, unknown> = {
      text: `${TEXTS[i % TEXTS.length]} #${i}`,
      n: i * 1.5,
      flag: i % 2 === 0,
      tags: ["a", `t${i}`],
      meta: { lang: i % 3 === 0 ? "en" : "ja", nested: { depth: i } },
      mixed: i < 4 ? i : `s${i}`,
    };
    if (i % 5 === 1) data.maybe = null;
    else data.maybe = `m${i}`;
    if (i % 7 === 3) delete data.flag;
    // Keys and types the first shard never showed: they must survive through data._extra.
    if (i >= 12) data.late = { arrived: i };
    if (i === 13) data.n = "thirteen";
    return {
      id: `row-${i}`,
      data,
      provenance: {
        origin: i === 0 ? "human" : "synthetic",
        source: "fixture",
        parents: i === 0 ? [] : [`row-${i - 1}`, `seed-${i}`],
        depth: i % 3,
        steps:
          i % 4 === 0
            ? []
            : [
                {
                  op: "selfInstruct",
                  version: "2",
                  at: AT + i,
                  params: "abc123",
                  model: "sim-1",
                  promptHash: "ph" + i,
                  promptTokens: 100 + i,
                  completionTokens: 50 + i,
                  latencyMs: 12.25 + i,
                  note: "évolution: deepen",
                  ...(i % 2 === 1 ? { reasoning: "Let me think: <think> tags and {\"draft\": true} stay here." } : {}),
                },
                { op: "heuristics", version: "1", at: AT + 1000 + i },
              ],
      },
      scores: i % 6 === 5 ? {} : { quality: i / 10, length: TEXTS[i % TEXTS.length]!.length },
    };
  });
}

export function rejectRows(count: number): RejectRow[] {
  return sampleRows(count).map((sample, i) => ({
    ...sample,
    id: `reject-${i}`,
    reject: {
      operator: i % 2 === 0 ? "repetitionFilter" : "nearDedup",
      reason: i % 2 === 0 ? "dup_line_frac" : "near_duplicate",
      ...(i % 2 === 0 ? { value: 0.41 + i, threshold: 0.3 } : { duplicateOf: `row-${i}` }),
      ...(i % 3 === 0 ? { message: "über limit", raw: "raw answer ✓" } : {}),
      at: AT + 5000 + i,
    },
  }));
}

/** A row as JSON would carry it: what a reader should give back for every format. */
export function plain(rows: readonly OutputRow[]): unknown[] {
  return JSON.parse(JSON.stringify(rows)) as unknown[];
}
