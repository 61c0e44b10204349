// Building blocks of the Self-Instruct graphs (Wang et al. 2022, "Self-Instruct: Aligning Language Models
// with Self-Generated Instructions"): the bootstrapping loop, its prompts and parsers, the per-step
// operators, and the whole pipeline that graphs/self-instruct.ts and graphs/quickstart.ts both run.
// The prompts are ours; the procedure is the paper's.
import { existsSync, readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { Observable, type OperatorFunction } from "rxjs";
import { z } from "zod";
import {
  ConfigError,
  InputError,
  childSampleId,
  currentRunContext,
  defineAsyncMap,
  defineFanOut,
  defineFilter,
  defineMap,
  drop,
  resolveDataPath,
  stableHash,
  type Child,
  type DropVerdict,
  type GraphEnvironment,
  type Operator,
  type RunContext,
  type Sample,
  type SharedRecords,
  type Source,
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
// The bootstrapping loop, in waves

/** What one wave decided: the loop's state at the start of any wave is the fold of the waves before it. */
export interface WaveRecord {
  readonly wave: number;
  readonly firstRound: number;
  readonly rounds: number;
  /** Rows the `target` filter accepted in this wave. */
  readonly accepted: number;
  /** Their instructions, distinct, in the wave's fixed order (round, instruction, instance). */
  readonly instructions: readonly string[];
}

/** The checkpoint file: every folded wave, so a resume can rebuild the state as of any committed wave. */
interface SavedLoop {
  readonly version: 2;
  readonly waves: readonly WaveRecord[];
}

/** A wave issued and not yet folded. */
interface OpenWave {
  readonly wave: number;
  readonly firstRound: number;
  readonly rounds: number;
  entered: boolean;
  accepted: number;
  readonly instructions: string[];
  readonly seen: Set<string>;
}

/** Sorts two order keys (round, instruction, instance) lexicographically. */
function compareKeys(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

/**
 * The state of one bootstrapping run, as a fold of whole waves. A wave's prompts see only the pool as of
 * its start; its rows are decided (novelty within the wave, dedup, the `target` cut) in a fixed order once
 * the whole wave has reached the wave barrier; then the wave is folded into the pool. So the state at the
 * start of wave w is a pure function of waves 0..w-1, each of which is a pure function of the seed and the
 * endpoint's answers: whatever the concurrency, the timing or a crash, the same dataset.
 *
 * Saved with each checkpoint as the list of folded waves. The runner saves operator state after renaming
 * shards and before the manifest, so the file may run ahead of the manifest; a resume keeps only the waves
 * the manifest says are finished (`rewind(from)`) and redoes the rest from there.
 *
 * In a scaled-out run (`share`) each wave is a chunk of its own, run after the one before is acknowledged,
 * and the folded waves live in Redis instead: a chunk writes its wave's record as part of its commit, and
 * the worker that takes the next wave reads the records it has not seen yet.
 */
export class BootstrapLoop {
  /** Rows accepted by the folded waves and the open one. */
  accepted = 0;
  /** First round of the next wave. */
  nextRound = 0;
  /** Reservoir of accepted machine instructions that later prompts draw in-context examples from. */
  readonly pool: string[] = [];
  /** Every accepted instruction, oldest first (the ROUGE-L novelty pool beside the seeds). */
  readonly history: string[] = [];
  private readonly inPool = new Set<string>();
  private offered = 0;
  private rng;
  private waves: WaveRecord[] = [];
  private saved: WaveRecord[] = [];
  /** Folded waves known to equal their saved record (the rest were folded from this process's own tries). */
  private verified = 0;
  /** The first wave this process folded itself since the last rewind: what `save` writes to the shared records. */
  private ownFrom = 0;
  /** Changes whenever the folded state is rebuilt from scratch, so state derived from `history` knows to start over. */
  generation = 0;
  private shared: SharedRecords | undefined;
  private open: OpenWave | undefined;
  /** Order keys of the open wave's samples, by id (fan-outs register their children). */
  private readonly order = new Map<string, readonly number[]>();
  private closed: (() => void) | undefined;

  constructor(
    readonly poolLimit: number,
    private readonly seed: number,
  ) {
    this.rng = seededRng(seed, "pool");
  }

  /** Reads what a previous run into `out` saved (`<out>/state/<name>.bin`), if anything; nothing is folded yet. */
  load(out: string | undefined, name: string): void {
    const file = out ? join(out, "state", `${name}.bin`) : undefined;
    if (!file || !existsSync(file)) return;
    const saved = JSON.parse(readFileSync(file, "utf8")) as Partial<SavedLoop>;
    if (saved.version !== 2 || !Array.isArray(saved.waves)) {
      throw new ConfigError(`self-instruct: ${file} was written by an older self-instruct whose runs cannot be resumed; use a new --out folder`);
    }
    this.saved = saved.waves;
  }

  /** Keeps the folded waves in a scaled-out run's shared records rather than in the run folder. */
  share(records: SharedRecords): void {
    this.shared = records;
    this.saved = [];
  }

  /** Reads the shared records of the waves before `from` that this process has not read yet. */
  async sync(from: number): Promise<void> {
    if (!this.shared || this.saved.length >= from) return;
    const values = await this.shared.range(this.saved.length, from);
    for (const value of values) {
      if (value === undefined) {
        throw new ConfigError(
          `self-instruct: wave ${this.saved.length} of this run has no record in Redis though later waves were fed; was the run's Redis flushed or restored from an older copy?`,
        );
      }
      this.saved.push(JSON.parse(value) as WaveRecord);
    }
  }

  async save(context: RunContext, name: string): Promise<void> {
    if (this.shared) {
      // Part of the chunk's commit (operator state, before its manifest): a try that does not commit is overwritten by the one that does.
      for (const record of this.waves.slice(this.ownFrom)) await this.shared.put(record.wave, JSON.stringify(record));
      return;
    }
    const file = statePath(context, name);
    if (!file) return;
    const saved: SavedLoop = { version: 2, waves: this.waves };
    await writeStateAtomic(file, new TextEncoder().encode(JSON.stringify(saved)));
  }

  /** The state as of the start of wave `from` (the first one the manifest does not list as finished). */
  rewind(from: number): void {
    const kept = this.saved.filter((record) => record.wave < from).sort((a, b) => a.wave - b.wave);
    if (kept.length !== from || kept.some((record, i) => record.wave !== i)) {
      throw new ConfigError(
        `self-instruct: the run folder's loop state (state/target.bin) covers ${kept.length} of the ${from} finished waves, so the run cannot be resumed exactly; use a new --out folder`,
      );
    }
    if (this.open) this.accepted -= this.open.accepted;
    this.open = undefined;
    this.order.clear();
    this.ownFrom = from;
    // A worker's next wave: what it folded itself is what was committed, unless another worker redid it.
    if (this.waves.length === from && this.foldedAsSaved(kept)) return;
    this.generation++;
    this.verified = from;
    this.accepted = 0;
    this.nextRound = 0;
    this.pool.length = 0;
    this.history.length = 0;
    this.inPool.clear();
    this.offered = 0;
    this.rng = seededRng(this.seed, "pool");
    this.waves = [];
    for (const record of kept) this.fold(record);
  }

  private foldedAsSaved(kept: readonly WaveRecord[]): boolean {
    for (let i = this.verified; i < kept.length; i++) if (JSON.stringify(this.waves[i]) !== JSON.stringify(kept[i])) return false;
    this.verified = kept.length;
    return true;
  }

  /** Yield per round so far (for sizing the next wave), or undefined before any wave was folded. */
  get perRound(): number | undefined {
    return this.nextRound === 0 ? undefined : this.accepted / this.nextRound;
  }

  /** The source issues a wave; its rows are decided once it has wholly reached the barrier. */
  begin(wave: number, rounds: number): { firstRound: number } {
    const firstRound = this.nextRound;
    this.open = { wave, firstRound, rounds, entered: false, accepted: 0, instructions: [], seen: new Set() };
    this.order.clear();
    return { firstRound };
  }

  /** The first operator got the wave's root: from now on, every sample of the wave is counted in flight somewhere. */
  enter(): void {
    if (this.open) this.open.entered = true;
  }

  /** The wave issued and not folded yet, if any. */
  get openWave(): number | undefined {
    return this.open?.wave;
  }

  /** True while a wave has entered the graph and is not folded yet. */
  get waveEntered(): boolean {
    return this.open?.entered === true;
  }

  /** A fan-out's child: its order key is its parent's with the child's index appended. */
  orderChild(parentId: string, operator: string, index: number): void {
    this.order.set(childSampleId(parentId, operator, index), [...(this.order.get(parentId) ?? []), index]);
  }

  /** The wave's fixed order: by order key (round, instruction, instance), ties (an unregistered fan-out) by id. */
  readonly compare = (a: Sample, b: Sample): number => {
    const key = (sample: Sample) => this.order.get(sample.id) ?? this.order.get(sample.provenance.parents[0] ?? "") ?? [];
    return compareKeys(key(a), key(b)) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
  };

  /** The `target` filter accepted a row of the open wave. */
  accept(instruction: string): void {
    this.accepted++;
    if (!this.open) return;
    this.open.accepted++;
    if (!this.open.seen.has(instruction)) {
      this.open.seen.add(instruction);
      this.open.instructions.push(instruction);
    }
  }

  /** The barrier has released the whole open wave: fold it. */
  close(): void {
    const open = this.open;
    if (!open) return;
    this.open = undefined;
    this.order.clear();
    this.accepted -= open.accepted;
    this.fold({ wave: open.wave, firstRound: open.firstRound, rounds: open.rounds, accepted: open.accepted, instructions: open.instructions });
    const resolve = this.closed;
    this.closed = undefined;
    resolve?.();
  }

  /** Resolves once the open wave is folded (or the run stops). */
  async folded(signal: AbortSignal): Promise<void> {
    if (!this.open || signal.aborted) return;
    await new Promise<void>((resolve) => {
      const onAbort = () => resolve();
      signal.addEventListener("abort", onAbort, { once: true });
      this.closed = () => {
        signal.removeEventListener("abort", onAbort);
        resolve();
      };
    });
  }

  private fold(record: WaveRecord): void {
    this.waves.push(record);
    this.accepted += record.accepted;
    this.nextRound = record.firstRound + record.rounds;
    for (const instruction of record.instructions) {
      this.history.push(instruction);
      this.remember(instruction);
    }
  }

  /** Offers an accepted instruction to the reservoir (in the fixed order, so the draws repeat). */
  private remember(instruction: string): void {
    if (this.inPool.has(instruction)) return;
    this.offered++;
    if (this.pool.length < this.poolLimit) {
      this.pool.push(instruction);
      this.inPool.add(instruction);
      return;
    }
    const slot = Math.floor(this.rng.next() * this.offered);
    if (slot < this.poolLimit) {
      this.inPool.delete(this.pool[slot]!);
      this.pool[slot] = instruction;
      this.inPool.add(instruction);
    }
  }
}

export interface WaveSourceOptions {
  readonly name: string;
  /** Stop once this many rows are accepted. */
  readonly target: number;
  /** Never more rounds than this in all. */
  readonly maxRounds: number;
  /** Most rounds in one wave. */
  readonly parallelRounds: number;
  /** Rows one round is expected to yield before any wave has been folded (sizes the first wave). */
  readonly expectedPerRound: number;
  readonly log: (line: string) => void;
}

/** Rounds in the next wave: what is still missing at the yield so far (a pure function of the folded waves). */
export function waveSize(loop: BootstrapLoop, options: WaveSourceOptions): number {
  const missing = options.target - loop.accepted;
  // A zero yield so far means "ask widely", not "ask for ever".
  const perRound = loop.perRound === undefined ? options.expectedPerRound : Math.max(loop.perRound, 0.25);
  return Math.max(1, Math.min(options.parallelRounds, options.maxRounds - loop.nextRound, Math.ceil(missing / perRound)));
}

/**
 * The loop's waves, one source record each (position = wave number), so the runner finishes, commits and
 * redoes a wave as a whole. The next wave is issued only once the previous one is folded, so its prompts
 * draw on the instructions it produced, as the paper's iterations do. The source ends when `target` rows
 * are accepted or `maxRounds` were issued.
 */
export function waveSource(loop: BootstrapLoop, options: WaveSourceOptions): Source {
  return {
    name: options.name,
    origin: "template",
    fields: ["wave", "first_round", "rounds"],
    async *batches({ from, signal }) {
      await loop.sync(from);
      loop.rewind(from);
      for (let wave = from; !signal.aborted; wave++) {
        if (loop.accepted >= options.target) return;
        if (loop.nextRound >= options.maxRounds) {
          options.log(`self-instruct: stopped after ${loop.nextRound} rounds (maxRounds) with ${loop.accepted} of ${options.target} rows accepted`);
          return;
        }
        const rounds = waveSize(loop, options);
        const { firstRound } = loop.begin(wave, rounds);
        yield [{ position: wave, id: `wave-${wave}`, data: { wave, first_round: firstRound, rounds } }];
        await loop.folded(signal);
      }
    },
  };
}

/**
 * Holds a wave's rows until the whole wave has reached it (every operator before it idle), then passes
 * them on in the wave's fixed order, synchronously, and folds the wave: the order-dependent steps after
 * it (novelty within the wave, exact and MinHash dedup, the `target` cut) then decide the same way on
 * every run. With `hold: false` rows pass in completion order (the old, faster, unreproducible way).
 * Held rows count as in flight, so the run's budget must hold a whole wave (`waveMax` rows).
 * `fold: false` leaves the fold to a later barrier: one after steps that answer out of order (dedup
 * through Redis in a scaled-out run) puts their survivors back in the wave's order before the `target`
 * cut, and folds the wave once every row has been decided.
 */
export function waveBarrier(
  loop: BootstrapLoop,
  options: { readonly name: string; readonly hold: boolean; readonly waveMax: number; readonly fold?: boolean },
): Operator {
  const folds = options.fold !== false;
  const params = { hold: options.hold };
  const meta = { name: options.name, version: "1", params, paramsHash: stableHash(params) };
  const barrier: OperatorFunction<Sample, Sample> = (source) =>
    new Observable<Sample>((subscriber) => {
      const context = currentRunContext(meta.name);
      context.registerOperator(meta.name, meta.version, params);
      if (options.hold && context.budget !== undefined && context.budget < options.waveMax) {
        throw new ConfigError(
          `self-instruct decides each wave in a fixed order, holding up to parallelRounds x instructionsPerRound x instancesPerTask = ${options.waveMax} rows in flight; ` +
            `the run's budget is ${context.budget}: raise --budget to at least ${options.waveMax} or lower parallelRounds`,
        );
      }
      // Everything registered before this operator is upstream of it (the runner registers in graph order).
      const names = context.metrics.snapshot().operators.map((operator) => operator.name);
      const own = names.indexOf(meta.name);
      const upstream = names.slice(0, own < 0 ? names.length : own).map((name) => context.metrics.counters(name));
      const counters = context.metrics.counters(meta.name);
      let held: Sample[] = [];
      const release = () => {
        const rows = held;
        held = [];
        rows.sort(loop.compare);
        for (const row of rows) {
          counters.inFlight--;
          counters.out++;
          subscriber.next(row);
        }
        if (folds) loop.close();
      };
      // A wave has wholly arrived once it entered the graph and no operator before this one holds a sample.
      // Not unref'd: once a wave's last answer is in, this poll may be all that is left to do, and a
      // process with nothing else alive (an endpoint in another process) would exit mid-run with code 13.
      const poll = setInterval(() => {
        if (loop.waveEntered && !subscriber.closed && upstream.every((c) => c.inFlight === 0)) release();
      }, 2);
      const subscription = source.subscribe({
        next(sample) {
          counters.in++;
          if (options.hold) {
            counters.inFlight++;
            held.push(sample);
          } else {
            counters.out++;
            subscriber.next(sample);
          }
        },
        error: (error: unknown) => subscriber.error(error),
        complete() {
          clearInterval(poll);
          // Everything before this operator finished: what is held is the whole wave.
          if (loop.waveEntered && !context.signal.aborted) release();
          subscriber.complete();
        },
      });
      return () => {
        clearInterval(poll);
        subscription.unsubscribe();
      };
    });
  return Object.assign(barrier, { meta });
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
  const most = Math.max(1, count);
  const items = <T extends z.ZodType>(item: T, least: number) => z.array(item).min(least).max(most);
  return {
    /** Input first: the input is written, then the output that answers it. */
    inputFirst: z.strictObject({ instances: items(z.strictObject({ input: z.string(), output: z.string() }), 1) }),
    /**
     * Output first, for classification: one instance per class label (avoids one-label skew), so with room
     * for more than one instance, a task answered with a single label is not a classification task's full answer.
     */
    outputFirst: z.strictObject({ instances: items(z.strictObject({ class_label: z.string(), input: z.string() }), most >= 2 ? 2 : 1) }),
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
    ? (count === 1
        ? "Write one instance of the task below: first choose a class label from the task's label set, then write an input that truly has that label.\n"
        : `Write one instance of the task below for each of its class labels (for ${count} of them if it has more than ${count}): first the label, then an input that truly has that label. Cover every label; use each label once.\n`) +
      'Reply as JSON: {"instances": [{"class_label": ..., "input": ...}]}.'
    : `Write ${count === 1 ? "one instance" : `up to ${count} instances`} of the task below: an input (an empty string when the task needs none) and the correct, complete output for it.\n` +
      'Reply as JSON: {"instances": [{"input": ..., "output": ...}]}.';
  return [{ role: "user", content: `${ask}\n\nExamples:\n${examples}\n\nTask: ${instruction}` }];
}

/** The first non-empty input that two of a task's instances answer differently, if any. */
export function conflictingInput(instances: readonly { input: string; output: string }[]): string | undefined {
  const outputs = new Map<string, string>();
  for (const instance of instances) {
    const input = instance.input.trim().toLowerCase();
    if (input.length === 0) continue;
    const output = instance.output.trim().toLowerCase();
    const earlier = outputs.get(input);
    if (earlier !== undefined && earlier !== output) return instance.input.trim();
    outputs.set(input, output);
  }
  return undefined;
}

/** Open (not classification) seed tasks whose first instance has no input and a short output: the first `k`. */
export function noInputShots(seeds: readonly SeedTask[], k: number): SeedTask[] {
  return seeds
    .filter((task) => !task.isClassification && task.instances[0] && task.instances[0].input.trim().length === 0 && task.instances[0].output.length < 240)
    .slice(0, k);
}

/** Seed tasks used as shots: the first `k` of a kind whose first instance has a short, non-empty input. */
export function shotsOf(seeds: readonly SeedTask[], classification: boolean, k: number): SeedTask[] {
  return seeds
    .filter((task) => task.isClassification === classification && task.instances[0] && task.instances[0].input.length > 0 && task.instances[0].input.length < 240)
    .slice(0, k);
}

// ---------------------------------------------------------------------------------------------------
// The pipeline

/**
 * The LSH candidate recall of the ROUGE-L novelty filters. Above the operator's default (0.99, tuned for
 * bulk dedup speed), so that the filter decides as the authors' brute force does: on the 5,000 instructions
 * of benchmarks/fidelity.ts it agrees on every decision at 0.5, 0.6 and 0.7 for about 4x the LCS
 * comparisons, which a pool of a few thousand instructions beside LLM calls does not notice.
 */
export const NOVELTY_CANDIDATE_RECALL = 0.999;

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
  /** Sampling of the instruction proposals beyond the temperature (the authors: top_p 0.5, presence_penalty 2). Default: the server's. */
  readonly topP?: number;
  readonly presencePenalty?: number;
  /** Sampling of the instances (the authors: temperature 0, presence_penalty 1.5). Default: `temperature`, the server's. */
  readonly instanceTemperature?: number;
  readonly instancePresencePenalty?: number;
  /** Fewest words an instruction may have (the authors drop 3 or fewer: 4). Default 3. */
  readonly minInstructionWords?: number;
  /** Drop instructions that start with "Write a program" (the authors' filter: tasks a model cannot do in text). Default false. */
  readonly rejectProgramTasks?: boolean;
  /** A ROUGE-L of exactly `rougeThreshold`: "drop" (default) or "keep" (the authors drop only above it). */
  readonly rougeAtThreshold?: "drop" | "keep";
  /** Two instances with one input and different outputs drop the whole task, as the authors do, not only the later one. Default false. */
  readonly conflictDropsTask?: boolean;
  /** Drop instances whose input or output ends with ":", which the authors found to be cut-off generations. Default false. */
  readonly dropColonEndings?: boolean;
  readonly concurrency: number;
  readonly seed: number;
  /**
   * true (default): each wave's rows are decided in a fixed order once the whole wave is in, so the same
   * seed and answers give the same dataset; false: in completion order (for comparison, not reproducible).
   */
  readonly deterministic?: boolean;
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
  if (s.minInstructionWords !== undefined && !(Number.isInteger(s.minInstructionWords) && s.minInstructionWords >= 1)) {
    throw new ConfigError(`self-instruct: minInstructionWords must be a positive integer, got ${s.minInstructionWords}`);
  }
  if (s.rougeAtThreshold !== undefined && s.rougeAtThreshold !== "drop" && s.rougeAtThreshold !== "keep") {
    throw new ConfigError(`self-instruct: rougeAtThreshold must be "drop" or "keep", got ${JSON.stringify(s.rougeAtThreshold)}`);
  }
  if (!(s.nearDupThreshold > 0 && s.nearDupThreshold < 1)) throw new ConfigError(`self-instruct: nearDupThreshold must be in (0, 1), got ${s.nearDupThreshold}`);
}

/**
 * The Self-Instruct graph: waves of rounds -> in-context examples (human seeds + accepted machine
 * instructions as of the wave's start) -> new instructions -> instruction filters (length, unsupported
 * modalities, ROUGE-L novelty against seeds and instructions accepted by earlier waves) -> classification?
 * -> instances (output-first for classification) -> instance checks, refusals -> the wave barrier -> in
 * the wave's fixed order: novelty within the wave, exact and MinHash dedup, the first `target` rows ->
 * diversity summary.
 */
export async function selfInstructGraph(s: SelfInstructSettings, env: GraphEnvironment) {
  checkSettings(s);
  const seeds = await readSeedTasks(s.seedTasks);
  const endpoint = await openEndpoint(env, { model: s.model || undefined, seed: s.seed, concurrency: s.concurrency, price: s.price });
  const { llm } = endpoint;
  const loop = new BootstrapLoop(s.poolLimit, s.seed);
  if (env.shared) {
    if (s.deterministic === false) throw new ConfigError("self-instruct: a scaled-out run decides each wave in its fixed order; leave deterministic at true");
    loop.share(env.shared.records("waves"));
  } else {
    loop.load(env.out, "target");
  }
  const maxRounds = s.maxRounds > 0 ? s.maxRounds : Math.ceil((10 * s.target) / s.instructionsPerRound) + s.parallelRounds;
  // The most rows one wave can hold at the barrier: every instruction of every round, every instance.
  const waveMax = s.parallelRounds * s.instructionsPerRound * s.instancesPerTask;

  const source = waveSource(loop, {
    name: "self-instruct-rounds",
    target: s.target,
    maxRounds,
    parallelRounds: s.parallelRounds,
    // Half the asked-for instructions surviving the filters is the usual yield on a real model.
    expectedPerRound: Math.max(1, (s.instructionsPerRound * s.instancesPerTask) / 2),
    log: env.log,
  });

  const splitRounds = defineFanOut({
    name: "split_rounds",
    reads: ["wave", "first_round", "rounds"],
    writes: ["round"],
    expand(sample) {
      loop.enter();
      const { wave, first_round: first, rounds } = sample.data as { wave: number; first_round: number; rounds: number };
      return Array.from({ length: rounds }, (_, index): Child => {
        loop.orderChild(sample.id, "split_rounds", index);
        return { data: { round: first + index }, generation: "same", step: { note: `round ${first + index} (${index + 1} of ${rounds} in wave ${wave})` } };
      });
    },
  });

  const sampleDemos = defineMap({
    name: "sample_demos",
    params: { humanDemos: s.humanDemos, machineDemos: s.machineDemos, seed: s.seed, seeds: seeds.length },
    reads: ["round"],
    writes: ["demos"],
    map(sample) {
      const round = sample.data.round as number;
      const rng = seededRng(s.seed, "demos", round);
      // The pool as of the wave's start: it changes only when a whole wave is folded.
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
    ...(s.topP !== undefined ? { topP: s.topP } : {}),
    ...(s.presencePenalty !== undefined ? { presencePenalty: s.presencePenalty } : {}),
    seed: s.seed,
  });

  const splitInstructions = defineFanOut({
    name: "split_instructions",
    params: { max: s.instructionsPerRound },
    reads: ["instructions"],
    writes: ["instruction"],
    expand(sample) {
      const instructions = (sample.data.instructions as string[]).slice(0, s.instructionsPerRound);
      return instructions.map((instruction, index): Child => {
        loop.orderChild(sample.id, "split_instructions", index);
        return {
          data: { ...without(sample.data, "instructions", "round", "demos"), instruction },
          generation: "same",
          step: { note: `instruction ${index + 1} of ${instructions.length} from round ${String(sample.data.round)}` },
        };
      });
    },
  });

  const instructionHeuristics = heuristicFilter({
    ...instructionPreset,
    name: "instruction_heuristics",
    ...(s.minInstructionWords !== undefined ? { minWords: s.minInstructionWords } : {}),
  });
  // The authors' code drops these before any other check: a program is not something the model can write out as a text instance.
  const programTasks = defineFilter({
    name: "program_tasks",
    reads: ["instruction"],
    test: (sample) => (/^write a program/i.test(text(sample, "instruction").trim()) ? drop("program_task") : true),
  });
  const rougeAt = { ...(s.rougeAtThreshold !== undefined ? { atThreshold: s.rougeAtThreshold } : {}), candidateRecall: NOVELTY_CANDIDATE_RECALL };

  // rougeFilter's pool starts empty; the paper's starts with the seed tasks. This one holds the seeds and
  // the instructions accepted by earlier waves (caught up from the loop as waves are folded), never those
  // of the current wave, so its verdict does not depend on which of a wave's instructions came back first;
  // the wave's own instructions are compared in a fixed order after the barrier (wave_novelty).
  // The pool follows the loop, not the run: a worker running wave after wave adds each wave's instructions
  // once instead of preparing the whole history again for every chunk.
  let novelty: { pool: RougePool; synced: number; generation: number } | undefined;
  const noveltyPool = () => {
    if (novelty?.generation !== loop.generation) {
      const pool = new RougePool({ threshold: s.rougeThreshold, seed: s.seed, ...rougeAt });
      for (const task of seeds) pool.add(task.id, pool.prepare(task.instruction));
      novelty = { pool, synced: 0, generation: loop.generation };
    }
    for (; novelty.synced < loop.history.length; novelty.synced++) novelty.pool.add(`accepted:${novelty.synced}`, novelty.pool.prepare(loop.history[novelty.synced]!));
    return novelty.pool;
  };
  const rougeNovelty = defineFilter({
    name: "rouge_filter",
    params: { threshold: s.rougeThreshold, seeds: seeds.length, search: "lsh", ...rougeAt },
    reads: ["instruction"],
    test(sample) {
      const pool = noveltyPool();
      const match = pool.best(pool.prepare(text(sample, "instruction")));
      if (match) return drop("too_similar", { duplicateOf: match.id, value: match.score, threshold: pool.threshold });
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
  const instanceSampling = {
    temperature: s.instanceTemperature ?? s.temperature,
    ...(s.instancePresencePenalty !== undefined ? { presencePenalty: s.instancePresencePenalty } : {}),
  };
  const inputFirst = asker({ llm, parse: schemas.inputFirst, ...instanceSampling, seed: s.seed, schemaName: "instances" });
  const outputFirst = asker({ llm, parse: schemas.outputFirst, ...instanceSampling, seed: s.seed, schemaName: "instances" });
  // As in the authors' instance template, the shots include a task that needs no input.
  const openShots = [...shotsOf(seeds, false, 2), ...noInputShots(seeds, 1)];
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
        // The label set the model gave, kept where a reader of the provenance (and label coverage) can find it.
        const labels = [...new Set(instances.map((item) => item.output.trim()))];
        return { data: { ...sample.data, instances }, step: { ...answer.step, note: `output-first (classification), labels ${JSON.stringify(labels)}` } };
      }
      const answer = await inputFirst.ask(messages, context, signal);
      if (!answer.ok) return answer.verdict;
      return { data: { ...sample.data, instances: answer.value.instances }, step: { ...answer.step, note: "input-first" } };
    },
  });

  const splitInstances = defineFanOut({
    name: "split_instances",
    ...(s.conflictDropsTask || s.dropColonEndings ? { params: { conflictDropsTask: s.conflictDropsTask === true, dropColonEndings: s.dropColonEndings === true } } : {}),
    reads: ["instances"],
    writes: ["input", "output"],
    expand(sample) {
      const instances = sample.data.instances as { input: string; output: string }[];
      const seen = new Map<string, string>();
      const base = without(sample.data, "instances");
      const conflict = s.conflictDropsTask ? conflictingInput(instances) : undefined;
      return instances.map((instance, index): Child | DropVerdict => {
        loop.orderChild(sample.id, "split_instances", index);
        if (conflict !== undefined) return drop("conflicting_instance", { message: `two instances of the task give the input ${JSON.stringify(conflict.slice(0, 80))} different outputs: the task is dropped whole` });
        const input = instance.input.trim();
        const output = instance.output.trim();
        if (output.length === 0) return drop("empty_output");
        if (s.dropColonEndings && (input.endsWith(":") || output.endsWith(":"))) return drop("incomplete_instance");
        if (input.length > 0 && input.toLowerCase() === output.toLowerCase()) return drop("output_copies_input");
        const key = input.toLowerCase();
        const earlier = seen.get(key);
        if (earlier !== undefined) return drop(earlier === output.toLowerCase() ? "duplicate_instance" : "conflicting_instance");
        seen.set(key, output.toLowerCase());
        return { data: { ...base, input, output }, generation: "same", step: { note: `instance ${index + 1} of ${instances.length}` } };
      });
    },
  });

  // Scaled out, dedup asks Redis and answers out of order: a second barrier restores the order for the cut.
  const barrier = waveBarrier(loop, { name: "wave_barrier", hold: s.deterministic !== false, waveMax, fold: !env.shared });

  // ROUGE-L novelty among the wave's own instructions, in the wave's order: the earlier one stays.
  const waveNovelty = defineFilter<{ wave: number; pool: RougePool; admitted: Set<string> }>({
    name: "wave_novelty",
    params: { threshold: s.rougeThreshold, search: "lsh", ...rougeAt },
    reads: ["instruction"],
    state: () => ({ wave: -1, pool: new RougePool({ threshold: s.rougeThreshold, seed: s.seed, ...rougeAt }), admitted: new Set() }),
    test(sample, state) {
      if (state.wave !== (loop.openWave ?? -1)) {
        // A new wave: compare within it alone.
        state.wave = loop.openWave ?? -1;
        state.pool = new RougePool({ threshold: s.rougeThreshold, seed: s.seed, ...rougeAt });
        state.admitted.clear();
      }
      // Rows are instances of an instruction sample (their parent): its other instances are not duplicates.
      const instructionId = sample.provenance.parents[0] ?? sample.id;
      if (state.admitted.has(instructionId)) return true;
      const prepared = state.pool.prepare(text(sample, "instruction"));
      const match = state.pool.best(prepared);
      if (match) return drop("too_similar", { duplicateOf: match.id, value: match.score, threshold: state.pool.threshold });
      state.pool.add(instructionId, prepared);
      state.admitted.add(instructionId);
      return true;
    },
  });

  const target = defineFilter({
    name: "target",
    params: { target: s.target },
    reads: ["instruction"],
    test(sample) {
      if (loop.accepted >= s.target) return drop("over_target", { value: loop.accepted + 1, threshold: s.target });
      loop.accept(text(sample, "instruction"));
      return true;
    },
    checkpoint: (_state, context) => loop.save(context, "target"),
  });

  const operators: Operator[] = [
    splitRounds,
    sampleDemos,
    propose,
    splitInstructions,
    instructionHeuristics,
    ...(s.rejectProgramTasks ? [programTasks] : []),
    rougeNovelty,
    classify,
    generateInstances,
    splitInstances,
    refusalFilter({ name: "output_refusals", fields: "output" }),
    barrier,
    // From here on every operator is synchronous, so the rows are decided in the order the barrier passes them;
    // scaled out, the dedups ask Redis in that order (one wave at a time in the whole run), and wave_order
    // puts their survivors back in it.
    waveNovelty,
    exactDedup({ name: "exact_dedup", fields: ["instruction", "input", "output"], shared: env.shared }),
    nearDedup({
      name: "near_dedup",
      fields: ["instruction", "input", "output"],
      threshold: s.nearDupThreshold,
      seed: s.seed,
      shared: env.shared,
      // A task's instances share its instruction: they are near-duplicates of other tasks' rows, never of each other.
      group: (sample) => sample.provenance.parents[0] ?? sample.id,
    }),
    ...(env.shared ? [waveBarrier(loop, { name: "wave_order", hold: true, waveMax })] : []),
    target,
    // After the target, so the summary describes exactly the rows written.
    diversityTracker({ name: "diversity", fields: "instruction", seed: s.seed, shared: env.shared }),
  ];
  return {
    sources: [source],
    operators,
    // A whole wave waits at the barrier, so the default budget holds at least one.
    budget: waveMax > 1024 ? waveMax : undefined,
    dispose: () => endpoint.dispose(),
    // A larger target or more rounds continue the same bootstrapping run rather than start another.
    continuable: ["target", "maxRounds"],
    // Scaled out: one wave a chunk, in order, the folded waves and both dedup indexes in Redis.
    chunkable: true,
    serialChunks: true,
    goal: () => ({ done: loop.accepted, total: s.target }),
    incomplete: () =>
      loop.accepted < s.target
        ? `self-instruct used its ${maxRounds} rounds (maxRounds) and accepted ${loop.accepted} of ${s.target} rows; ` +
          `continue into the same folder with --set maxRounds=${maxRounds * 2}`
        : undefined,
  };
}
