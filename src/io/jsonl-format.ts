import { open, rm, type FileHandle } from "node:fs/promises";
import { writeFully } from "./files.ts";
import { toJson, type ShardKind } from "./schema.ts";
import type { OutputRow, RejectRow, ShardWriter, SinkFormat } from "./types.ts";

/** Bytes of JSON text gathered before one write to disk. */
const WRITE_CHUNK = 1 << 20;

/** One output row as a JSON line: the Sample's own shape (camelCase), plus `reject` for rejects. */
export function jsonLine(row: OutputRow): string {
  const reject = (row as Partial<RejectRow>).reject;
  const record = { id: row.id, data: row.data, provenance: row.provenance, scores: row.scores, reject };
  return `${toJson(record)}\n`;
}

/** JSON Lines shards (`.jsonl`): one object per line with id, data, provenance, scores (and reject). */
export function jsonlFormat(): SinkFormat {
  return {
    name: "jsonl",
    extension: "jsonl",
    async open(path: string, _kind: ShardKind): Promise<ShardWriter> {
      return new JsonlShardWriter(await open(path, "w"), path);
    },
  };
}

class JsonlShardWriter implements ShardWriter {
  private pending: string[] = [];
  private pendingLength = 0;
  private bytes = 0;

  constructor(
    private readonly handle: FileHandle,
    private readonly path: string,
  ) {}

  async append(rows: readonly OutputRow[]): Promise<void> {
    for (const row of rows) {
      const line = jsonLine(row);
      this.pending.push(line);
      this.pendingLength += line.length;
      if (this.pendingLength >= WRITE_CHUNK) await this.flush();
    }
  }

  private async flush(): Promise<void> {
    if (this.pending.length === 0) return;
    const bytes = Buffer.from(this.pending.join(""), "utf8");
    this.pending = [];
    this.pendingLength = 0;
    await writeFully(this.handle, bytes);
    this.bytes += bytes.byteLength;
  }

  async finish(): Promise<{ readonly bytes: number }> {
    try {
      await this.flush();
      await this.handle.sync();
    } finally {
      await this.handle.close();
    }
    return { bytes: this.bytes };
  }

  async abort(): Promise<void> {
    this.pending = [];
    await this.handle.close().catch(() => {});
    await rm(this.path, { force: true });
  }
}
