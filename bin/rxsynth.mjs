#!/usr/bin/env node
// Graph files are TypeScript: tsx's loader lets `rxsynth run graphs/x.ts` import them with no build step.
import { register as registerHooks } from "node:module";
import { register } from "tsx/esm/api";

register();
// Registered after tsx, so it runs first: a graph file loads as an ES module even where the user's
// package.json says "type": "commonjs" (see graph-format-hooks.mjs).
registerHooks("../src/cli/graph-format-hooks.mjs", import.meta.url);
globalThis[Symbol.for("rxsynth.graphFormatHooks")] = true;
await import("../src/cli/main.ts");
