import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSimulator, type Simulator } from "../../src/sim/index.ts";
import { CLI, DEADLINE_MS, ROOT, acceptedRows } from "./run-cli.ts";

const exec = promisify(execFile);

// The built-in simulator's server keeps the CLI's event loop alive by itself; an endpoint in another
// process does not, so a step that waits on an unref'd timer ends the process mid-run (exit 13).
describe("a generative graph against an endpoint in another process", () => {
  let sim: Simulator;
  let dir: string;
  beforeAll(async () => {
    sim = await startSimulator({ latencyMs: 5 });
    dir = await mkdtemp(join(tmpdir(), "rxsynth-external-"));
  });
  afterAll(async () => {
    await sim.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("runs quickstart to its target and exits 0", async () => {
    const out = join(dir, "quickstart");
    const env = { ...process.env, NO_COLOR: "1", OPENAI_BASE_URL: sim.url, RXSYNTH_MODEL: "rxsynth-sim", RXSYNTH_CACHE_DIR: join(dir, "cache") };
    const { stderr } = await exec(process.execPath, [CLI, "run", "quickstart", "--set", "target=40", "--out", out, "-q"], {
      cwd: ROOT,
      env,
      timeout: DEADLINE_MS,
      killSignal: "SIGKILL",
    });
    expect(stderr).toMatch(/^complete: 40 accepted/m);
    expect((await acceptedRows(out)).rows).toBe(40);
  });
});
