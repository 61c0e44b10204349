export { startSimulator, SIMULATOR_DEFAULTS } from "./server.ts";
export type { Simulator, SimulatorOptions, SimulatorStats, FaultRates, DownOptions } from "./server.ts";
export { registerSimCommand, parseFaults } from "./cli.ts";
export { valueFromSchema } from "./schema.ts";
export { SIM_REFUSAL } from "./answers.ts";
export { SIM_PROFILES, simProfile, type SimProfileName, type ReasoningPlacement } from "./profiles.ts";
export { BatchService, type BatchStats, type BatchTiming, type ChatAnswer } from "./batch.ts";
export { validateInput, type BatchError, type BatchLine } from "./batch-input.ts";
export { FileStore, type SimFileObject } from "./batch-files.ts";
