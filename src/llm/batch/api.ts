import type OpenAI from "openai";
import { lazyModule } from "../lazy.ts";
import { BATCH_ENDPOINT } from "./lines.ts";

const openai = lazyModule<typeof import("openai")>("openai");

/** The batch fields rxsynth reads (the SDK's Batch type, narrowed). */
export type BatchObject = Pick<
  OpenAI.Batches.Batch,
  "id" | "status" | "output_file_id" | "error_file_id" | "errors" | "metadata" | "request_counts" | "created_at"
>;

/** Statuses after which a batch changes no more. */
export const TERMINAL_STATUSES: ReadonlySet<string> = new Set(["completed", "failed", "expired", "cancelled"]);

/** The metadata field that ties a batch to its intent in the journal. */
export const JOURNAL_KEY_FIELD = "rxsynth_journal_key";

/**
 * The Files and Batches endpoints of one OpenAI-compatible server, through the official client. Every call
 * but `create` may be retried by the SDK: only creating a batch bills, so only it is sent once and, when
 * its answer is lost, looked up by its metadata instead of sent again (see protocol.ts).
 */
export class BatchApi {
  private readonly client: OpenAI;

  constructor(settings: { baseURL: string; apiKey: string; timeoutMs: number; headers?: Readonly<Record<string, string>> }) {
    this.client = new (openai().OpenAI)({
      baseURL: settings.baseURL,
      apiKey: settings.apiKey,
      timeout: settings.timeoutMs,
      maxRetries: 3,
      defaultHeaders: settings.headers ? { ...settings.headers } : undefined,
    });
  }

  async upload(name: string, jsonl: string): Promise<string> {
    const file = await this.client.files.create({ file: await openai().toFile(Buffer.from(jsonl), name, { type: "application/jsonl" }), purpose: "batch" });
    return file.id;
  }

  async create(fileId: string, key: string): Promise<BatchObject> {
    return this.client.batches.create(
      { input_file_id: fileId, endpoint: BATCH_ENDPOINT, completion_window: "24h", metadata: { [JOURNAL_KEY_FIELD]: key } },
      { maxRetries: 0 },
    );
  }

  retrieve(batchId: string): Promise<BatchObject> {
    return this.client.batches.retrieve(batchId);
  }

  /**
   * The batches whose metadata names one of `keys`, looking back to batches created at `sinceSeconds`
   * (the list comes newest first, so paging stops there instead of reading the account's whole history).
   */
  async find(keys: ReadonlySet<string>, sinceSeconds: number): Promise<Map<string, BatchObject>> {
    const found = new Map<string, BatchObject>();
    for await (const batch of this.client.batches.list({ limit: 100 })) {
      const key = batch.metadata?.[JOURNAL_KEY_FIELD];
      if (key && keys.has(key) && !found.has(key)) found.set(key, batch);
      if (found.size === keys.size || batch.created_at < sinceSeconds) break;
    }
    return found;
  }

  async content(fileId: string): Promise<string> {
    const response = await this.client.files.content(fileId);
    return response.text();
  }

  /** Best effort: a file nobody will read (an upload whose batch was never created). */
  async remove(fileId: string): Promise<void> {
    await this.client.files.delete(fileId).catch(() => undefined);
  }
}
