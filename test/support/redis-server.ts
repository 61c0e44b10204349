// A redis-server of the tests' and benchmarks' own, on a free port with its AOF in a folder they own: the
// machine's 6379 is left alone. Restartable on the same port and data, as a Redis restart mid-run is.
import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { Redis } from "ioredis";
import { findExecutable } from "../../src/sandbox/host.ts";
import { inCi } from "./sandbox.ts";

/**
 * Without redis-server the scale-out tests are skipped with one line saying so, except under CI=true,
 * where they run and fail: a CI machine cannot pass by skipping.
 */
export const skipRedis = findExecutable("redis-server") === undefined && !inCi;
export const REDIS_SKIPPED_MESSAGE = "scale-out tests skipped: redis-server is not installed; apt-get install redis-server";

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  const { port } = server.address() as { port: number };
  await new Promise((done) => server.close(done));
  return port;
}

export class RedisServer {
  private process: ChildProcess | undefined;

  private constructor(
    readonly port: number,
    private readonly dir: string,
  ) {}

  /** Started, answering PING, with AOF on and every write synced. */
  static async start(dir: string): Promise<RedisServer> {
    const server = new RedisServer(await freePort(), dir);
    await server.restart();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts it again (after `stop`) on the same port and AOF. */
  async restart(): Promise<void> {
    this.process = spawn("redis-server", ["--port", String(this.port), "--bind", "127.0.0.1", "--dir", this.dir, "--appendonly", "yes", "--appendfsync", "always", "--save", ""], {
      stdio: "ignore",
    });
    for (let i = 0; i < 100; i++) {
      if (await this.ping()) return;
      await new Promise((done) => setTimeout(done, 50));
    }
    throw new Error(`redis-server did not start on port ${this.port}`);
  }

  /** SIGTERM (Redis syncs its AOF and exits), resolved once it has exited. */
  async stop(): Promise<void> {
    const running = this.process;
    if (!running || running.exitCode !== null) return;
    const exited = new Promise((done) => running.once("exit", done));
    running.kill("SIGTERM");
    await exited;
  }

  /** One command on the running server, on a connection of its own. */
  async call(command: string, ...args: string[]): Promise<unknown> {
    const client = new Redis(this.url, { maxRetriesPerRequest: 1 });
    try {
      return await client.call(command, ...args);
    } finally {
      client.disconnect();
    }
  }

  /** Redis commands run since it started (INFO commandstats), those inside scripts included. */
  async commands(): Promise<number> {
    return (await this.commandCalls()).reduce((sum, [, calls]) => sum + calls, 0);
  }

  /** Scripts run since it started (EVALSHA and EVAL calls): each is one request of a client, whatever it does inside. */
  async scripts(): Promise<number> {
    return (await this.commandCalls()).filter(([name]) => name === "evalsha" || name === "eval").reduce((sum, [, calls]) => sum + calls, 0);
  }

  private async commandCalls(): Promise<[string, number][]> {
    const client = new Redis(this.url, { maxRetriesPerRequest: 1 });
    try {
      const info = await client.info("commandstats");
      return [...info.matchAll(/cmdstat_([^:]+):calls=(\d+)/g)].map((match) => [match[1]!, Number(match[2])]);
    } finally {
      client.disconnect();
    }
  }


  private async ping(): Promise<boolean> {
    const client = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    client.on("error", () => {});
    try {
      await client.connect();
      return (await client.ping()) === "PONG";
    } catch {
      return false;
    } finally {
      client.disconnect();
    }
  }
}
