import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { ConfigError } from "../errors.ts";
import { createRunMetrics, type MetricsFeed } from "./prometheus-metrics.ts";

export { createRunMetrics, type MetricsFeed, type RunMetrics, type RunMetricsOptions } from "./prometheus-metrics.ts";

export interface MetricsServerOptions {
  /** 0 picks a free port. */
  readonly port: number;
  /** Default 127.0.0.1: the figures name the graph and its endpoints, so they are not served beyond the host unless asked. */
  readonly host?: string;
  /** Read at every scrape: the run's progress now (RunOptions.live gives one). */
  readonly feed: () => MetricsFeed;
  /** Put on every series (e.g. `{ graph, worker }`). */
  readonly labels?: Record<string, string>;
}

export interface MetricsServer {
  /** Where to scrape, e.g. http://127.0.0.1:9464/metrics (the port the system picked when asked for 0). */
  readonly url: string;
  /** Stops listening and ends open connections (a scraper's keep-alive would hold the process otherwise). */
  close(): Promise<void>;
}

/** Serves the run's metrics in the Prometheus text format at `/metrics`; any other path is 404. */
export async function serveMetrics(options: MetricsServerOptions): Promise<MetricsServer> {
  const host = options.host ?? "127.0.0.1";
  const metrics = createRunMetrics({ feed: options.feed, ...(options.labels ? { labels: options.labels } : {}) });
  const server = createServer((request, response) => void answer(request, response));

  async function answer(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const path = (request.url ?? "/").split("?")[0];
    if (path !== "/metrics" || (request.method !== "GET" && request.method !== "HEAD")) {
      response.writeHead(404, { "content-type": "text/plain; charset=utf-8" }).end("not found: scrape /metrics\n");
      return;
    }
    try {
      const body = await metrics.scrape();
      response.writeHead(200, { "content-type": metrics.registry.contentType }).end(request.method === "HEAD" ? undefined : body);
    } catch (error) {
      // A feed that throws is the run's problem, not the scraper's: answer 500 and keep serving.
      response.writeHead(500, { "content-type": "text/plain; charset=utf-8" }).end(`${error instanceof Error ? error.message : String(error)}\n`);
    }
  }

  await new Promise<void>((resolve, reject) => {
    const refused = (error: NodeJS.ErrnoException) => {
      const why = error.code === "EADDRINUSE" ? "is in use" : error.code === "EACCES" ? "needs privileges" : error.message;
      reject(new ConfigError(`metrics port ${options.port} on ${host} ${why}: choose another, or 0 for a free one`, { cause: error }));
    };
    server.once("error", refused);
    server.listen(options.port, host, () => {
      server.off("error", refused);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const shownHost = host.includes(":") ? `[${host}]` : host;
  let closed: Promise<void> | undefined;
  return {
    url: `http://${shownHost}:${port}/metrics`,
    close: () =>
      (closed ??= new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      })),
  };
}
