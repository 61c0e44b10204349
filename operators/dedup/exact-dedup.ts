import { defineAsyncFilter, defineFilter, drop, type Operator, type RunContext, type Sample, type SharedServices } from "../../src/index.ts";
import { fieldList, fieldValue, type Fields } from "./fields.ts";
import { hashKey64, normalize } from "./minhash.ts";
import { readState, statePath, writeStateAtomic } from "./state-file.ts";

export interface ExactDedupOptions {
  /** Operator name in metrics, rejects and the state file. Default "exact_dedup". */
  readonly name?: string;
  /** Data fields compared; each is normalised and hashed on its own, so moving text between fields is a change. Default "text". */
  readonly fields?: Fields;
  /** Default true. */
  readonly lowercase?: boolean;
  /** Runs of whitespace count as one space, ends trimmed. Default true. */
  readonly collapseWhitespace?: boolean;
  /** Punctuation and symbols are ignored. Default false. */
  readonly stripPunctuation?: boolean;
  /** Save the seen-hash table with each run checkpoint and reload it on resume. Default true. */
  readonly checkpoint?: boolean;
  /**
   * The workers' shared state of a scaled-out run (GraphEnvironment.shared): the seen hashes are one index
   * in Redis for every worker instead of a table in each. Unset (a single process): the local table.
   */
  readonly shared?: SharedServices;
}

const DEFAULTS = {
  name: "exact_dedup",
  fields: "text",
  lowercase: true,
  collapseWhitespace: true,
  stripPunctuation: false,
  checkpoint: true,
} as const satisfies Required<Omit<ExactDedupOptions, "shared">>;

/** 64-bit hash of the normalised fields (as a 4-code-unit string) -> id of the sample kept with it. */
type Seen = Map<string, string>;

interface State {
  /**
   * Entries loaded from the checkpoint: each may be met once by its own sample, replayed after a resume.
   * Moved to `seen` when that happens, so no later sample can pass as it.
   */
  restored: Seen | undefined;
  /** Entries of samples this run has kept (or whose replay it has met). */
  seen: Seen;
  /** An entry was added or moved since the last save (or the load): a save with none would rewrite the same table. */
  changed: boolean;
  writes: Promise<void>;
}

/**
 * Exact deduplication on normalised text: the first sample with a given text is kept, later ones rejected.
 * Only a 64-bit hash per kept sample is held (plus its id, for `duplicateOf`), never the text.
 *
 * A sample that was kept before a crash but not committed is replayed on resume and meets its own entry:
 * it is kept again, but only if the entry came from the checkpoint, carries its id (ids are unique, see
 * `sourceSampleId`) and has not been met by it already in this run. An entry this run made is never
 * "me", so a second sample with an equal id and equal text is a duplicate, whatever its id.
 *
 * Reads: `fields`. Writes: nothing.
 * Drop reasons: `exact_duplicate` (`duplicateOf` = the kept sample's id).
 *
 * @example
 * exactDedup({ fields: ["instruction", "output"], stripPunctuation: true })
 */
