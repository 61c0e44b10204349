import type { IncomingMessage } from "node:http";
import { BATCH_FILE_MAX_BYTES, type FileStore } from "./batch-files.ts";
import type { BatchService } from "./batch.ts";
import { HttpError } from "./http-error.ts";

/** What a Files or Batches route answers: JSON, or a file's bytes. */
export type BatchApiReply = { readonly json: unknown } | { readonly bytes: Buffer; readonly contentType: string };

/** Whether `path` belongs to the Files or Batches API (with or without the /v1 prefix, as the chat route). */
export function isBatchApiPath(path: string): boolean {
  return /^(?:\/v1)?\/(?:files|batches)(?:\/|$)/.test(path);
}

function readBytes(req: IncomingMessage, max: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) {
        reject(new HttpError(413, "Request body too large.", "invalid_request_error"));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const raw = (await readBytes(req, 1024 * 1024)).toString("utf8");
  try {
    return JSON.parse(raw);
  } catch {
    throw new HttpError(400, "We could not parse the JSON body of your request.", "invalid_request_error");
  }
}

/**
 * Serves POST/GET /v1/files, GET/DELETE /v1/files/{id}, GET /v1/files/{id}/content, POST/GET /v1/batches,
 * GET /v1/batches/{id} and POST /v1/batches/{id}/cancel; throws the HttpError OpenAI would answer.
 */
export async function serveBatchApi(req: IncomingMessage, files: FileStore, batches: BatchService, onUpload: () => void): Promise<BatchApiReply> {
  const url = new URL(req.url ?? "/", "http://sim");
  const parts = url.pathname.replace(/\/+$/, "").replace(/^\/v1/, "").split("/").slice(1).map(decodeURIComponent);
  const method = req.method ?? "GET";
  const [kind, id, action] = parts;
  const route = `${method} ${kind}${id === undefined ? "" : "/{id}"}${action === undefined ? "" : `/${action}`}`;
  switch (route) {
    case "POST files": {
      // The multipart envelope adds a little to the file's own limit.
      const body = await readBytes(req, BATCH_FILE_MAX_BYTES + 1024 * 1024);
      const file = await files.upload(req.headers["content-type"] ?? "", body);
      onUpload();
      return { json: file };
    }
    case "GET files":
      return { json: files.list(url.searchParams) };
    case "GET files/{id}":
      return { json: files.get(id!) };
    case "DELETE files/{id}":
      return { json: files.delete(id!) };
    case "GET files/{id}/content":
      return { bytes: files.content(id!), contentType: "application/octet-stream" };
    case "POST batches":
      return { json: batches.create(await readJson(req)) };
    case "GET batches":
      return { json: await batches.list(url.searchParams) };
    case "GET batches/{id}":
      return { json: await batches.retrieve(id!) };
    case "POST batches/{id}/cancel":
      return { json: await batches.cancel(id!) };
    default:
      throw new HttpError(404, `Unknown request URL: ${method} ${url.pathname}.`, "invalid_request_error", null, "unknown_url");
  }
}
