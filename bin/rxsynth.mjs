#!/usr/bin/env node
// Graph files are TypeScript: tsx's loader lets `rxsynth run graphs/x.ts` import them with no build step.
import { register as registerHooks } from "node:module";
import { setFlagsFromString } from "node:v8";
import { register } from "tsx/esm/api";

// Before any sample exists. With the budget's worth of samples alive between two scavenges, V8's
// allocation-site pretenuring may decide early that samples are long-lived and allocate them in old space
// for the rest of the run: about one run in three then streams 4x slower (see benchmarks/engine.ts).
setFlagsFromString("--no-allocation-site-pretenuring");

register();
// Registered after tsx, so it runs first: a graph file loads as an ES module even where the user's
// package.json says "type": "commonjs" (see graph-format-hooks.mjs).
registerHooks("../src/cli/graph-format-hooks.mjs", import.meta.url);
globalThis[Symbol.for("rxsynth.graphFormatHooks")] = true;
await import("../src/cli/main.ts");
