import { describe, expect, it } from "vitest";
import { buildGraph } from "../../src/index.ts";
import definition, { defaults, keyFacts } from "../../graphs/template-records.ts";
import { useGraphRuns } from "../support/graph-run.ts";

const { runGraph } = useGraphRuns();

const COLUMNS = {
  patient_note: ["kind", "patient_id", "name", "age", "sex", "visit_date", "department", "chief_complaint", "history", "bp_systolic", "bp_diastolic", "heart_rate", "temperature_c", "diagnosis", "medication", "dosage", "plan", "text"],
  transaction: ["kind", "transaction_id", "timestamp", "customer", "account", "merchant", "category", "amount", "currency", "method", "country", "status", "is_fraud", "text"],
  invoice: ["kind", "invoice_number", "issue_date", "due_date", "vendor", "vendor_address", "customer", "customer_email", "currency", "line_items", "subtotal", "tax_rate", "tax", "total", "text"],
} as const;

describe("graphs/template-records", () => {
  it.each(Object.entries(COLUMNS))("writes %s records with the documented columns and no LLM", async (kind, columns) => {
    // No OPENAI_BASE_URL and no simulator: rewrite is off, so nothing but Faker runs.
    const { summary, rows, rejects } = await runGraph(definition, { count: 25, kind: kind as typeof defaults.kind });
    expect(summary.accepted).toBe(25);
    expect(rejects).toEqual([]);
    const data = rows[0]!.data as Record<string, unknown>;
    expect(Object.keys(data).filter((key) => key !== "_extra")).toEqual(columns);
    expect(rows[0]!.provenance).toMatchObject({ origin: "template", source: kind, depth: 0, parents: [], steps: [] });
    expect(new Set(rows.map((row) => row.id)).size).toBe(25);
  });

  it("keeps invoice arithmetic consistent: line amounts, subtotal, tax and total add up", async () => {
    const { rows } = await runGraph(definition, { count: 40, kind: "invoice" });
    for (const row of rows) {
      const data = row.data as Record<string, unknown>;
      const items = JSON.parse(data.line_items as string) as { quantity: number; unit_price: number; amount: number }[];
      for (const item of items) expect(item.amount).toBeCloseTo(item.quantity * item.unit_price, 2);
      expect(data.subtotal).toBeCloseTo(items.reduce((sum, item) => sum + item.amount, 0), 2);
      expect(data.total).toBeCloseTo((data.subtotal as number) + (data.tax as number), 2);
      expect(data.text).toContain(`total ${data.total}`);
    }
  });

  it("gives the same records for the same seed and different ones for another", async () => {
    const first = await runGraph(definition, { count: 10, kind: "transaction", seed: 7 });
    const again = await runGraph(definition, { count: 10, kind: "transaction", seed: 7 });
    const other = await runGraph(definition, { count: 10, kind: "transaction", seed: 8 });
    const texts = (result: typeof first) => result.rows.map((row) => (row.data as { text: string }).text);
    expect(texts(again)).toEqual(texts(first));
    expect(texts(other)).not.toEqual(texts(first));
  });

  it("rewrites records into prose with the simulator, scoring the key values kept", async () => {
    const { rows } = await runGraph(definition, { count: 6, kind: "patient_note", rewrite: true });
    expect(rows).toHaveLength(6);
    const row = rows[0]!;
    const data = row.data as Record<string, unknown>;
    expect(typeof data.rewritten).toBe("string");
    expect((data.rewritten as string).length).toBeGreaterThan(20);
    expect(row.provenance).toMatchObject({ origin: "synthetic", depth: 1, parents: [expect.stringMatching(/^patient_note:patient_note-\d+$/)] });
    const steps = (row.provenance as { steps: { op: string; model: string | null }[] }).steps;
    expect(steps.map((step) => step.op)).toEqual(["rewrite"]);
    expect(steps[0]!.model).toBe("rxsynth-sim");
    const facts = keyFacts(data);
    const kept = facts.filter((fact) => (data.rewritten as string).includes(fact)).length / facts.length;
    expect((row.scores as Record<string, number>).facts_kept).toBe(kept);
  });

  it("drops rewrites that lose key values when minFactsKept asks for them", async () => {
    // The simulator's placeholder prose keeps none of the record's values.
    const { rows, rejects } = await runGraph(definition, { count: 4, kind: "invoice", rewrite: true, minFactsKept: 0.8 });
    expect(rows).toEqual([]);
    expect(rejects.map((row) => (row.reject as { reason: string }).reason)).toEqual(["facts_lost", "facts_lost", "facts_lost", "facts_lost"]);
  });

  it("refuses an unknown kind", async () => {
    await expect(buildGraph(definition, { kind: "payroll" as typeof defaults.kind })).rejects.toThrow(/kind must be one of/);
  });
});
