import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Says once when the sandbox tests are skipped (no bubblewrap), and fails the run under CI=true.
    globalSetup: ["test/support/sandbox-setup.ts"],
    // A response cache folder per test under the temp folder, never ~/.cache (see the file).
    setupFiles: ["test/support/cache-dir.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
