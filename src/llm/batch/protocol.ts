import type { ResponseStore, CachedChoice } from "../cache.ts";
import { CacheError, errorMessage } from "../../errors.ts";
import { sleep } from "../retry.ts";
import { JOURNAL_KEY_FIELD, type BatchApi, type BatchObject } from "./api.ts";
import type { BatchJournal, IntentLine, IntentState } from "./journal.ts";
import { readOutcomes, type LineOutcome } from "./lines.ts";

/**
 * The submission protocol, in the order it runs. Each step is one function below; the journal
 * (`<run>/state/batches.jsonl`) is appended and fsynced before the next step starts:
 *
 * 1. `intent`: record the group's key and its requests (custom_ids, cache keys, tokens).
 * 2. `upload`: upload the JSONL file (POST /v1/files, purpose batch).
 * 3. `file`: record the file id.
 * 4. `create`: create the batch (POST /v1/batches) with metadata { rxsynth_journal_key: key }. Sent once:
 *    when its answer is lost, the batch is looked up by that key (GET /v1/batches), never created again blind.
 * 5. `batch`: record the batch id. From here the batch is the run's: a resumed run polls it.
 * 6. `download`: once the batch has ended, download its output and error files.
 * 7. `store`: put every answer in the response cache, so no answer is paid for twice.
 * 8. `done`: record the batch as ended, with the requests to resend (expired, failed).
 * 9. `resolve`: hand the answers to the calls waiting for them.
 *
 * Resume (`recover`): an intent without a batch id is looked up by its key among the account's batches;
 * found, its id is recorded and it is polled like any other; not found, it never reached the server and
 * is recorded `abandoned` (its requests go again in a new group). A crash anywhere thus either leaves a
 * batch the journal knows, or none: nothing is submitted twice, and nothing submitted is lost.
 */
export const BATCH_STEPS = ["intent", "upload", "file", "create", "batch", "download", "store", "done", "resolve"] as const;
export type BatchStep = (typeof BATCH_STEPS)[number];

/** Called after each step (tests crash the process here). */
export type BatchFaultHook = (step: BatchStep) => void | Promise<void>;

/**
 * `RXSYNTH_BATCH_FAULT=<step>[:<n>]` kills the process with SIGKILL the nth time (default 1st) it has done
 * `step`: how tests crash a batch run exactly between two steps.
 */
export function batchFaultsFromEnvironment(value = process.env.RXSYNTH_BATCH_FAULT): BatchFaultHook | undefined {
  if (!value) return undefined;
  const [step, count] = value.split(":");
  let remaining = count ? Number(count) : 1;
  return (done) => {
    if (done === step && --remaining === 0) process.kill(process.pid, "SIGKILL");
  };
}

export interface ProtocolParts {
  readonly journal: BatchJournal;
  readonly api: BatchApi;
  /** Where answers go (the run's response cache, or the folder's own when the run has none). */
  readonly store: ResponseStore;
  readonly fault: BatchFaultHook;
  readonly log: (line: string) => void;
  /** Wait between tries of a control call that failed (upload, create, lookup). */
  readonly retryMs: number;
  /** How long a control call may keep failing before the failure is the caller's. */
  readonly outageMs: number;
  readonly signal: AbortSignal;
}

/** Whether a failed call may have reached the server (a lost answer, a 5xx) rather than been refused. */
function ambiguous(error: unknown): boolean {
  const status = (error as { status?: unknown }).status;
  return typeof status !== "number" || status >= 500 || status === 408;
}

/** A refusal that waiting may lift (a rate limit) rather than one that says the request is wrong. */
function transient(error: unknown): boolean {
  const status = (error as { status?: unknown }).status;
  return typeof status !== "number" || status >= 500 || status === 408 || status === 409 || status === 429;
}

/** Steps 1-5 for a new group: returns the batch, recorded in the journal. */
export async function submit(parts: ProtocolParts, key: string, lines: readonly IntentLine[], jsonl: string): Promise<BatchObject> {
  await parts.journal.append({ type: "intent", key, at: Date.now(), lines });
  await parts.fault("intent");
  return continueIntent(parts, { key, at: Date.now(), lines, state: "open" }, jsonl);
}

/** Steps 2-5 for an intent that has no batch yet (its file may be uploaded already). */
async function continueIntent(parts: ProtocolParts, intent: IntentState, jsonl: string): Promise<BatchObject> {
  let fileId = intent.fileId;
  if (!fileId) {
    fileId = await untilDone(parts, "upload the batch file", () => parts.api.upload(`rxsynth-${intent.key}.jsonl`, jsonl));
    await parts.fault("upload");
    await parts.journal.append({ type: "file", key: intent.key, fileId });
    intent.fileId = fileId;
    await parts.fault("file");
  }
  const batch = await createOnce(parts, intent.key, fileId);
  await parts.fault("create");
  await parts.journal.append({ type: "batch", key: intent.key, batchId: batch.id });
  intent.batchId = batch.id;
  await parts.fault("batch");
  return batch;
}

