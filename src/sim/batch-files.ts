import { stableHash } from "../hash.ts";
import { HttpError } from "./http-error.ts";

/** OpenAI's File object, as GET /v1/files/{id} answers it. */
export interface SimFileObject {
  readonly id: string;
  readonly object: "file";
  readonly bytes: number;
  readonly created_at: number;
  readonly filename: string;
  readonly purpose: string;
  /** Deprecated upstream, still sent: always "processed" here (upload and processing are one step). */
  readonly status: "processed";
  readonly expires_at: number | null;
  readonly status_details: null;
}

interface StoredFile {
  readonly meta: SimFileObject;
  readonly content: Buffer;
}

/** The purposes OpenAI's upload accepts; the *_output purposes are the server's own files. */
const UPLOAD_PURPOSES = ["assistants", "batch", "fine-tune", "vision", "user_data", "evals"];
/** OpenAI's limit for a batch input file. */
export const BATCH_FILE_MAX_BYTES = 200 * 1024 * 1024;
/** Files of purpose batch expire after 30 days unless told otherwise (OpenAI's default). */
const BATCH_FILE_TTL_S = 30 * 24 * 3_600;

/** The simulator's uploaded and generated files, in memory for the server's life. */
export class FileStore {
  private readonly files = new Map<string, StoredFile>();
  private counter = 0;

  constructor(private readonly seed: number) {}

  add(content: Buffer, filename: string, purpose: string): SimFileObject {
    const createdAt = Math.floor(Date.now() / 1_000);
    const meta: SimFileObject = {
      id: `file-${stableHash(`${this.seed}\u0000file\u0000${++this.counter}`, 24)}`,
      object: "file",
      bytes: content.length,
      created_at: createdAt,
      filename,
      purpose,
      status: "processed",
      expires_at: purpose === "batch" ? createdAt + BATCH_FILE_TTL_S : null,
      status_details: null,
    };
    this.files.set(meta.id, { meta, content });
    return meta;
  }

  /** The file, or the 404 OpenAI answers for an unknown id. */
  get(id: string): SimFileObject {
    return this.stored(id).meta;
  }

  content(id: string): Buffer {
    return this.stored(id).content;
  }

  delete(id: string): { id: string; object: "file"; deleted: true } {
    this.stored(id);
    this.files.delete(id);
    return { id, object: "file", deleted: true };
  }

  /** Newest first unless `order` is "asc", as OpenAI lists files. */
  list(query: URLSearchParams) {
    const purpose = query.get("purpose");
    let all = [...this.files.values()].map((f) => f.meta).filter((f) => !purpose || f.purpose === purpose);
    if (query.get("order") !== "asc") all = all.reverse();
    return page(all, query, 10_000);
  }

  /** Parses POST /v1/files (multipart: `file` and `purpose`) and stores the file. */
  async upload(contentType: string, body: Buffer): Promise<SimFileObject> {
    if (!contentType.toLowerCase().startsWith("multipart/form-data")) {
      throw new HttpError(400, "The request must be multipart/form-data with the fields 'file' and 'purpose'.", "invalid_request_error");
    }
    let form: FormData;
    try {
      form = await new Response(new Blob([new Uint8Array(body)]), { headers: { "content-type": contentType } }).formData();
    } catch {
      throw new HttpError(400, "We could not parse the multipart body of your request.", "invalid_request_error");
    }
    const purpose = form.get("purpose");
    const file = form.get("file");
    if (typeof purpose !== "string" || purpose.length === 0) throw new HttpError(400, "Missing required parameter: 'purpose'.", "invalid_request_error", "purpose");
    if (!UPLOAD_PURPOSES.includes(purpose)) {
      throw new HttpError(400, `Invalid value for 'purpose': '${purpose}'. Expected one of ${UPLOAD_PURPOSES.join(", ")}.`, "invalid_request_error", "purpose");
    }
    if (file === null || typeof file === "string") throw new HttpError(400, "Missing required parameter: 'file'.", "invalid_request_error", "file");
    const content = Buffer.from(await file.arrayBuffer());
    if (purpose === "batch") {
      if (!file.name.endsWith(".jsonl")) throw new HttpError(400, "Invalid file format for Batch API. Must be .jsonl", "invalid_request_error");
      if (content.length > BATCH_FILE_MAX_BYTES) throw new HttpError(400, "File is too large for the Batch API: the limit is 200 MB.", "invalid_request_error", "file");
    }
    return this.add(content, file.name, purpose);
  }

  private stored(id: string): StoredFile {
    const file = this.files.get(id);
    if (!file) throw new HttpError(404, `No such File object: ${id}`, "invalid_request_error", "id");
    return file;
  }
}

/** A cursor page as OpenAI lists objects: `after` an id, at most `limit` (1..max, default 20). */
export function page<T extends { id: string }>(items: readonly T[], query: URLSearchParams, max: number) {
  const limitText = query.get("limit");
  const limit = limitText === null ? 20 : Number(limitText);
  if (!Number.isInteger(limit) || limit < 1 || limit > max) {
    throw new HttpError(400, `Invalid 'limit': expected an integer between 1 and ${max}, got '${limitText}'.`, "invalid_request_error", "limit");
  }
  const after = query.get("after");
  // An `after` that names no listed object (deleted, or another server's) leaves nothing after it.
  const start = after ? (items.findIndex((item) => item.id === after) + 1 || items.length) : 0;
  const data = items.slice(start, start + limit);
  return {
    object: "list" as const,
    data,
    first_id: data[0]?.id ?? null,
    last_id: data[data.length - 1]?.id ?? null,
    has_more: start + data.length < items.length,
  };
}
