import { createRequire } from "node:module";

const require = createRequire(import.meta.url);

/**
 * A dependency loaded on first use. openai, tiktoken's WASM and lmdb together cost ~50 MB of RSS at
 * import; a graph that never calls a model (or `rxsynth graphs`) should not pay for them.
 */
export function lazyModule<T>(id: string): () => T {
  let loaded: T | undefined;
  return () => (loaded ??= require(id) as T);
}
