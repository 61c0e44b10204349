#!/usr/bin/env node
// Graph files are TypeScript: tsx's loader lets `rxsynth run graphs/x.ts` import them with no build step.
import { register } from "tsx/esm/api";

register();
await import("../src/cli/main.ts");
