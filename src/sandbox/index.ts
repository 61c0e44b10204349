export { runSandboxed, SANDBOX_DEFAULTS } from "./run.ts";
export { sandboxTools, interpreterPath, type SandboxTools } from "./host.ts";
export type { SandboxLanguage, SandboxOptions, SandboxResult, SandboxStatus } from "./types.ts";
