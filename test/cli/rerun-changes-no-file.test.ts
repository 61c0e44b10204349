import { createHash } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { rxsynth } from "./run-cli.ts";

// "Already complete, nothing to do" is a promise about the folder: not one file in it is rewritten. Two
// ready graphs between them hold every kind of file a run leaves: augment has an LLM (cache.json) and exact
// dedup state, curate exact and near (MinHash LSH) dedup state and diversity state.

let root: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "rxsynth-rerun-"));
  // The response cache stays in this test's folder, not the user's.
  vi.stubEnv("RXSYNTH_CACHE_DIR", join(root, "llm-cache"));
});

afterAll(async () => {
  vi.unstubAllEnvs();
  if (root) await rm(root, { recursive: true, force: true });
});

/** Every file under `folder`: its bytes' hash and its modification time. */
async function snapshot(folder: string): Promise<Record<string, { sha256: string; mtimeMs: number }>> {
  const files: Record<string, { sha256: string; mtimeMs: number }> = {};
  for (const entry of await readdir(folder, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    files[relative(folder, path)] = { sha256: createHash("sha256").update(await readFile(path)).digest("hex"), mtimeMs: (await stat(path)).mtimeMs };
  }
  return files;
}

describe("a rerun of a finished folder", () => {
  for (const { graph, args, expected } of [
    { graph: "augment", args: ["--set", "count=10"], expected: ["cache.json", "state/dedup_texts.bin"] },
    { graph: "curate", args: [], expected: ["state/exact_dedup.bin", "state/near_dedup.bin"] },
  ]) {
    it(`changes no file's bytes or modification time (${graph}: ${expected.join(", ")} included)`, { timeout: 180_000 }, async () => {
      const out = join(root, graph);
      const first = await rxsynth(["run", graph, ...args, "--out", out, "-q"]);
      expect(first.code, first.stderr).toBe(0);
      const before = await snapshot(out);
      for (const file of [...expected, "manifest.json", "report.html", "README.md"]) expect(Object.keys(before), file).toContain(file);
      const again = await rxsynth(["run", graph, ...args, "--out", out, "-q"]);
      expect(again.code, again.stderr).toBe(0);
      expect(again.stdout + again.stderr).toContain("already complete, nothing to do");
      expect(await snapshot(out)).toEqual(before);
    });
  }
});
