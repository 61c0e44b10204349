import type { Origin, SampleData } from "../sample.ts";
import { DEFAULT_BATCH_SIZE, recordId } from "./source-common.ts";
import type { Source, SourceItem } from "./types.ts";

export interface MemorySourceOptions {
  /** Default "human". */
  readonly origin?: Origin;
  /** Records per batch. Default 1024. */
  readonly batchSize?: number;
}

function isAsyncIterable(value: unknown): value is AsyncIterable<SampleData> {
  return typeof (value as AsyncIterable<unknown>)[Symbol.asyncIterator] === "function";
}

/**
 * Records from a sync or async iterable of plain objects: position = index in the iteration, id =
 * the record's `id` when it is a string or number. The iterable is consumed lazily, one batch at a
 * time, so a generator of millions of records costs one batch of memory.
 */
export function memorySource(
  name: string,
  records: Iterable<SampleData> | AsyncIterable<SampleData>,
  options: MemorySourceOptions = {},
): Source {
  const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
  const size = Array.isArray(records) ? records.length : undefined;

  async function* batches({ from, signal }: { readonly from: number; readonly signal: AbortSignal }) {
    let position = 0;
    let items: SourceItem[] = [];
    const take = (record: SampleData): void => {
      if (position >= from) {
        const id = recordId(record.id);
        items.push(id === undefined ? { position, data: record } : { position, id, data: record });
      }
      position++;
    };
    if (Array.isArray(records)) {
      // Arrays jump straight to `from` instead of walking the records before it.
      position = Math.max(0, from);
      const all = records as readonly SampleData[];
      while (position < all.length) {
        const end = Math.min(all.length, position + batchSize);
        while (position < end) take(all[position]!);
        if (signal.aborted) return;
        yield items;
        items = [];
      }
      return;
    }
    if (isAsyncIterable(records)) {
      for await (const record of records) {
        take(record);
        if (items.length >= batchSize) {
          if (signal.aborted) return;
          yield items;
          items = [];
        }
      }
    } else {
      // Sync iterables skip the per-record await of for-await: one await per batch, not per record.
      for (const record of records) {
        take(record);
        if (items.length >= batchSize) {
          if (signal.aborted) return;
          yield items;
          items = [];
        }
      }
    }
    if (items.length > 0 && !signal.aborted) yield items;
  }

  return {
    name,
    origin: options.origin ?? "human",
    size: async () => size,
    batches,
  };
}
