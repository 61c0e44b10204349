import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { childSampleId, readManifest } from "../../src/index.ts";
import { RECORDS } from "../fixtures/resumable-graph.ts";
import { readParquetRows } from "../support/parquet.ts";

const CLI = join(import.meta.dirname, "..", "..", "bin", "rxsynth.mjs");
const GRAPH = join(import.meta.dirname, "..", "fixtures", "resumable-graph.ts");

let out: string;
beforeEach(async () => {
  out = await mkdtemp(join(tmpdir(), "rxsynth-resume-"));
});
afterEach(async () => {
  await rm(out, { recursive: true, force: true });
});

async function committedIds(): Promise<string[]> {
  const files = (await readdir(out)).filter((name) => name.endsWith(".parquet")).sort();
  const ids: string[] = [];
  for (const file of files) for (const row of await readParquetRows(join(out, file))) ids.push(row.id as string);
  return ids;
}

function expectedIds(): string[] {
  const ids: string[] = [];
  for (let n = 0; n < RECORDS; n++) for (const half of [0, 1]) ids.push(childSampleId(`numbers:${n}`, "pair", half));
  return ids;
}

describe("resume after a crash", () => {
  it("holds every expected id exactly once after a SIGKILL part-way and a second run", async () => {
    const args = [CLI, "run", GRAPH, "--out", out, "--checkpoint-rows", "100", "--quiet"];
    const child = spawn(process.execPath, args, { stdio: "ignore" });
    // Kill it once at least two checkpoints have committed shards, while it is still working.
    const deadline = Date.now() + 20_000;
    let killedMidRun = false;
    while (Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 25));
      const manifest = await readManifest(out).catch(() => undefined);
      if (manifest && manifest.shards.length >= 4 && !manifest.complete) {
        child.kill("SIGKILL");
        killedMidRun = true;
        break;
      }
      if (child.exitCode !== null) break;
    }
    await new Promise((resolve) => child.once("exit", resolve).once("error", resolve) && child.exitCode !== null && resolve(null));
    expect(killedMidRun).toBe(true);
    const before = (await readManifest(out))!;
    expect(before.complete).toBe(false);

    const second = spawnSync(process.execPath, [CLI, "run", GRAPH, "--out", out, "--quiet"], { encoding: "utf8" });
    expect(second.status, second.stderr).toBe(0);
    expect(second.stderr).toContain("(resumed)");

    const ids = await committedIds();
    const expected = expectedIds();
    expect(ids.length).toBe(expected.length);
    expect(new Set(ids)).toEqual(new Set(expected));
    expect((await readManifest(out))!.complete).toBe(true);
    expect((await readdir(out)).some((name) => name.endsWith(".tmp"))).toBe(false);
  }, 40_000);

  it("removes shards a crash left outside the manifest before writing again", async () => {
    const first = spawnSync(process.execPath, [CLI, "run", GRAPH, "--out", out, "--limit", "300", "--quiet"], { encoding: "utf8" });
    expect(first.status, first.stderr).toBe(0);
    // What a kill between renaming a shard and writing the manifest leaves behind.
    const stray = join(out, "part-00099.parquet");
    const temporary = join(out, ".part-00100.parquet.tmp");
    await import("node:fs/promises").then((fs) => Promise.all([fs.writeFile(stray, "partial"), fs.writeFile(temporary, "partial")]));
    const second = spawnSync(process.execPath, [CLI, "run", GRAPH, "--out", out, "--quiet"], { encoding: "utf8" });
    expect(second.status, second.stderr).toBe(0);
    expect(existsSync(stray)).toBe(false);
    expect(existsSync(temporary)).toBe(false);
    const ids = await committedIds();
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.length).toBe(RECORDS * 2);
  }, 40_000);
});

describe("stopping with a signal", () => {
  it("on SIGTERM stops pulling, commits what is done, prints how to resume and exits 143", async () => {
    const child = spawn(process.execPath, [CLI, "run", GRAPH, "--out", out, "--checkpoint-rows", "100", "--quiet"], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 25));
      const manifest = await readManifest(out).catch(() => undefined);
      if (manifest && manifest.shards.length >= 2) break;
    }
    child.kill("SIGTERM");
    const code = await new Promise<number | null>((resolve) => child.once("exit", (exitCode) => resolve(exitCode)));
    expect(code).toBe(143);
    expect(stderr).toMatch(/SIGTERM: stopping/);
    expect(stderr).toMatch(/Resume with: rxsynth run .*resumable-graph\.ts --out/);
    const manifest = (await readManifest(out))!;
    expect(manifest.complete).toBe(false);
    const ids = await committedIds();
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.length).toBe(manifest.shards.reduce((sum, shard) => sum + shard.rows, 0));
  }, 30_000);
});
