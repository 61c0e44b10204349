// Template records: privacy-safe structured records (patient notes, card transactions, invoices) built
// from @faker-js/faker templates with a seed, so no real person's data is ever involved, and each record
// is also rendered as text. Optionally an LLM rewrites the rendering into natural prose (`rewrite: true`),
// the "template, then paraphrase" recipe used for PII-free synthetic corpora; by default no LLM is used
// and the graph runs with no simulator and no endpoint.
//
// Output columns (data), by `kind`:
//   patient_note: patient_id, name, age, sex, visit_date, department, chief_complaint, history,
//                 bp_systolic, bp_diastolic, heart_rate, temperature_c, diagnosis, medication, dosage, plan
//   transaction:  transaction_id, timestamp, customer, account, merchant, category, amount, currency,
//                 method, country, status, is_fraud
//   invoice:      invoice_number, issue_date, due_date, vendor, vendor_address, customer, customer_email,
//                 currency, line_items (JSON list of {description, quantity, unit_price, amount}),
//                 subtotal, tax_rate, tax, total
//   every kind:   kind, text (the template rendering); with rewrite: rewritten (the LLM's prose)
// Scores (with rewrite): facts_kept, the fraction of the record's key values found verbatim in `rewritten`.
//
//   rxsynth run graphs/template-records.ts --set kind=transaction --set count=5000 --out out/transactions
//   rxsynth run graphs/template-records.ts --set rewrite=true --set count=200 --out out/notes
import type { Faker } from "@faker-js/faker";
import { ConfigError, defineFilter, defineGraph, type Operator, type Sample, type SampleData } from "../src/index.ts";
import { generate } from "../operators/generate/generate.ts";
import { templateSource } from "../operators/generate/template-records.ts";
import { openEndpoint } from "./lib/endpoint.ts";

export const defaults = {
  /** Records to generate. */
  count: 1000,
  /** Same seed, same records. */
  seed: 42,
  /** "patient_note", "transaction" or "invoice". */
  kind: "patient_note" as RecordKind,
  /** Ask an LLM to rewrite each rendering as natural prose (needs OPENAI_BASE_URL, else the simulator). */
  rewrite: false,
  /** Model for the rewrite on a real endpoint; default RXSYNTH_MODEL, else gpt-4o-mini. */
  model: "",
  /** Price per 1M tokens over the built-in table: "input=<usd>,output=<usd>[,cached=<usd>]" or JSON by model; "" = the table. RXSYNTH_PRICE wins. */
  price: "",
  temperature: 0.7,
  /** With rewrite: drop rewrites that keep fewer than this fraction of the key values (0 keeps all, scored). */
  minFactsKept: 0,
};

export type RecordKind = "patient_note" | "transaction" | "invoice";
const KINDS: readonly RecordKind[] = ["patient_note", "transaction", "invoice"];

const round2 = (value: number) => Math.round(value * 100) / 100;
const isoDate = (date: Date) => date.toISOString().slice(0, 10);

