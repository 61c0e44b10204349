// Building blocks of the Self-Instruct graphs (Wang et al. 2022, "Self-Instruct: Aligning Language Models
// with Self-Generated Instructions"): the bootstrapping loop, its prompts and parsers, the per-step
// operators, and the whole pipeline that graphs/self-instruct.ts and graphs/quickstart.ts both run.
// The prompts are ours; the procedure is the paper's.
import { existsSync, readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import {
  ConfigError,
  InputError,
  defineAsyncMap,
  defineFanOut,
  defineFilter,
  defineMap,
  drop,
  resolveDataPath,
  type Child,
  type DropVerdict,
  type GraphEnvironment,
  type Metrics,
  type Operator,
  type RunContext,
  type Source,
  type SourceItem,
} from "../../src/index.ts";
import type { ChatMessage } from "../../src/llm/index.ts";
import { exactDedup } from "../../operators/dedup/exact-dedup.ts";
import { nearDedup } from "../../operators/dedup/near-dedup.ts";
import { statePath, writeStateAtomic } from "../../operators/dedup/state-file.ts";
import { diversityTracker } from "../../operators/diversity/diversity-tracker.ts";
import { RougePool } from "../../operators/diversity/rouge-filter.ts";
import { heuristicFilter } from "../../operators/filter/heuristics.ts";
import { instructionPreset } from "../../operators/filter/presets.ts";
import { refusalFilter } from "../../operators/filter/refusal.ts";
import { generate } from "../../operators/generate/generate.ts";
import { asker } from "../../operators/generate/llm-map.ts";
import { openEndpoint } from "./endpoint.ts";
import { pickDistinct, seededRng, text, without } from "./llm-steps.ts";

/** One of the 175 human-written seed tasks (the paper's seed_tasks.jsonl format). */
export interface SeedTask {
  readonly id: string;
  readonly instruction: string;
  readonly instances: readonly { readonly input: string; readonly output: string }[];
  readonly isClassification: boolean;
}

/**
 * Reads seed tasks from JSONL (a path or `builtin:NAME`, see resolveDataPath): `instruction` required;
 * `instances` and `is_classification` optional.
 */
export async function readSeedTasks(option: string): Promise<SeedTask[]> {
  const path = resolveDataPath(option);
  let body: string;
  try {
    body = await readFile(path, "utf8");
  } catch (error) {
    throw new InputError("seed task file cannot be read", { file: path }, { cause: error });
  }
  const tasks: SeedTask[] = [];
  body.split("\n").forEach((line, index) => {
    if (line.trim().length === 0) return;
    let record: Record<string, unknown>;
    try {
      record = JSON.parse(line) as Record<string, unknown>;
    } catch (error) {
      throw new InputError("invalid JSON", { file: path, line: index + 1 }, { cause: error });
    }
    if (typeof record.instruction !== "string" || record.instruction.trim().length === 0) {
      throw new InputError("a seed task needs a non-empty string `instruction`", { file: path, line: index + 1, field: "instruction" });
    }
    const instances = Array.isArray(record.instances)
      ? record.instances.map((item: { input?: unknown; output?: unknown }) => ({ input: String(item.input ?? ""), output: String(item.output ?? "") }))
      : [];
    tasks.push({
      id: typeof record.id === "string" ? record.id : `seed_task_${tasks.length}`,
      instruction: record.instruction.trim(),
      instances,
      isClassification: record.is_classification === true,
    });
  });
  if (tasks.length === 0) throw new InputError("no seed tasks", { file: path });
  return tasks;
}

// ---------------------------------------------------------------------------------------------------
// The bootstrapping loop

/** What the loop keeps between waves and across a resume. */
interface SavedLoop {
  readonly accepted: number;
  readonly offered: number;
  readonly pool: readonly string[];
}

/**
 * The state of one bootstrapping run: rows accepted so far, the pool of accepted machine instructions
 * that later prompts draw in-context examples from (a reservoir, bounded), and a view of the run's
 * counters to tell when a wave of rounds has gone through the graph. Saved with each checkpoint.
 */
export class BootstrapLoop {
  accepted = 0;
  readonly pool: string[] = [];
  private readonly inPool = new Set<string>();
  private offered = 0;
  private metrics: Metrics | undefined;
  private readonly rng;

  constructor(
    readonly poolLimit: number,
    seed: number,
  ) {
    this.rng = seededRng(seed, "pool");
  }

  /** Restores what a previous run into `out` saved (`<out>/state/<name>.bin`), if anything. */
  restore(out: string | undefined, name: string): void {
    const file = out ? join(out, "state", `${name}.bin`) : undefined;
    if (!file || !existsSync(file)) return;
    const saved = JSON.parse(readFileSync(file, "utf8")) as SavedLoop;
    this.accepted = saved.accepted;
    this.offered = saved.offered;
    for (const instruction of saved.pool) this.addToPool(instruction);
  }

  async save(context: RunContext, name: string): Promise<void> {
    const file = statePath(context, name);
    if (!file) return;
    const saved: SavedLoop = { accepted: this.accepted, offered: this.offered, pool: this.pool };
    await writeStateAtomic(file, new TextEncoder().encode(JSON.stringify(saved)));
  }

  /** Called by the first operator with the run's context, whose counters say when the graph is idle. */
  watch(context: RunContext): void {
    this.metrics = context.metrics;
  }

  /** Offers an accepted instruction to the reservoir of in-context examples. */
  remember(instruction: string): void {
    if (this.inPool.has(instruction)) return;
    this.offered++;
    if (this.pool.length < this.poolLimit) {
      this.addToPool(instruction);
      return;
    }
    const slot = Math.floor(this.rng.next() * this.offered);
    if (slot < this.poolLimit) {
      this.inPool.delete(this.pool[slot]!);
      this.pool[slot] = instruction;
      this.inPool.add(instruction);
    }
  }

  private addToPool(instruction: string): void {
    this.pool.push(instruction);
    this.inPool.add(instruction);
  }

  /**
   * Resolves once no operator holds a sample: every stage reports work in progress or queued as
   * `inFlight` (a queued sample implies a full stage), so all zeros means the wave has left the graph.
   */
  async idle(signal: AbortSignal): Promise<void> {
    while (!signal.aborted && this.metrics?.snapshot().operators.some((operator) => operator.inFlight > 0)) {
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  }
}

export interface RoundSourceOptions {
  readonly name: string;
  /** Stop once this many rows are accepted. */
  readonly target: number;
  /** Never more rounds than this in all. */
  readonly maxRounds: number;
  /** Most rounds in one wave. */
  readonly parallelRounds: number;
  /** Rows one round is expected to yield before any has finished (sizes the first wave). */
  readonly expectedPerRound: number;
  readonly log: (line: string) => void;
}

/**
 * The prompt rounds of the loop, in waves. Each wave is sized to what is still missing at the yield seen
 * so far (at most `parallelRounds`), and the next wave starts only when the previous one has left the
 * graph, so its prompts can draw on the instructions it produced, as the paper's iterations do. The
 * source ends when `target` rows are accepted or `maxRounds` were issued; the last wave may overshoot the
 * target, and the graph's final `target` filter rejects the surplus as `over_target`.
 */
export function roundSource(loop: BootstrapLoop, options: RoundSourceOptions): Source {
  return {
    name: options.name,
    origin: "template",
    fields: ["round"],
    async *batches({ from, signal }) {
      let round = from;
      let issued = 0;
      const acceptedBefore = loop.accepted;
      while (!signal.aborted) {
        await loop.idle(signal);
        const missing = options.target - loop.accepted;
        if (signal.aborted || missing <= 0) return;
        if (round >= options.maxRounds) {
          options.log(`self-instruct: stopped after ${round} rounds (maxRounds) with ${loop.accepted} of ${options.target} rows accepted`);
          return;
        }
        const gained = loop.accepted - acceptedBefore;
        // Until a wave has come back the expected yield is a guess; a zero yield so far means "ask widely".
        const perRound = issued === 0 ? options.expectedPerRound : Math.max(gained / issued, 0.25);
        const wave = Math.max(1, Math.min(options.parallelRounds, options.maxRounds - round, Math.ceil(missing / perRound)));
        const batch: SourceItem[] = [];
        for (let i = 0; i < wave; i++) batch.push({ position: round + i, id: `round-${round + i}`, data: { round: round + i } });
        round += wave;
        issued += wave;
        yield batch;
      }
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// Prompts and parsers

/** Step 1: the instruction-generation prompt, its in-context examples numbered as tasks. */
export function proposalMessages(demos: readonly string[], count: number): ChatMessage[] {
  const examples = demos.map((demo, i) => `Task ${i + 1}: ${demo.replace(/\s+/g, " ").trim()}`).join("\n");
  return [
    {
      role: "user",
      content:
        `Come up with ${count} new task instructions for training a text-only assistant.\n` +
        "Requirements:\n" +
        "- Vary the verbs and the kinds of task: open-ended writing, classification, editing, rewriting, reasoning, advice, extraction, brainstorming.\n" +
        "- Each instruction is one or two sentences in English, self-contained, and something a language model can do with text alone (no images, audio, files or browsing).\n" +
        "- Do not copy or lightly reword the examples.\n\n" +
        `Examples of tasks:\n${examples}\n\n` +
        `Answer with a numbered list of ${count} new instructions, one per line ("1. ..."), and nothing else.`,
    },
  ];
}

const LIST_MARKER = /^\s*(?:(?:task|instruction)\s*)?(?:\d{1,3}\s*[.):-]|[-*•])\s*/i;

/** The instructions of a numbered (or bulleted) list; lines without a marker continue the item before. */
export function parseInstructionList(answer: string): string[] | DropVerdict {
  const items: string[] = [];
  let current: string | undefined;
  for (const line of answer.split("\n")) {
    if (line.trim().length === 0) continue;
    if (LIST_MARKER.test(line)) {
      if (current) items.push(current);
      current = line.replace(LIST_MARKER, "").replace(/^(?:instruction|task)\s*:\s*/i, "").trim();
    } else if (current !== undefined) {
      current = `${current} ${line.trim()}`;
    }
  }
  if (current) items.push(current);
  const cleaned = items.map((item) => item.replace(/\s+/g, " ").trim()).filter((item) => item.length > 0);
  return cleaned.length > 0 ? cleaned : drop("no_instructions", { message: "the answer holds no numbered list of instructions" });
}

/** Step 2: is the task classification with a finite label set? Few-shot, with seed tasks as the shots. */
export function classificationMessages(instruction: string, shots: readonly SeedTask[]): ChatMessage[] {
  const examples = shots.map((task) => `Task: ${task.instruction}\nIs it classification? ${task.isClassification ? "Yes" : "No"}`).join("\n\n");
  return [
    {
      role: "user",
      content:
        "Can the following task be regarded as a classification task, one whose answer is one label from a small, finite set of labels?\n\n" +
        `${examples}\n\nTask: ${instruction}\nIs it classification?\n\n` +
        'Reply as JSON: {"is_classification": true or false}.',
    },
  ];
}

export const ClassificationAnswer = z.strictObject({ is_classification: z.boolean() });

export function instanceSchemas(count: number) {
  const bounds = { min: 1, max: Math.max(1, count) };
  return {
    /** Input first: the input is written, then the output that answers it. */
    inputFirst: z.strictObject({
      instances: z.array(z.strictObject({ input: z.string(), output: z.string() })).min(bounds.min).max(bounds.max),
    }),
    /** Output first, for classification: the label is chosen, then an input that has it (avoids one-label skew). */
    outputFirst: z.strictObject({
      instances: z.array(z.strictObject({ class_label: z.string(), input: z.string() })).min(bounds.min).max(bounds.max),
    }),
  };
}

/** Step 3: instance generation, input-first for open tasks and output-first for classification tasks. */
export function instanceMessages(instruction: string, classification: boolean, count: number, shots: readonly SeedTask[]): ChatMessage[] {
  const examples = shots
    .map((task) => {
      const instance = task.instances[0]!;
      return classification
        ? `Task: ${task.instruction}\nClass label: ${instance.output}\nInput: ${instance.input}`
        : `Task: ${task.instruction}\nInput: ${instance.input || "(none)"}\nOutput: ${instance.output}`;
    })
    .join("\n\n");
  const ask = classification
    ? `Write ${count === 1 ? "one instance" : `up to ${count} instances`} of the task below. For each, first choose a class label from the task's label set, then write an input that truly has that label; use different labels where you can.\n` +
      'Reply as JSON: {"instances": [{"class_label": ..., "input": ...}]}.'
    : `Write ${count === 1 ? "one instance" : `up to ${count} instances`} of the task below: an input (an empty string when the task needs none) and the correct, complete output for it.\n` +
      'Reply as JSON: {"instances": [{"input": ..., "output": ...}]}.';
  return [{ role: "user", content: `${ask}\n\nExamples:\n${examples}\n\nTask: ${instruction}` }];
}

/** Seed tasks used as shots: the first `k` of a kind whose first instance has a short, non-empty input. */
export function shotsOf(seeds: readonly SeedTask[], classification: boolean, k: number): SeedTask[] {
  return seeds
    .filter((task) => task.isClassification === classification && task.instances[0] && task.instances[0].input.length > 0 && task.instances[0].input.length < 240)
    .slice(0, k);
}

// ---------------------------------------------------------------------------------------------------
// The pipeline

/** Everything the Self-Instruct pipeline reads from a graph's options. */
export interface SelfInstructSettings {
  readonly seedTasks: string;
  readonly target: number;
  readonly instructionsPerRound: number;
  readonly humanDemos: number;
  readonly machineDemos: number;
  readonly parallelRounds: number;
  readonly maxRounds: number;
  readonly classify: boolean;
  readonly instancesPerTask: number;
  readonly rougeThreshold: number;
  readonly nearDupThreshold: number;
  readonly poolLimit: number;
  readonly model: string;
  /** Price setting passed to openEndpoint ("" = the built-in table). */
  readonly price: string;
  readonly temperature: number;
  readonly concurrency: number;
  readonly seed: number;
}

function checkSettings(s: SelfInstructSettings): void {
  const positive = ["target", "instructionsPerRound", "parallelRounds", "instancesPerTask", "poolLimit", "concurrency"] as const;
  for (const key of positive) {
    if (!Number.isInteger(s[key]) || s[key] < 1) throw new ConfigError(`self-instruct: ${key} must be a positive integer, got ${s[key]}`);
  }
  for (const key of ["humanDemos", "machineDemos", "maxRounds"] as const) {
    if (!Number.isInteger(s[key]) || s[key] < 0) throw new ConfigError(`self-instruct: ${key} must be an integer >= 0, got ${s[key]}`);
  }
  if (s.humanDemos + s.machineDemos < 1) throw new ConfigError("self-instruct: humanDemos + machineDemos must be at least 1");
  if (!(s.rougeThreshold > 0 && s.rougeThreshold <= 1)) throw new ConfigError(`self-instruct: rougeThreshold must be in (0, 1], got ${s.rougeThreshold}`);
  if (!(s.nearDupThreshold > 0 && s.nearDupThreshold < 1)) throw new ConfigError(`self-instruct: nearDupThreshold must be in (0, 1), got ${s.nearDupThreshold}`);
}

/**
 * The Self-Instruct graph: rounds -> in-context examples (human seeds + accepted machine instructions)
 * -> new instructions -> instruction filters (length, unsupported modalities, ROUGE-L novelty against
 * seeds and accepted instructions) -> classification? -> instances (output-first for classification)
 * -> instance checks, refusals, exact and MinHash dedup -> the first `target` rows -> diversity summary.
 */
export async function selfInstructGraph(s: SelfInstructSettings, env: GraphEnvironment) {
  checkSettings(s);
  const seeds = await readSeedTasks(s.seedTasks);
  const endpoint = await openEndpoint(env, { model: s.model || undefined, seed: s.seed, concurrency: s.concurrency, price: s.price });
  const { llm } = endpoint;
  const loop = new BootstrapLoop(s.poolLimit, s.seed);
  loop.restore(env.out, "target");
  const maxRounds = s.maxRounds > 0 ? s.maxRounds : Math.ceil((10 * s.target) / s.instructionsPerRound) + s.parallelRounds;

  const source = roundSource(loop, {
    name: "self-instruct-rounds",
    target: s.target,
    maxRounds,
    parallelRounds: s.parallelRounds,
    // Half the asked-for instructions surviving the filters is the usual yield on a real model.
    expectedPerRound: Math.max(1, (s.instructionsPerRound * s.instancesPerTask) / 2),
    log: env.log,
  });

  const sampleDemos = defineMap({
    name: "sample_demos",
    params: { humanDemos: s.humanDemos, machineDemos: s.machineDemos, seed: s.seed, seeds: seeds.length },
    reads: ["round"],
    writes: ["demos"],
    map(sample, _state, context) {
      loop.watch(context);
      const round = sample.data.round as number;
      const rng = seededRng(s.seed, "demos", round);
      const machine = pickDistinct(rng, loop.pool, s.machineDemos);
      // Before any machine instruction exists, the whole prompt is human seeds, as in the paper's first step.
      const human = pickDistinct(rng, seeds, s.humanDemos + s.machineDemos - machine.length);
      const demos = pickDistinct(rng, [...human.map((task) => task.instruction), ...machine], Infinity);
      return {
        data: { round, demos },
        step: { note: `human: ${human.map((task) => task.id).join(", ")}; machine: ${machine.length} of ${loop.pool.length}` },
      };
    },
  });

  const propose = generate<string[]>({
    llm,
    name: "propose_instructions",
    prompt: (sample) => proposalMessages(sample.data.demos as string[], s.instructionsPerRound),
    parse: (answer) => parseInstructionList(answer),
    write: "instructions",
    temperature: s.temperature,
    seed: s.seed,
  });

  const splitInstructions = defineFanOut({
    name: "split_instructions",
    params: { max: s.instructionsPerRound },
    reads: ["instructions"],
    writes: ["instruction"],
    expand(sample) {
      const instructions = (sample.data.instructions as string[]).slice(0, s.instructionsPerRound);
      return instructions.map(
        (instruction, index): Child => ({
          data: { ...without(sample.data, "instructions", "round", "demos"), instruction },
          generation: "same",
          step: { note: `instruction ${index + 1} of ${instructions.length} from round ${String(sample.data.round)}` },
        }),
      );
    },
  });

  const instructionHeuristics = heuristicFilter({ ...instructionPreset, name: "instruction_heuristics" });

  // rougeFilter's pool starts empty; the paper's starts with the seed tasks (and, on a resume, should hold
  // what was accepted before), so this filter uses the same RougePool pre-loaded with both.
  const rougeNovelty = defineFilter<RougePool>({
    name: "rouge_filter",
    params: { threshold: s.rougeThreshold, seeds: seeds.length, search: "lsh" },
    reads: ["instruction"],
    state() {
      const pool = new RougePool({ threshold: s.rougeThreshold, seed: s.seed });
      for (const task of seeds) pool.add(task.id, pool.prepare(task.instruction));
      loop.pool.forEach((instruction, i) => pool.add(`accepted:${i}`, pool.prepare(instruction)));
      return pool;
    },
    test(sample, pool) {
      const prepared = pool.prepare(text(sample, "instruction"));
      const match = pool.best(prepared);
      if (match) return drop("too_similar", { duplicateOf: match.id, value: match.score, threshold: pool.threshold });
      pool.add(sample.id, prepared);
      return true;
    },
  });

  const classifyShots = [...shotsOf(seeds, true, 4), ...shotsOf(seeds, false, 4)];
  const classifyAsk = asker({ llm, parse: ClassificationAnswer, temperature: 0, seed: s.seed, schemaName: "classification" });
  const classify = defineAsyncMap({
    name: "classify_task",
    params: { ...classifyAsk.params, shots: classifyShots.map((task) => task.id), classify: s.classify },
    reads: ["instruction"],
    writes: ["is_classification"],
    concurrency: llm.concurrency,
    async map(sample, _state, context, signal) {
      if (!s.classify) return { data: { ...sample.data, is_classification: false }, step: { note: "classification step off: input-first" } };
      const answer = await classifyAsk.ask(classificationMessages(text(sample, "instruction"), classifyShots), context, signal);
      if (!answer.ok) return answer.verdict;
      return { data: { ...sample.data, is_classification: answer.value.is_classification }, step: answer.step };
    },
  });

  const schemas = instanceSchemas(s.instancesPerTask);
  const inputFirst = asker({ llm, parse: schemas.inputFirst, temperature: s.temperature, seed: s.seed, schemaName: "instances" });
  const outputFirst = asker({ llm, parse: schemas.outputFirst, temperature: s.temperature, seed: s.seed, schemaName: "instances" });
  const openShots = shotsOf(seeds, false, 2);
  const labelShots = shotsOf(seeds, true, 2);
  const generateInstances = defineAsyncMap({
    name: "generate_instances",
    params: { inputFirst: inputFirst.params, outputFirst: outputFirst.params, count: s.instancesPerTask },
    reads: ["instruction", "is_classification"],
    writes: ["instances"],
    concurrency: llm.concurrency,
    async map(sample, _state, context, signal) {
      const classification = sample.data.is_classification === true;
      const messages = instanceMessages(text(sample, "instruction"), classification, s.instancesPerTask, classification ? labelShots : openShots);
      if (classification) {
        const answer = await outputFirst.ask(messages, context, signal);
        if (!answer.ok) return answer.verdict;
        const instances = answer.value.instances.map((item) => ({ input: item.input, output: item.class_label }));
        return { data: { ...sample.data, instances }, step: { ...answer.step, note: "output-first (classification)" } };
      }
      const answer = await inputFirst.ask(messages, context, signal);
      if (!answer.ok) return answer.verdict;
      return { data: { ...sample.data, instances: answer.value.instances }, step: { ...answer.step, note: "input-first" } };
    },
  });

  const splitInstances = defineFanOut({
    name: "split_instances",
    reads: ["instances"],
    writes: ["input", "output"],
    expand(sample) {
      const instances = sample.data.instances as { input: string; output: string }[];
      const seen = new Map<string, string>();
      const base = without(sample.data, "instances");
      return instances.map((instance, index): Child | DropVerdict => {
        const input = instance.input.trim();
        const output = instance.output.trim();
        if (output.length === 0) return drop("empty_output");
        if (input.length > 0 && input.toLowerCase() === output.toLowerCase()) return drop("output_copies_input");
        const key = input.toLowerCase();
        const earlier = seen.get(key);
        if (earlier !== undefined) return drop(earlier === output.toLowerCase() ? "duplicate_instance" : "conflicting_instance");
        seen.set(key, output.toLowerCase());
        return { data: { ...base, input, output }, generation: "same", step: { note: `instance ${index + 1} of ${instances.length}` } };
      });
    },
  });

  const target = defineFilter({
    name: "target",
    params: { target: s.target },
    reads: ["instruction"],
    test(sample) {
      if (loop.accepted >= s.target) return drop("over_target", { value: loop.accepted + 1, threshold: s.target });
      loop.accepted++;
      loop.remember(text(sample, "instruction"));
      return true;
    },
    checkpoint: (_state, context) => loop.save(context, "target"),
  });

  const operators: Operator[] = [
    sampleDemos,
    propose,
    splitInstructions,
    instructionHeuristics,
    rougeNovelty,
    classify,
    generateInstances,
    splitInstances,
    refusalFilter({ name: "output_refusals", fields: "output" }),
    exactDedup({ name: "exact_dedup", fields: ["instruction", "input", "output"] }),
    nearDedup({ name: "near_dedup", fields: ["instruction", "input", "output"], threshold: s.nearDupThreshold, seed: s.seed }),
    target,
    // After the target, so the summary describes exactly the rows written.
    diversityTracker({ name: "diversity", fields: "instruction", seed: s.seed }),
  ];
  return {
    sources: [source],
    operators,
    dispose: () => endpoint.dispose(),
    // A larger target or more rounds continue the same bootstrapping run rather than start another.
    continuable: ["target", "maxRounds"],
    incomplete: () =>
      loop.accepted < s.target
        ? `self-instruct used its ${maxRounds} rounds (maxRounds) and accepted ${loop.accepted} of ${s.target} rows; ` +
          `continue into the same folder with --set maxRounds=${maxRounds * 2}`
        : undefined,
  };
}