export function exactDedup(options: ExactDedupOptions = {}): Operator {
  const config = { ...DEFAULTS, ...options };
  const fields = fieldList(config.fields);
  const norm = {
    lowercase: config.lowercase,
    collapseWhitespace: config.collapseWhitespace,
    stripPunctuation: config.stripPunctuation,
  };
  const keyOf = (sample: Parameters<typeof fieldValue>[0]): string => {
    if (fields.length === 1) return hashKey64(normalize(fieldValue(sample, fields[0]!), norm));
    // Joined with NUL: collapsing whitespace turns a NUL inside a field into a space, so splits stay distinct.
    return hashKey64(fields.map((field) => normalize(fieldValue(sample, field), norm)).join("\u0000"));
  };

  const load = (state: State, context: RunContext): Seen => {
    if (state.restored) return state.restored;
    const bytes = config.checkpoint ? readState(statePath(context, config.name)) : undefined;
    state.restored = bytes ? decodeSeen(bytes) : new Map();
    return state.restored;
  };
  const save = (state: State, context: RunContext): Promise<void> => {
    const path = config.checkpoint ? statePath(context, config.name) : undefined;
    if (!path) return Promise.resolve();
    // A rerun of a finished folder meets no sample, and must change no file.
    if (!state.changed) return state.writes;
    state.changed = false;
    // Every entry saved now may belong to a sample in flight at this checkpoint, so all are replayable after it.
    const image = encodeSeen(load(state, context), state.seen);
    state.writes = state.writes.then(() => writeStateAtomic(path, image));
    return state.writes;
  };

  if (options.shared) return sharedExactDedup(config.name, { ...config, name: undefined, shared: undefined }, fields, keyOf, options.shared);

  return defineFilter<State>({
    name: config.name,
    params: { ...config, name: undefined, shared: undefined },
    reads: fields,
    state: () => ({ restored: undefined, seen: new Map(), changed: false, writes: Promise.resolve() }),
    test(sample, state, context) {
      const restored = load(state, context);
      const key = keyOf(sample);
      const kept = state.seen.get(key);
      if (kept !== undefined) return drop("exact_duplicate", { duplicateOf: kept });
      const before = restored.get(key);
      if (before !== undefined && before !== sample.id) return drop("exact_duplicate", { duplicateOf: before });
      // New text, or the replay of a sample kept before the crash meeting its checkpointed entry (once).
      if (before !== undefined) restored.delete(key);
      state.seen.set(key, sample.id);
      state.changed = true;
      return true;
    },
    checkpoint: save,
    complete: save,
  });
}

/**
 * The same decision with the seen hashes in the run's shared index: the first sample to claim a text keeps
 * it, whichever worker it is on, and a sample claimed before a crash finds its own claim when replayed.
 * Which of two equal texts on different workers is kept depends on timing; how many are kept does not.
 */
function sharedExactDedup(name: string, params: object, fields: readonly string[], keyOf: (sample: Sample) => string, shared: SharedServices): Operator {
  const index = shared.index(name);
  return defineAsyncFilter({
    name,
    params,
    reads: fields,
    concurrency: 256,
    async test(sample) {
      const key = keyOf(sample);
      // Hex: the table's 4-unit key may hold lone surrogates, which would not survive UTF-8 on the way to Redis.
      const hex = Array.from(key, (unit) => unit.charCodeAt(0).toString(16).padStart(4, "0")).join("");
      const holder = await index.claim(hex, sample.id);
      return holder === sample.id ? true : drop("exact_duplicate", { duplicateOf: holder });
    },
  });
}

/** Layout: u32 count, count x 4 UTF-16 key units, then the ids as JSON. The maps hold disjoint keys. */
function encodeSeen(...parts: Seen[]): Uint8Array {
  const count = parts.reduce((sum, part) => sum + part.size, 0);
  const keys = new Uint16Array(count * 4);
  const ids: string[] = [];
  let i = 0;
  for (const seen of parts) {
    for (const [key, id] of seen) {
      for (let k = 0; k < 4; k++) keys[i++] = key.charCodeAt(k);
      ids.push(id);
    }
  }
  const idBytes = new TextEncoder().encode(JSON.stringify(ids));
  const bytes = new Uint8Array(4 + keys.byteLength + idBytes.byteLength);
  new DataView(bytes.buffer).setUint32(0, count, true);
  bytes.set(new Uint8Array(keys.buffer), 4);
  bytes.set(idBytes, 4 + keys.byteLength);
  return bytes;
}

function decodeSeen(bytes: Uint8Array): Seen {
  // A copy with its own buffer: a Node Buffer's slice is a view into a shared pool.
  const own = new Uint8Array(bytes);
  const count = new DataView(own.buffer).getUint32(0, true);
  const keys = new Uint16Array(own.buffer.slice(4, 4 + count * 8));
  const ids = JSON.parse(new TextDecoder().decode(own.subarray(4 + count * 8))) as string[];
  const seen = new Map<string, string>();
  for (let i = 0; i < count; i++) {
    seen.set(String.fromCharCode(keys[i * 4]!, keys[i * 4 + 1]!, keys[i * 4 + 2]!, keys[i * 4 + 3]!), ids[i]!);
  }
  return seen;
}
