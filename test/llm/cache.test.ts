import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { createProgram } from "../../src/cli/main.ts";
import { CacheError, stopsRun } from "../../src/errors.ts";
import { ResponseCache, defaultCacheDir, type CachedChoice, type ResponseStore } from "../../src/llm/index.ts";
import { useSimulators } from "../support/llm-fixtures.ts";

const exec = promisify(execFile);
const root = join(import.meta.dirname, "..", "..");
const dir = mkdtempSync(join(tmpdir(), "rxsynth-llm-cache-"));
const { sim, llm } = useSimulators();
afterEach(() => {
  vi.restoreAllMocks();
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

const user = (content: string) => [{ role: "user" as const, content }];

describe("the response cache", () => {
  it("stops the call with a CacheError when the answer cannot be stored, having sent the request exactly once", async () => {
    const server = await sim();
    const broken: ResponseStore = {
      get: () => undefined,
      put: () => Promise.reject(new Error("MDB_MAP_FULL: Environment mapsize limit reached")),
      close: async () => {},
    };
    const client = llm(server, { cache: broken, maxRetries: 5 });
    const error = await client.chat({ messages: user("store me") }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CacheError);
    expect(stopsRun(error)).toBe(true);
    expect((error as Error).message).toMatch(/could not be written to the response cache \(MDB_MAP_FULL.*\): .*RXSYNTH_CACHE_DIR.*--no-cache.*rerun the same command/);
    expect(server.stats().requests).toBe(1);
    expect(client.stats()).toMatchObject({ requests: 1, retries: 0 });
    expect(client.stats().completionTokens).toBeGreaterThan(0);
  });

  it("keeps the answers of two endpoints apart in one cache folder", async () => {
    const path = join(dir, "shared");
    const one = await sim({ seed: 1 });
    const two = await sim({ seed: 2 });
    const request = { messages: user("Name a colour."), temperature: 1 };
    const first = llm(one, { cache: path });
    const fromOne = await first.chat(request);
    await first.close();
    const second = llm(two, { cache: path });
    const fromTwo = await second.chat(request);
    expect(fromTwo.cached).toBe(false);
    expect(fromTwo.choices[0]!.text).not.toBe(fromOne.choices[0]!.text);
    expect([one.stats().requests, two.stats().requests]).toEqual([1, 1]);
    // Each endpoint's own answer comes back from the cache.
    expect((await second.chat(request)).choices[0]!.text).toBe(fromTwo.choices[0]!.text);
    const again = llm(one, { cache: path });
    const cachedOne = await again.chat(request);
    expect(cachedOne.cached).toBe(true);
    expect(cachedOne.choices[0]!.text).toBe(fromOne.choices[0]!.text);
    expect([one.stats().requests, two.stats().requests]).toEqual([1, 1]);
  });

  it("keys by endpointId when given, so an endpoint whose URL changes keeps its answers", async () => {
    const path = join(dir, "by-id");
    const before = await sim({ seed: 5 });
    const after = await sim({ seed: 5 });
    const request = { messages: user("Same server, new port.") };
    const a = llm(before, { cache: path, endpointId: "my-server" });
    await a.chat(request);
    await a.close();
    const b = llm(after, { cache: path, endpointId: "my-server" });
    expect((await b.chat(request)).cached).toBe(true);
    expect(after.stats().requests).toBe(0);
  });

  it("lives in RXSYNTH_CACHE_DIR, else $XDG_CACHE_HOME/rxsynth/llm, else ~/.cache/rxsynth/llm; \"off\" turns it off", () => {
    expect(defaultCacheDir({ RXSYNTH_CACHE_DIR: "/data/cache", XDG_CACHE_HOME: "/xdg" })).toBe("/data/cache");
    expect(defaultCacheDir({ XDG_CACHE_HOME: "/xdg" })).toBe("/xdg/rxsynth/llm");
    expect(defaultCacheDir({ HOME: "/home/ada" })).toMatch(/\/\.cache\/rxsynth\/llm$/);
    expect(defaultCacheDir({ RXSYNTH_CACHE_DIR: "off" })).toBe(false);
  });

  it("is used by `cache: true`, in RXSYNTH_CACHE_DIR (this test's own folder)", async () => {
    const server = await sim();
    const client = llm(server, { cache: true });
    await client.chat({ messages: user("where am I kept") });
    await client.close();
    const store = ResponseCache.open(process.env.RXSYNTH_CACHE_DIR!);
    try {
      expect(store.info().entries).toBe(1);
    } finally {
      await store.close();
    }
  });

  it("is a folder, even one whose name has a dot (as mktemp makes them)", async () => {
    const path = mkdtempSync(join(dir, "tmp."));
    const server = await sim();
    const client = llm(server, { cache: path });
    await client.chat({ messages: user("dotted") });
    await client.close();
    expect(readdirSync(path).sort()).toEqual(["data.mdb", "lock.mdb"]);
  });

  it("takes writes from two processes at once and loses none", async () => {
    const path = join(dir, "two-processes");
    // Each process writes one answer at a time (a commit each) for a while, and says when it began and ended.
    const script = (name: string) => `
      import { ResponseCache } from ${JSON.stringify(join(root, "src/llm/cache.ts"))};
      import { existsSync, writeFileSync } from "node:fs";
      const cache = ResponseCache.open(${JSON.stringify(path)});
      // Both start writing only once both are up: a slow start under load must not serialise the windows.
      writeFileSync(${JSON.stringify(path)} + "-${name}.ready", "");
      while (!existsSync(${JSON.stringify(path)} + "-a.ready") || !existsSync(${JSON.stringify(path)} + "-b.ready")) await new Promise((r) => setTimeout(r, 10));
      const first = Date.now();
      let i = 0;
      while (Date.now() - first < 1500 || i < 50) {
        await cache.put("${name}-" + i, { text: "${name} " + i, finishReason: "stop", completionTokens: 1, promptTokens: 1, model: "m", at: Date.now() });
        i++;
      }
      console.log(JSON.stringify({ first, last: Date.now(), written: i }));
      await cache.close();
    `;
    const writer = async (name: string) => {
      const { stdout } = await exec(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script(name)], { cwd: root, timeout: 60_000 });
      return JSON.parse(stdout) as { first: number; last: number; written: number };
    };
    const [a, b] = await Promise.all([writer("a"), writer("b")]);
    // The two writing windows overlap: the writes were concurrent.
    expect(Math.max(a.first, b.first)).toBeLessThan(Math.min(a.last, b.last));
    const store = ResponseCache.open(path);
    try {
      expect(store.info().entries).toBe(a.written + b.written);
      for (const [name, { written }] of [["a", a], ["b", b]] as const) {
        for (const i of [0, Math.floor(written / 2), written - 1]) expect(store.get(`${name}-${i}`)?.text).toBe(`${name} ${i}`);
      }
    } finally {
      await store.close();
    }
  });
});

describe("rxsynth cache", () => {
  const entry = (at: number): CachedChoice => ({ text: "t", finishReason: "stop", completionTokens: 1, promptTokens: 1, model: "m", at });

  async function cli(...args: string[]): Promise<string> {
    const lines: string[] = [];
    vi.spyOn(console, "log").mockImplementation((line: unknown) => void lines.push(String(line)));
    await createProgram().exitOverride().parseAsync(["node", "rxsynth", "cache", ...args]);
    return lines.join("\n");
  }

  it("info says where the cache is, how many answers it holds and its bytes; prune removes old answers, or all", async () => {
    const path = process.env.RXSYNTH_CACHE_DIR!;
    const store = ResponseCache.open(path);
    const now = Date.now();
    await Promise.all([store.put("old-1", entry(now - 40 * 86_400_000)), store.put("old-2", entry(now - 31 * 86_400_000)), store.put("new", entry(now))]);
    await store.close();

    const info = await cli("info");
    expect(info).toContain(`path     ${path}`);
    expect(info).toContain("entries  3");
    expect(info).toMatch(/bytes    \d+ \(/);

    expect(await cli("prune", "--older-than", "30")).toBe(`${path}: removed 2 answers, 1 left`);
    expect(await cli("info")).toContain("entries  1");
    expect(await cli("prune", "--all")).toBe(`${path}: removed 1 answer, 0 left`);
    expect(await cli("info", "--dir", join(dir, "never-made"))).toContain("no response cache yet");
  });

  it("prune wants exactly one of --older-than and --all", async () => {
    await expect(cli("prune")).rejects.toThrow("pass either --older-than <days> or --all");
    await expect(cli("prune", "--all", "--older-than", "3")).rejects.toThrow("pass either --older-than <days> or --all");
  });
});
