export type * from "./types.ts";
export { jsonlSource, type JsonlSourceOptions } from "./jsonl-source.ts";
export { parquetSource } from "./parquet-source.ts";
export { arrowSource } from "./arrow-source.ts";
export { memorySource, type MemorySourceOptions } from "./memory-source.ts";
export { openSource, textSource, jsonSource, concatSources, SOURCE_EXTENSIONS } from "./open-source.ts";
export type { FileSource, FileSourceOptions } from "./source-common.ts";
export { parquetFormat, type ParquetFormatOptions, type ParquetCompression } from "./parquet-format.ts";
export { arrowFormat, type ArrowFormatOptions } from "./arrow-format.ts";
export { jsonlFormat } from "./jsonl-format.ts";
export {
  ShardedSink,
  cleanTemporaryFiles,
  listShardFiles,
  shardFileName,
  DEFAULT_MAX_ROWS_PER_SHARD,
  type ShardedSinkOptions,
} from "./shards.ts";
export {
  readRows,
  describeOutput,
  type ReadRowsOptions,
  type OutputDescription,
  type OutputFileInfo,
  type OutputFormat,
} from "./read.ts";
export {
  inferDataColumns,
  sampleLayout,
  encodeSamples,
  decodeBatch,
  describeSchema,
  EXTRA_FIELD,
  type DataColumn,
  type DataColumnType,
  type SampleLayout,
  type ShardKind,
} from "./schema.ts";
export { exportRun, convertRow, acceptedShards, EXPORT_FORMATS, type ExportFormat, type ExportOptions, type ExportSummary } from "./export.ts";
