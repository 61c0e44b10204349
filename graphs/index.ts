// The ready graphs, for users who extend one (`extendGraph(selfInstruct, { insert: [...] })`) or run one
// from code (`run(await buildGraph(selfInstruct, { target: 50 }), { out })`). `rxsynth graphs` lists them.
export { default as augment } from "./augment.ts";
export { default as backTranslation } from "./back-translation.ts";
export { default as codeExec } from "./code-exec.ts";
export { default as curate } from "./curate.ts";
export { default as distillRationales } from "./distill-rationales.ts";
export { default as evolInstruct } from "./evol-instruct.ts";
export { default as instructionBacktranslation } from "./instruction-backtranslation.ts";
export { default as mathVerified } from "./math-verified.ts";
export { default as mix } from "./mix.ts";
export { default as multiTurn } from "./multi-turn.ts";
export { default as preferencePairs } from "./preference-pairs.ts";
export { default as qaFromDocuments } from "./qa-from-documents.ts";
export { default as quickstart } from "./quickstart.ts";
export { default as selfInstruct } from "./self-instruct.ts";
export { default as templateRecords } from "./template-records.ts";
export { openEndpoint, type Endpoint, type EndpointOptions } from "./lib/endpoint.ts";
