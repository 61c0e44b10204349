import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, vi } from "vitest";
import {
  buildGraph,
  listShardFiles,
  run,
  startSimulator,
  type GraphCustomization,
  type GraphDefinition,
  type GraphOptionValues,
  type RunOptions,
  type RunSummary,
  type Simulator,
  type SimulatorOptions,
} from "../../src/index.ts";
import { readParquetRows } from "./parquet.ts";

/** One provenance step as hyparquet reads it back: absent values are null. */
export type OutputStep = {
  op: string;
  version: string | null;
  model: string | null;
  note: string | null;
  prompt_tokens: number | null;
  completion_tokens: number | null;
};

/** Why a row was rejected, as the rejects shards store it. */
export type OutputReject = {
  operator: string;
  reason: string;
  value: number | null;
  threshold: number | null;
  message: string | null;
  raw: string | null;
  duplicate_of: string | null;
};

/** A row of an accepted (`part`) or rejects shard, read back by an independent reader. */
export type OutputRow = {
  id: string;
  data: Record<string, unknown>;
  scores: Record<string, number>;
  provenance: { origin: string; source: string; depth: number; parents: string[]; steps: OutputStep[] };
  /** Only on rows of the rejects shards. */
  reject?: OutputReject;
};

/** Every row of a run folder's shards with this prefix ("part": accepted, "rejects": rejected), in shard order. */
export async function readShards(out: string, prefix: "part" | "rejects"): Promise<OutputRow[]> {
  const files = await listShardFiles(out, { prefix });
  return (await Promise.all(files.map(readParquetRows))).flat() as OutputRow[];
}

export interface GraphRunOptions {
  /** Run into this folder (to resume a run); default a new temp folder. */
  readonly out?: string;
  readonly customization?: GraphCustomization;
  /** Passed to `run` beside `out` and `log`. */
  readonly run?: Omit<RunOptions, "out" | "log">;
}

export interface GraphRun {
  readonly summary: RunSummary;
  readonly out: string;
  /** What the graph said while building and running, line by line. */
  readonly logs: string[];
  readonly rows: OutputRow[];
  readonly rejects: OutputRow[];
}

/**
 * Registers the hooks a graph test file needs and returns its helpers. Each test starts with
 * OPENAI_BASE_URL empty, so graphs use the built-in simulator whatever the shell exports (a
 * `useScriptedModel` inside a describe points it at its server instead); the temp folders a test made
 * are removed after it.
 */
export function useGraphRuns() {
  const dirs: string[] = [];
  beforeEach(() => {
    vi.stubEnv("OPENAI_BASE_URL", "");
  });
  afterEach(async () => {
    vi.unstubAllEnvs();
    await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
  });

  /** A new empty folder, removed after the test. */
  async function tempDir(name = "graph"): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), `rxsynth-${name}-`));
    dirs.push(dir);
    return dir;
  }

  /** Builds the graph with `overrides`, runs it to its end and reads back the rows it wrote. */
  async function runGraph<O extends GraphOptionValues>(
    definition: GraphDefinition<O>,
    overrides: Partial<O> = {},
    options: GraphRunOptions = {},
  ): Promise<GraphRun> {
    const out = options.out ?? (await tempDir(definition.name));
    const logs: string[] = [];
    const log = (line: string) => logs.push(line);
    const built = await buildGraph(definition, overrides, { log, out }, options.customization);
    const summary = await run(built, { ...options.run, out, log });
    return { summary, out, logs, rows: await readShards(out, "part"), rejects: await readShards(out, "rejects") };
  }

  return { runGraph, tempDir };
}

export type ChatMessage = { role: string; content: string };
export type ChatRequest = { model: string; n?: number; messages: ChatMessage[] };

/**
 * A scripted OpenAI-compatible chat endpoint over real HTTP for the tests of the describe block that
 * calls it: started before them, OPENAI_BASE_URL set to it for each test, closed after them. `reply`
 * gives the answer's content, or one content per choice when a request asks for several (`n`).
 * `requests` holds every request received, oldest first.
 */
export function useScriptedModel(reply: (request: ChatRequest) => string | readonly string[]): { readonly requests: ChatRequest[] } {
  const requests: ChatRequest[] = [];
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk: Buffer) => (body += chunk.toString("utf8")));
    req.on("end", () => {
      if (req.method !== "POST") {
        // Chat completions only: the client's GET /models finds no family to start from.
        res.writeHead(404, { "content-type": "application/json" });
        res.end(JSON.stringify({ error: { message: "not found" } }));
        return;
      }
      const request = JSON.parse(body) as ChatRequest;
      requests.push(request);
      const answer = reply(request);
      const contents = typeof answer === "string" ? [answer] : answer;
      res.writeHead(200, { "content-type": "application/json" });
      res.end(
        JSON.stringify({
          id: `chatcmpl-${requests.length}`,
          object: "chat.completion",
          created: 0,
          model: request.model,
          choices: contents.map((content, index) => ({ index, message: { role: "assistant", content }, finish_reason: "stop" })),
          usage: { prompt_tokens: 5, completion_tokens: 5, total_tokens: 10 },
        }),
      );
    });
  });
  let url = "";
  beforeAll(async () => {
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  });
  // After useGraphRuns' reset, which vitest runs first as it was registered in an enclosing block.
  beforeEach(() => {
    vi.stubEnv("OPENAI_BASE_URL", url);
  });
  afterEach(() => {
    vi.unstubAllEnvs();
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });
  return { requests };
}

/** A chat request as the endpoint received it, with its messages' text joined for searching. */
export interface RecordedRequest {
  readonly body: Readonly<Record<string, unknown>>;
  readonly text: string;
}

/**
 * The built-in simulator, over real HTTP, recording every chat request it receives, for the tests of the
 * describe block that calls it: started before them, OPENAI_BASE_URL set to it and the record emptied
 * for each test, closed after them. Lets a test pin what a graph sends (sampling settings, prompts).
 */
export function useRecordingSimulator(options: SimulatorOptions = {}): { readonly requests: RecordedRequest[] } {
  const requests: RecordedRequest[] = [];
  let sim: Simulator | undefined;
  beforeAll(async () => {
    sim = await startSimulator({
      ...options,
      onChatRequest: (body) => requests.push({ body, text: (body.messages as Array<{ content: string }>).map((message) => message.content).join("\n") }),
    });
  });
  beforeEach(() => {
    requests.length = 0;
    vi.stubEnv("OPENAI_BASE_URL", sim!.url);
  });
  afterEach(() => {
    vi.unstubAllEnvs();
  });
  afterAll(async () => {
    await sim?.close();
  });
  return { requests };
}
