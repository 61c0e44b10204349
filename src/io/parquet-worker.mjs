// Worker thread that owns parquet-wasm and the shard files: the main thread sends each row group as an
// Arrow IPC stream (its buffer transferred, not copied) and gets a reply per request. Requests for one
// writer run in order; several writers (accepted and rejects shards) share the worker.
import { parentPort } from "node:worker_threads";
import { openParquetStream } from "./parquet-stream.mjs";

/** @type {Map<number, { stream: Promise<import("./parquet-stream.mjs").ParquetStream>, tail: Promise<unknown> }>} */
const writers = new Map();

function run(message) {
  switch (message.type) {
    case "open": {
      const stream = openParquetStream(message.path, message.options);
      writers.set(message.writer, { stream, tail: stream });
      return stream.then(() => undefined);
    }
    case "write":
      return writers.get(message.writer).stream.then((stream) => stream.write(message.ipc));
    case "finish":
      return writers.get(message.writer).stream.then((stream) => stream.finish());
    case "abort":
      return writers.get(message.writer).stream.then((stream) => stream.abort());
    default:
      return Promise.reject(new Error(`unknown request ${message.type}`));
  }
}

parentPort.on("message", (message) => {
  let task;
  if (message.type === "open") {
    task = run(message);
  } else {
    const writer = writers.get(message.writer);
    if (!writer) {
      parentPort.postMessage({ seq: message.seq, ok: false, message: `no open writer ${message.writer}` });
      return;
    }
    task = writer.tail.then(() => run(message));
    writer.tail = task.catch(() => {});
    if (message.type === "finish" || message.type === "abort") {
      task.then(
        () => writers.delete(message.writer),
        () => writers.delete(message.writer),
      );
    }
  }
  task.then(
    (result) => parentPort.postMessage({ seq: message.seq, ok: true, result }),
    (error) => parentPort.postMessage({ seq: message.seq, ok: false, message: error?.message ?? String(error) }),
  );
});