/** Step 4: creates the batch, and never twice: a lost answer is looked up by the key before any new try. */
async function createOnce(parts: ProtocolParts, key: string, fileId: string): Promise<BatchObject> {
  const since = Date.now();
  for (let tries = 1; ; tries++) {
    try {
      return await parts.api.create(fileId, key);
    } catch (error) {
      if (!transient(error) || parts.signal.aborted || Date.now() - since > parts.outageMs) throw error;
      parts.log(`llm batch: creating batch ${key} failed (${errorMessage(error)}); ${ambiguous(error) ? "looking it up before trying again" : "trying again"}`);
      await sleep(parts.retryMs * Math.min(tries, 10), parts.signal);
      if (ambiguous(error)) {
        const found = await untilDone(parts, "list batches", () => parts.api.find(new Set([key]), 0));
        const batch = found.get(key);
        if (batch) return batch;
      }
    }
  }
}

/** A control call (upload, list, download) tried until it succeeds or is refused for good. */
async function untilDone<T>(parts: ProtocolParts, what: string, call: () => Promise<T>): Promise<T> {
  const since = Date.now();
  for (let tries = 1; ; tries++) {
    try {
      return await call();
    } catch (error) {
      if (!transient(error) || parts.signal.aborted || Date.now() - since > parts.outageMs) throw error;
      parts.log(`llm batch: could not ${what} (${errorMessage(error)}); trying again`);
      await sleep(parts.retryMs * Math.min(tries, 10), parts.signal);
    }
  }
}

/**
 * Resume: each open intent without a batch id is either found among the server's batches by its key (and
 * its id recorded) or recorded abandoned. Returns the intents that have a batch now.
 */
export async function recover(parts: ProtocolParts, intents: readonly IntentState[]): Promise<IntentState[]> {
  const unknown = intents.filter((intent) => intent.state === "open" && !intent.batchId);
  if (unknown.length > 0) {
    const since = Math.floor(Math.min(...unknown.map((intent) => intent.at)) / 1000) - 3600;
    const found = await untilDone(parts, "list batches", () => parts.api.find(new Set(unknown.map((intent) => intent.key)), since));
    for (const intent of unknown) {
      const batch = found.get(intent.key);
      if (batch && batch.metadata?.[JOURNAL_KEY_FIELD] === intent.key) {
        await parts.journal.append({ type: "batch", key: intent.key, batchId: batch.id });
        intent.batchId = batch.id;
      } else {
        await parts.journal.append({ type: "abandoned", key: intent.key });
        intent.state = "abandoned";
        if (intent.fileId) await parts.api.remove(intent.fileId);
      }
    }
  }
  return intents.filter((intent) => intent.state === "open" && intent.batchId !== undefined);
}

/** Step 6: the outcome of every line of an ended batch; lines the files do not mention are to be resent. */
export async function download(parts: ProtocolParts, batch: BatchObject, lines: readonly IntentLine[]): Promise<Map<string, LineOutcome>> {
  const files = await Promise.all(
    [batch.output_file_id, batch.error_file_id].filter((id): id is string => typeof id === "string" && id !== "").map((id) => untilDone(parts, `download ${id}`, () => parts.api.content(id))),
  );
  const outcomes = readOutcomes(...files);
  // A batch that failed validation has no files, only errors by line number (1-based, as in the input file).
  const lineErrors = new Map<number, { code?: string; message?: string }>();
  for (const item of batch.errors?.data ?? []) if (typeof item.line === "number") lineErrors.set(item.line, { code: item.code, message: item.message });
  const whole = batch.errors?.data?.find((item) => typeof item.line !== "number");
  lines.forEach((line, position) => {
    if (outcomes.has(line.id)) return;
    const own = lineErrors.get(position + 1);
    if (own && own.code !== "token_limit_exceeded") {
      outcomes.set(line.id, { kind: "refused", customId: line.id, status: undefined, code: own.code, message: own.message ?? own.code ?? "refused" });
      return;
    }
    const why = own ?? whole;
    outcomes.set(line.id, {
      kind: "retry",
      customId: line.id,
      status: undefined,
      code: why?.code ?? `batch_${batch.status}`,
      message: why?.message ?? `the batch ended ${batch.status} without an answer to this request`,
    });
  });
  await parts.fault("download");
  return outcomes;
}

/** Step 7: every answer in the store, on disk; a failure is the run's (a CacheError), never a reason to resend. */
export async function storeAnswers(parts: ProtocolParts, entries: ReadonlyArray<readonly [string, CachedChoice]>): Promise<void> {
  try {
    await Promise.all(entries.map(([key, value]) => parts.store.put(key, value)));
  } catch (error) {
    throw new CacheError(
      `answers of a batch were collected but could not be written to the response cache (${errorMessage(error)}): fix the cache folder (RXSYNTH_CACHE_DIR), then rerun the same command to resume (the batch is collected again)`,
      { cause: error },
    );
  }
  await parts.fault("store");
}

/** Step 8. */
export async function recordDone(parts: ProtocolParts, key: string, status: string, answered: number, retry: readonly string[], refused: number): Promise<void> {
  await parts.journal.append({ type: "done", key, status, answered, retry, refused });
  await parts.fault("done");
}