// Fictional but coherent clinical pictures: a complaint goes with its diagnosis, drug and follow-up.
const CONDITIONS = [
  { department: "General Practice", complaint: "sore throat and fever for three days", diagnosis: "acute streptococcal pharyngitis", medication: "amoxicillin", dosage: "500 mg three times daily for 10 days", plan: "rest, fluids, review if no improvement in 72 hours", fever: true },
  { department: "General Practice", complaint: "persistent dry cough", diagnosis: "post-viral cough", medication: "dextromethorphan", dosage: "15 mg every 6 hours as needed", plan: "reassess in two weeks; chest X-ray if persisting", fever: false },
  { department: "Cardiology", complaint: "palpitations on exertion", diagnosis: "paroxysmal atrial fibrillation", medication: "bisoprolol", dosage: "2.5 mg once daily", plan: "24-hour Holter monitor and echocardiogram", fever: false },
  { department: "Cardiology", complaint: "headaches and elevated home blood pressure readings", diagnosis: "essential hypertension", medication: "amlodipine", dosage: "5 mg once daily", plan: "home BP diary, low-salt diet, review in 4 weeks", fever: false },
  { department: "Endocrinology", complaint: "increased thirst and frequent urination", diagnosis: "type 2 diabetes mellitus", medication: "metformin", dosage: "500 mg twice daily with meals", plan: "HbA1c in 3 months, dietitian referral", fever: false },
  { department: "Orthopedics", complaint: "right knee pain after a fall", diagnosis: "medial collateral ligament sprain", medication: "ibuprofen", dosage: "400 mg every 8 hours with food", plan: "knee brace, physiotherapy, follow-up in 3 weeks", fever: false },
  { department: "Dermatology", complaint: "itchy red rash on both forearms", diagnosis: "contact dermatitis", medication: "hydrocortisone 1% cream", dosage: "apply twice daily for 7 days", plan: "avoid the suspected irritant; patch testing if recurrent", fever: false },
  { department: "Pulmonology", complaint: "wheezing and shortness of breath at night", diagnosis: "mild persistent asthma", medication: "budesonide inhaler", dosage: "200 mcg twice daily", plan: "inhaler technique review, peak-flow diary", fever: false },
  { department: "Urology", complaint: "burning on urination and lower abdominal pain", diagnosis: "uncomplicated urinary tract infection", medication: "nitrofurantoin", dosage: "100 mg twice daily for 5 days", plan: "urine culture; return if fever or flank pain", fever: true },
  { department: "Neurology", complaint: "recurrent one-sided throbbing headaches", diagnosis: "migraine without aura", medication: "sumatriptan", dosage: "50 mg at onset, may repeat once after 2 hours", plan: "headache diary, trigger avoidance", fever: false },
] as const;

const CATEGORIES = [
  { category: "groceries", min: 5, max: 180 },
  { category: "restaurants", min: 8, max: 140 },
  { category: "travel", min: 40, max: 1800 },
  { category: "electronics", min: 20, max: 2500 },
  { category: "utilities", min: 30, max: 300 },
  { category: "fuel", min: 15, max: 120 },
  { category: "subscriptions", min: 3, max: 60 },
] as const;

function patientNote(f: Faker, refDate: Date): SampleData {
  const condition = f.helpers.arrayElement(CONDITIONS);
  const sex = f.helpers.arrayElement(["female", "male"] as const);
  const age = f.number.int({ min: 18, max: 90 });
  const visit = f.date.recent({ days: 365, refDate });
  const onset = f.helpers.arrayElement(["two days", "a week", "three weeks", "a month"]);
  const background = f.helpers.arrayElement(["No known drug allergies.", "Allergic to penicillin.", "No known drug allergies; non-smoker.", "Ex-smoker, 10 pack-years."]);
  // A penicillin-allergic patient never gets amoxicillin: the template keeps each record clinically coherent.
  const swap = background.includes("penicillin") && condition.medication === "amoxicillin";
  return {
    kind: "patient_note",
    patient_id: `P-${f.string.numeric(6)}`,
    name: `${f.person.firstName(sex)} ${f.person.lastName()}`,
    age,
    sex,
    visit_date: isoDate(visit),
    department: condition.department,
    chief_complaint: condition.complaint,
    history: `Symptoms began ${onset} ago. ${background}`,
    bp_systolic: f.number.int({ min: 105, max: condition.diagnosis === "essential hypertension" ? 170 : 140 }),
    bp_diastolic: f.number.int({ min: 65, max: 95 }),
    heart_rate: f.number.int({ min: 58, max: condition.diagnosis.includes("fibrillation") ? 130 : 100 }),
    temperature_c: round2(condition.fever ? f.number.float({ min: 38.0, max: 39.4 }) : f.number.float({ min: 36.3, max: 37.2 })),
    diagnosis: condition.diagnosis,
    medication: swap ? "azithromycin" : condition.medication,
    dosage: swap ? "500 mg once daily for 3 days" : condition.dosage,
    plan: condition.plan,
  };
}

