// Vitest setup file (runs in every test file): each test gets a response cache folder of its own under
// the temp folder, so no test touches ~/.cache/rxsynth and no two tests share answers by accident (as
// when the cache lived in each run's output folder). A test that wants a shared cache sets
// RXSYNTH_CACHE_DIR itself (vi.stubEnv), or passes `cache` to createLlm.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeEach } from "vitest";

const made: string[] = [];
const fresh = () => {
  const dir = mkdtempSync(join(tmpdir(), "rxsynth-cache-"));
  made.push(dir);
  return dir;
};

// For beforeAll hooks too, which run before any beforeEach.
process.env.RXSYNTH_CACHE_DIR = fresh();
beforeEach(() => {
  process.env.RXSYNTH_CACHE_DIR = fresh();
});
afterAll(() => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
});
