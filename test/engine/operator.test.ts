import { describe, expect, it } from "vitest";
import { Subject } from "rxjs";
import {
  buildGraph,
  childSampleId,
  collect,
  ConfigError,
  createSample,
  defineGraph,
  defineAsyncFilter,
  defineAsyncMap,
  defineFanOut,
  defineFilter,
  defineMap,
  defineTap,
  drop,
  extendGraph,
  memoryRunContext,
  memorySource,
  MemorySink,
  run,
  withRunContext,
  type Operator,
  type Sample,
} from "../../src/index.ts";

const samples = (count: number): Sample[] =>
  Array.from({ length: count }, (_, i) => createSample({ id: `s${i}`, source: "test", data: { text: `text ${i}`, n: i } }));

describe("defineFilter", () => {
  it("keeps samples on true and rejects the rest with the verdict's reason, value and threshold", async () => {
    const short = defineFilter({ name: "min_n", test: (s) => ((s.data.n as number) >= 2 ? true : drop("too_small", { value: s.data.n as number, threshold: 2 })) });
    const { out, rejects } = await collect(short, samples(4));
    expect(out.map((s) => s.id)).toEqual(["s2", "s3"]);
    expect(rejects.map((r) => [r.sample.id, r.operator, r.reason, r.value, r.threshold])).toEqual([
      ["s0", "min_n", "too_small", 0, 2],
      ["s1", "min_n", "too_small", 1, 2],
    ]);
  });

  it("merges the scores of a keep verdict into the sample", async () => {
    const scored = defineFilter({ name: "score", test: (s) => ({ keep: true, scores: { length: String(s.data.text).length } }) });
    const { out } = await collect(scored, samples(1));
    expect(out[0]!.scores).toEqual({ length: 6 });
  });

  it("turns a thrown error into a reject with reason error and the message, and the run goes on", async () => {
    const flaky = defineFilter({
      name: "flaky",
      test: (s) => {
        if (s.id === "s1") throw new Error("cannot judge s1");
        return true;
      },
    });
    const { out, rejects } = await collect(flaky, samples(3));
    expect(out.map((s) => s.id)).toEqual(["s0", "s2"]);
    expect(rejects).toHaveLength(1);
    expect(rejects[0]).toMatchObject({ operator: "flaky", reason: "error", message: "cannot judge s1" });
  });

  it("fails the run on an error when fail-fast is set", async () => {
    const flaky = defineFilter({ name: "flaky", test: () => { throw new Error("boom"); } });
    await expect(collect(flaky, samples(2), { failFast: true })).rejects.toThrow("boom");
  });

  it("keeps per-run state inside the subscription, so a graph can run twice", async () => {
    const firstOnly = defineFilter({
      name: "first_only",
      state: () => ({ seen: 0 }),
      test: (_s, state) => (++state.seen === 1 ? true : drop("not_first")),
    });
    const first = await collect(firstOnly, samples(3));
    const second = await collect(firstOnly, samples(3));
    expect(first.out).toHaveLength(1);
    expect(second.out).toHaveLength(1);
  });
});

describe("defineMap", () => {
  it("stamps a step with operator, version, params hash and time when it changes data", async () => {
    const upper = defineMap({ name: "upper", version: "2", params: { mode: "upper" }, map: (s) => ({ data: { ...s.data, text: String(s.data.text).toUpperCase() } }) });
    const input = samples(1);
    const { out } = await collect(upper, input);
    expect(out[0]!.data.text).toBe("TEXT 0");
    expect(out[0]!.id).toBe("s0");
    const step = out[0]!.provenance.steps.at(-1)!;
    expect(step).toMatchObject({ op: "upper", version: "2" });
    expect(step.params).toMatch(/^[0-9a-f]{16}$/);
    expect(step.at).toBeGreaterThan(Date.now() - 60_000);
    expect(input[0]!.data.text).toBe("text 0");
    expect(input[0]!.provenance.steps).toHaveLength(0);
  });

  it("changes nothing and stamps nothing when the patch is empty", async () => {
    const noop = defineMap({ name: "noop", map: () => ({}) });
    const { out } = await collect(noop, samples(1));
    expect(out[0]!.provenance.steps).toHaveLength(0);
  });
});