// Faker's country codes live in its "base" locale, which templateSource does not load.
const FOREIGN = ["GB", "DE", "FR", "BR", "NG", "IN", "JP", "MX", "RO", "VN"];

function transaction(f: Faker, refDate: Date): SampleData {
  const spend = f.helpers.arrayElement(CATEGORIES);
  const amount = round2(f.number.float({ min: spend.min, max: spend.max }));
  const country = f.helpers.weightedArrayElement([
    { weight: 9, value: "US" },
    { weight: 1, value: f.helpers.arrayElement(FOREIGN) },
  ]);
  // A simple, visible fraud pattern (large foreign card-not-present spend at night) so labels are learnable.
  const at = f.date.recent({ days: 90, refDate });
  const method = f.helpers.arrayElement(["card_present", "card_not_present", "bank_transfer", "mobile_wallet"] as const);
  const night = at.getUTCHours() < 5;
  const isFraud = country !== "US" && method === "card_not_present" && amount > spend.max * 0.5 && night;
  return {
    kind: "transaction",
    transaction_id: f.string.uuid(),
    timestamp: at.toISOString(),
    customer: f.person.fullName(),
    account: `****${f.string.numeric(4)}`,
    merchant: f.company.name(),
    category: spend.category,
    amount,
    currency: "USD",
    method,
    country,
    status: isFraud ? "declined" : f.helpers.weightedArrayElement([
      { weight: 18, value: "completed" },
      { weight: 1, value: "pending" },
      { weight: 1, value: "declined" },
    ]),
    is_fraud: isFraud,
  };
}

function invoice(f: Faker, refDate: Date): SampleData {
  const issued = f.date.recent({ days: 180, refDate });
  const due = new Date(issued.getTime() + f.helpers.arrayElement([14, 30, 45]) * 86_400_000);
  const lineItems = Array.from({ length: f.number.int({ min: 1, max: 5 }) }, () => {
    const quantity = f.number.int({ min: 1, max: 12 });
    const unitPrice = round2(f.number.float({ min: 2, max: 400 }));
    return { description: f.commerce.productName(), quantity, unit_price: unitPrice, amount: round2(quantity * unitPrice) };
  });
  const subtotal = round2(lineItems.reduce((sum, item) => sum + item.amount, 0));
  const taxRate = f.helpers.arrayElement([0, 0.05, 0.1, 0.2]);
  const tax = round2(subtotal * taxRate);
  const customer = f.company.name();
  return {
    kind: "invoice",
    invoice_number: `INV-${f.string.numeric(4)}-${f.string.numeric(5)}`,
    issue_date: isoDate(issued),
    due_date: isoDate(due),
    vendor: f.company.name(),
    vendor_address: `${f.location.streetAddress()}, ${f.location.city()}`,
    customer,
    customer_email: f.internet.email({ provider: "example.com" }).toLowerCase(),
    currency: f.helpers.arrayElement(["USD", "EUR", "GBP"]),
    line_items: lineItems,
    subtotal,
    tax_rate: taxRate,
    tax,
    total: round2(subtotal + tax),
  };
}

/** The record as plain text: what a reader (or the rewrite prompt) sees. */
export function renderRecord(data: SampleData): string {
  const d = data as Record<string, never>;
  switch (data.kind) {
    case "patient_note":
      return [
        `Patient ${d.patient_id} (${d.name}, ${d.age}-year-old ${d.sex}) seen on ${d.visit_date} in ${d.department}.`,
        `Chief complaint: ${d.chief_complaint}. ${d.history}`,
        `Vitals: BP ${d.bp_systolic}/${d.bp_diastolic} mmHg, HR ${d.heart_rate} bpm, T ${d.temperature_c} °C.`,
        `Assessment: ${d.diagnosis}. Prescribed ${d.medication}, ${d.dosage}. Plan: ${d.plan}.`,
      ].join("\n");
    case "transaction":
      return `${d.timestamp}: ${d.customer} (account ${d.account}) paid ${d.amount} ${d.currency} to ${d.merchant} [${d.category}] by ${String(d.method).replace(/_/g, " ")} from ${d.country}; status ${d.status}${d.is_fraud ? " (flagged as fraud)" : ""}.`;
    case "invoice": {
      const items = (data.line_items as { description: string; quantity: number; unit_price: number; amount: number }[])
        .map((item) => `  - ${item.quantity} x ${item.description} @ ${item.unit_price} = ${item.amount}`)
        .join("\n");
      return [
        `Invoice ${d.invoice_number} from ${d.vendor} (${d.vendor_address}) to ${d.customer} <${d.customer_email}>.`,
        `Issued ${d.issue_date}, due ${d.due_date}. Amounts in ${d.currency}:`,
        items,
        `Subtotal ${d.subtotal}; tax ${Math.round(Number(d.tax_rate) * 100)}% = ${d.tax}; total ${d.total}.`,
      ].join("\n");
    }
    default:
      return JSON.stringify(data);
  }
}

