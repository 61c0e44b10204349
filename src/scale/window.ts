import type { BuiltGraph } from "../graph.ts";
import type { Source } from "../io/types.ts";

/** A chunk of work: the records of one source at positions [start, end). */
export interface Chunk {
  readonly source: string;
  readonly start: number;
  readonly end: number;
}

/** Folder-safe, sortable name of a chunk: its source and zero-padded start. */
export function chunkName(chunk: Chunk): string {
  return `${chunk.source.replace(/[^A-Za-z0-9._-]/g, "_")}-${String(chunk.start).padStart(12, "0")}`;
}

/**
 * The graph restricted to one chunk: its source yields only positions [start, end), renumbered from 0 so
 * the chunk's own run tracks a window of its size, and each record without an id of its own carries its
 * position in the whole source as its id, so every sample id is the one a single-process run gives it
 * (`<source>:<position>`). The other sources yield nothing. The graph is not disposed by the chunk's run:
 * a worker builds it once and runs many chunks through it.
 */
export function windowGraph(graph: BuiltGraph, chunk: Chunk): BuiltGraph {
  const sources = graph.sources.map((source) => (source.name === chunk.source ? windowSource(source, chunk) : emptySource(source)));
  // A chunk ends when its window does; whether the run reached its goal is not one chunk's to say.
  return { ...graph, sources, dispose: undefined, incomplete: undefined };
}

function windowSource(source: Source, chunk: Chunk): Source {
  return {
    name: source.name,
    origin: source.origin,
    fields: source.fields,
    async size() {
      const total = await source.size?.();
      return total === undefined ? undefined : Math.max(0, Math.min(chunk.end, total) - chunk.start);
    },
    async *batches({ from, signal }) {
      for await (const batch of source.batches({ from: chunk.start + from, signal })) {
        const inside = batch.filter((item) => item.position < chunk.end);
        if (inside.length > 0) {
          yield inside.map((item) => ({ ...item, position: item.position - chunk.start, id: item.id ?? String(item.position) }));
        }
        if (inside.length < batch.length) return;
      }
    },
  };
}

function emptySource(source: Source): Source {
  return {
    name: source.name,
    origin: source.origin,
    fields: source.fields,
    size: async () => 0,
    async *batches() {},
  };
}
