import { join } from "node:path";
import { ConfigError } from "../../errors.ts";
import type { GraphEnvironment } from "../../graph.ts";
import { createLlm, type Llm, type LlmOptions } from "../client.ts";
import { BATCH_DEFAULTS, createBatchLlm, type BatchLlmOptions } from "./batch-llm.ts";
import { readJournal, replayJournal } from "./journal.ts";
import type { BatchBoard } from "./board.ts";

/** Where a run folder keeps its batch journal (and, with no response cache, its batch answers). */
export const BATCH_STATE_FOLDER = "state";

/**
 * Batch mode for a graph's endpoint (`rxsynth run --batch`, or `GraphEnvironment.batch`): its LLM calls go
 * through the provider's Batch API at the batch price. Not part of the run's identity: the answers are the
 * same model's, so a folder may be resumed online, and batches it left in flight are collected by a
 * later `--batch` resume (until then they are not lost: the journal keeps them).
 */
export interface BatchMode {
  /** The run's batch figures, for the progress view. */
  readonly board?: BatchBoard;
  /** Tuning over BATCH_DEFAULTS: sizes, linger, poll, resubmits, the queue limit, the price factor. */
  readonly options?: Partial<
    Pick<BatchLlmOptions, "maxBatchRequests" | "maxBatchTokens" | "maxEnqueuedTokens" | "lingerMs" | "maxWaitMs" | "pollMs" | "maxResubmits" | "batchPriceFactor" | "outageSeconds">
  >;
}

/** The built-in simulator completes a batch in a fraction of a second: polled often, so a graph runs in seconds. */
const SIMULATOR_TIMING = { pollMs: 50, lingerMs: 100 } as const;

/**
 * Makes the graph's client: createLlm, or in batch mode a batch client over the same endpoint, cache key
 * and prices. `(batchOrOnline(env))({ ...createLlm's options })`.
 */
export function batchOrOnline(env: GraphEnvironment): (options: LlmOptions) => Llm {
  const mode = env.batch;
  if (!mode) {
    const open = env.out ? openBatches(env.out) : 0;
    if (open > 0) {
      env.log(`${open} batch${open === 1 ? "" : "es"} this folder submitted in batch mode ${open === 1 ? "is" : "are"} still open: resume with --batch to collect ${open === 1 ? "it" : "them"} (paid for); meanwhile ${open === 1 ? "its" : "their"} requests are sent online`);
    }
    return createLlm;
  }
  return (options) => {
    if (!env.out) throw new ConfigError("batch mode needs an output folder (--out): the batch journal lives there, so a resumed run never submits twice");
    const given = options.baseURL ?? process.env.OPENAI_BASE_URL;
    const urls = given === undefined ? [] : typeof given === "string" ? given.split(",").map((url) => url.trim()).filter(Boolean) : given.map((server) => (typeof server === "string" ? server : server.url));
    if (urls.length > 1) throw new ConfigError(`batch mode sends to one server, and the endpoint names several (${urls.join(", ")}): name one in OPENAI_BASE_URL, or run without --batch`);
    const baseURL = urls[0];
    return createBatchLlm({
      model: options.model,
      baseURL,
      apiKey: options.apiKey,
      endpointId: options.endpointId,
      cache: options.cache,
      seed: options.seed,
      prices: options.prices,
      simulator: options.simulator,
      headers: options.headers,
      family: options.family,
      supportsJsonSchema: options.supportsJsonSchema,
      log: options.log,
      stateDir: join(env.out, BATCH_STATE_FOLDER),
      board: mode.board,
      ...(options.simulator ? SIMULATOR_TIMING : {}),
      ...mode.options,
    });
  };
}

/** Batches a folder's journal holds that were submitted and not yet collected. */
export function openBatches(out: string): number {
  const { intents } = replayJournal(readJournal(join(out, BATCH_STATE_FOLDER, BATCH_DEFAULTS.journalFile)));
  let open = 0;
  for (const intent of intents.values()) if (intent.state === "open" && intent.batchId !== undefined) open++;
  return open;
}