describe("defineAsyncMap", () => {
  it("gives each answer to its own sample when answers and errors come back out of order", async () => {
    // Answers in a scrambled order, some failing: each must land on the sample it was asked for.
    const delay = (n: number) => ((n * 7) % 5) * 2;
    const scrambled = defineAsyncMap({
      name: "scrambled",
      concurrency: 4,
      map: async (s) => {
        const n = s.data.n as number;
        await new Promise((resolve) => setTimeout(resolve, delay(n)));
        if (n % 3 === 2) throw new Error(`no answer for ${s.id}`);
        return { data: { ...s.data, answer: `for ${s.id}` } };
      },
    });
    const { out, rejects } = await collect(scrambled, samples(24));
    expect(out.length + rejects.length).toBe(24);
    for (const sample of out) expect(sample.data.answer).toBe(`for ${sample.id}`);
    for (const reject of rejects) expect(reject.message).toBe(`no answer for ${reject.sample.id}`);
    expect(rejects.map((r) => r.sample.id).sort()).toEqual(samples(24).filter((s) => (s.data.n as number) % 3 === 2).map((s) => s.id).sort());
  });

  it("never runs more than its concurrency at once", async () => {
    let running = 0;
    let peak = 0;
    const slow = defineAsyncMap({
      name: "slow",
      concurrency: 3,
      map: async () => {
        running++;
        peak = Math.max(peak, running);
        await new Promise((resolve) => setTimeout(resolve, 2));
        running--;
        return {};
      },
    });
    const { out } = await collect(slow, samples(20));
    expect(out).toHaveLength(20);
    expect(peak).toBe(3);
  });

  it("rejects a sample whose promise rejects, with reason error", async () => {
    const failing = defineAsyncMap({ name: "failing", map: async (s) => { if (s.id === "s0") throw new Error("upstream 500"); return { scores: { ok: 1 } }; } });
    const { out, rejects } = await collect(failing, samples(2));
    expect(out.map((s) => s.scores)).toEqual([{ ok: 1 }]);
    expect(rejects[0]).toMatchObject({ reason: "error", message: "upstream 500", operator: "failing" });
  });

  it("aborts in-flight work when the subscriber unsubscribes", async () => {
    let aborted = 0;
    const hanging = defineAsyncMap({
      name: "hanging",
      map: (_s, _state, _ctx, signal) =>
        new Promise((_resolve, reject) => {
          signal.addEventListener("abort", () => {
            aborted++;
            reject(new Error("aborted"));
          });
        }),
    });
    const context = memoryRunContext();
    const input = new Subject<Sample>();
    const subscription = withRunContext(context, () => input.pipe(hanging).subscribe());
    for (const sample of samples(2)) input.next(sample);
    subscription.unsubscribe();
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(aborted).toBe(2);
    expect(context.rejects).toHaveLength(0);
  });
});

describe("defineAsyncFilter", () => {
  it("awaits the verdict", async () => {
    const judge = defineAsyncFilter({ name: "judge", test: async (s) => ((s.data.n as number) % 2 === 0 ? true : drop("odd")) });
    const { out, rejects } = await collect(judge, samples(4));
    expect(out.map((s) => s.id).sort()).toEqual(["s0", "s2"]);
    expect(rejects.map((r) => r.reason)).toEqual(["odd", "odd"]);
  });
});

describe("defineFanOut", () => {
  it("gives each child an id from parent, operator and index, the parent in parents, and depth + 1", async () => {
    const twice = defineFanOut({ name: "twice", expand: (s) => [{ data: { ...s.data, copy: 0 } }, { data: { ...s.data, copy: 1 } }] });
    const { out } = await collect(twice, samples(1));
    expect(out.map((s) => s.id)).toEqual([childSampleId("s0", "twice", 0), childSampleId("s0", "twice", 1)]);
    expect(new Set(out.map((s) => s.id)).size).toBe(2);
    for (const child of out) {
      expect(child.provenance).toMatchObject({ origin: "synthetic", parents: ["s0"], depth: 1, source: "test" });
      expect(child.provenance.steps.at(-1)!.op).toBe("twice");
    }
  });

  it("gives the same ids on every run", async () => {
    const twice = defineFanOut({ name: "twice", expand: async (s) => [{ data: s.data }, { data: s.data }] });
    const a = await collect(twice, samples(3));
    const b = await collect(twice, samples(3));
    expect(a.out.map((s) => s.id).sort()).toEqual(b.out.map((s) => s.id).sort());
  });

  it("keeps the generation for a same-generation split (chunking)", async () => {
    const chunks = defineFanOut({ name: "chunks", expand: (s) => [{ data: s.data, generation: "same" as const }] });
    const { out } = await collect(chunks, samples(1));
    expect(out[0]!.provenance).toMatchObject({ origin: "human", depth: 0 });
  });

  it("sends dropped children to rejects under the id they would have had, and an empty expansion as no_output", async () => {
    const mixed = defineFanOut({
      name: "mixed",
      expand: (s) => (s.id === "s0" ? [{ data: s.data }, drop("truncated", { raw: "half an ans" })] : []),
    });
    const { out, rejects } = await collect(mixed, samples(2));
    expect(out).toHaveLength(1);
    expect(rejects.map((r) => [r.sample.id, r.reason, r.raw])).toEqual([
      [childSampleId("s0", "mixed", 1), "truncated", "half an ans"],
      ["s1", "no_output", undefined],
    ]);
  });
});

describe("defineTap", () => {
  it("observes every sample and runs its completion once at the end", async () => {
    const seen: string[] = [];
    let completed = 0;
    const tap = defineTap({ name: "watch", observe: (s) => void seen.push(s.id), complete: () => void completed++ });
    const { out } = await collect(tap, samples(3));
    expect(out).toHaveLength(3);
    expect(seen).toEqual(["s0", "s1", "s2"]);
    expect(completed).toBe(1);
  });
});

