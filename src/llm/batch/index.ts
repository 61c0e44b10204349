export { createBatchLlm, BATCH_DEFAULTS } from "./batch-llm.ts";
export type { BatchLlm, BatchLlmOptions } from "./batch-llm.ts";
export { BatchBoard, batchLine } from "./board.ts";
export type { BatchFigures } from "./board.ts";
export { BATCH_STEPS, batchFaultsFromEnvironment } from "./protocol.ts";
export type { BatchStep, BatchFaultHook } from "./protocol.ts";
export { readJournal, replayJournal } from "./journal.ts";
export type { JournalRecord } from "./journal.ts";
