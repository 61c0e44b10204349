import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll } from "vitest";
import { createLlm, type Llm, type LlmOptions } from "../../src/llm/index.ts";
import { startSimulator, type Simulator, type SimulatorOptions } from "../../src/sim/index.ts";

/**
 * Simulators and clients for one test file, all closed after it: `sim()` starts a simulator (1 ms latency
 * unless told otherwise), `llm(target)` a client with short backoffs against a simulator or a base URL.
 */
export function useSimulators(clientDefaults: Partial<LlmOptions> = {}) {
  const sims: Simulator[] = [];
  const clients: Llm[] = [];
  afterAll(async () => {
    await Promise.all(clients.map((client) => client.close()));
    await Promise.all(sims.map((started) => started.close()));
  });
  return {
    async sim(options: SimulatorOptions = {}): Promise<Simulator> {
      const started = await startSimulator({ latencyMs: 1, ...options });
      sims.push(started);
      return started;
    },
    llm(target: Simulator | string, options: Partial<LlmOptions> = {}): Llm {
      const baseURL = typeof target === "string" ? target : target.url;
      const client = createLlm({ baseURL, model: "sim-1", backoffBaseMs: 5, backoffMaxMs: 50, ...clientDefaults, ...options });
      clients.push(client);
      return client;
    },
  };
}

/** A base URL where nothing listens: a port that was free a moment ago. */
export async function closedPort(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return `http://127.0.0.1:${port}/v1`;
}