describe("operators outside a run", () => {
  it("explain that they need a run or collect()", () => {
    const op = defineFilter({ name: "lonely", test: () => true });
    const input = new Subject<Sample>();
    let caught: unknown;
    input.pipe(op).subscribe({ error: (error: unknown) => (caught = error) });
    expect(String(caught)).toMatch(/outside a run.*collect\(\)/);
  });
});

describe("declared reads", () => {
  const missingQuestion =
    'operator "asks" reads field "question", but samples reaching it have: text, n (read one of those, or insert the operator after one that writes "question")';

  it("fail the run with one ConfigError naming the operator, the field and the fields samples have", async () => {
    let tested = 0;
    const asks = defineFilter({ name: "asks", reads: ["text", "question"], test: () => (tested++, true) });
    const collected = collect(asks, samples(3));
    await expect(collected).rejects.toBeInstanceOf(ConfigError);
    await expect(collected).rejects.toThrow(missingQuestion);
    expect(tested).toBe(0);
  });

  it("fail the run whatever the error policy: a wrong field is the graph's mistake, not one sample's", async () => {
    const asks = defineFilter({ name: "asks", reads: ["question"], failFast: false, test: () => true });
    await expect(collect(asks, samples(2), { failFast: false })).rejects.toThrow(missingQuestion);
  });

  it("are checked by every helper", async () => {
    const wants = { reads: ["question"] } as const;
    const operators: Operator[] = [
      defineMap({ name: "asks", ...wants, map: () => ({}) }),
      defineAsyncMap({ name: "asks", ...wants, map: async () => ({}) }),
      defineAsyncFilter({ name: "asks", ...wants, test: async () => true }),
      defineFanOut({ name: "asks", ...wants, expand: (s) => [{ data: s.data }] }),
      defineTap({ name: "asks", ...wants, observe: () => {} }),
    ];
    for (const operator of operators) await expect(collect(operator, samples(2))).rejects.toThrow(missingQuestion);
  });

  it("pass when the sample has the field, and count a null value as present", async () => {
    const reads = defineFilter({ name: "reads", reads: ["text", "note"], test: () => true });
    const withNull = samples(2).map((s) => createSample({ id: s.id, source: "test", data: { ...s.data, note: null } }));
    const { out, rejects } = await collect(reads, withNull);
    expect(out.map((s) => s.id)).toEqual(["s0", "s1"]);
    expect(rejects).toEqual([]);
  });

  it("count a field set to undefined as missing", async () => {
    const reads = defineFilter({ name: "asks", reads: ["question"], test: () => true });
    const input = [createSample({ id: "u", source: "test", data: { text: "x", n: 1, question: undefined } })];
    await expect(collect(reads, input)).rejects.toThrow(missingQuestion);
  });

  it("are checked on the first sample only: a later sample without the field is the operator's to handle", async () => {
    const seen: string[] = [];
    const reads = defineFilter({
      name: "reads",
      reads: ["text"],
      test: (s) => (seen.push(s.id), typeof s.data.text === "string" ? true : drop("no_text")),
    });
    const input = [samples(1)[0]!, createSample({ id: "bare", source: "test", data: {} })];
    const { out, rejects } = await collect(reads, input);
    expect(out.map((s) => s.id)).toEqual(["s0"]);
    expect(rejects.map((r) => [r.sample.id, r.reason])).toEqual([["bare", "no_text"]]);
    expect(seen).toEqual(["s0", "bare"]);
  });

  it("stop a filter inserted with extendGraph at the first sample instead of rejecting every sample", async () => {
    const accepted = new MemorySink();
    const rejected = new MemorySink();
    // memorySource declares no fields, so the graph's build cannot check reads: the run does.
    const base = defineGraph({
      name: "qa",
      description: "instruction/output rows",
      defaults: {},
      build: () => ({
        sources: [memorySource("rows", Array.from({ length: 50 }, (_, i) => ({ instruction: `say ${i}`, output: `said ${i}` })))],
        operators: [defineMap({ name: "tidy", reads: ["output"], map: (s) => ({ data: { ...s.data, output: String(s.data.output).trim() } }) })],
        sinks: { accepted: [accepted], rejects: rejected },
      }),
    });
    let tested = 0;
    const echo = defineFilter({
      name: "not_an_echo",
      reads: ["question", "answer"],
      test: (s) => (tested++, String(s.data.answer) === String(s.data.question) ? drop("echoes_question") : true),
    });
    const graph = await buildGraph(extendGraph(base, { insert: [{ after: "tidy", operators: [echo] }] }));
    const running = run(graph);
    await expect(running).rejects.toBeInstanceOf(ConfigError);
    await expect(running).rejects.toThrow('operator "not_an_echo" reads field "question", but samples reaching it have: instruction, output');
    expect(tested).toBe(0);
    expect(rejected.rows).toEqual([]);
    expect(accepted.rows).toEqual([]);
  });
});
