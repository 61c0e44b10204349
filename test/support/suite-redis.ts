// A test file's own redis-server and client (beforeAll/afterAll), for the tests of the shared state's
// scripts; kept apart from redis-server.ts, which the benchmarks import outside vitest.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll } from "vitest";
import { defineScaleCommands } from "../../src/scale/queue.ts";
import { REDIS_SKIPPED_MESSAGE, RedisServer, skipRedis } from "./redis-server.ts";
/**
 * A suite's own redis-server and one client of it with the scale-out scripts defined, started before its
 * tests and stopped after them (registers beforeAll/afterAll; call at the top of a test file).
 */
export function suiteRedis(prefix: string): { readonly server: RedisServer; readonly client: Redis } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  let server: RedisServer | undefined;
  let client: Redis | undefined;
  if (skipRedis) console.warn(REDIS_SKIPPED_MESSAGE);
  beforeAll(async () => {
    if (skipRedis) return;
    server = await RedisServer.start(dir);
    client = new Redis(server.url, { enableAutoPipelining: true });
    defineScaleCommands(client);
  }, 30_000);
  afterAll(async () => {
    await client?.quit().catch(() => client?.disconnect());
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    get server() {
      if (!server) throw new Error("the suite's redis-server is not started (skipRedis, or outside a test)");
      return server;
    },
    get client() {
      if (!client) throw new Error("the suite's redis-server is not started (skipRedis, or outside a test)");
      return client;
    },
  };
}