/** Values a faithful rewrite must keep verbatim (ids, names, amounts, dates). */
export function keyFacts(data: SampleData): string[] {
  const d = data as Record<string, unknown>;
  const facts =
    data.kind === "patient_note"
      ? [d.patient_id, d.name, d.visit_date, d.diagnosis, d.medication]
      : data.kind === "transaction"
        ? [d.customer, d.merchant, d.amount, d.account]
        : [d.invoice_number, d.vendor, d.customer, d.total, d.due_date];
  return facts.map(String);
}

const STYLE: Record<RecordKind, string> = {
  patient_note: "a clinician's free-text visit note in full sentences",
  transaction: "the notification message a bank app would send the customer about this payment",
  invoice: "a short, polite email from the vendor sending this invoice",
};

function rewritePrompt(sample: Sample) {
  const kind = sample.data.kind as RecordKind;
  return [
    {
      role: "system" as const,
      content: "You turn structured records into natural text. Every name, number, code and date must be copied exactly; never add facts.",
    },
    {
      role: "user" as const,
      content: `Rewrite this record as ${STYLE[kind]}. Keep every value exactly as written.\n\n${sample.data.text as string}`,
    },
  ];
}

export default defineGraph({
  name: "template-records",
  description: "Faker patient notes, transactions or invoices (seeded, privacy-safe, no LLM), optionally rewritten into prose by an LLM",
  defaults,
  async build(options, env) {
    const kind = options.kind;
    if (!KINDS.includes(kind)) throw new ConfigError(`template-records: kind must be one of ${KINDS.join(", ")}, got "${kind}"`);
    const make = kind === "patient_note" ? patientNote : kind === "transaction" ? transaction : invoice;
    const source = templateSource({
      name: kind,
      count: options.count,
      seed: options.seed,
      record(f, _position, refDate) {
        const data = make(f, refDate);
        return { ...data, text: renderRecord(data) };
      },
    });
    // Each record is seeded by its position and judged alone: chunks of it run on any number of workers.
    if (!options.rewrite) return { sources: [source], operators: [], chunkable: true };

    const endpoint = await openEndpoint(env, { model: options.model || undefined, seed: options.seed, price: options.price });
    const operators: Operator[] = [
      generate({ llm: endpoint.llm, name: "rewrite", prompt: rewritePrompt, write: "rewritten", temperature: options.temperature, seed: options.seed }),
      defineFilter({
        name: "facts_kept",
        params: { minFactsKept: options.minFactsKept },
        reads: ["rewritten"],
        test(sample) {
          const facts = keyFacts(sample.data);
          const text = String(sample.data.rewritten);
          const kept = facts.filter((fact) => text.includes(fact)).length / facts.length;
          if (kept < options.minFactsKept) {
            return { keep: false, reason: "facts_lost", value: kept, threshold: options.minFactsKept, message: `kept ${Math.round(kept * facts.length)} of ${facts.length} key values` };
          }
          return { keep: true, scores: { facts_kept: kept } };
        },
      }),
    ];
    return { sources: [source], operators, dispose: endpoint.dispose, chunkable: true };
  },
});
