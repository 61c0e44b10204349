import { Faker, en } from "@faker-js/faker";
import { ConfigError, stableHash, type SampleData, type Source, type SourceItem } from "../../src/index.ts";

export interface TemplateSourceOptions<T extends SampleData> {
  /** Source name, recorded in provenance. */
  readonly name: string;
  /** How many records. */
  readonly count: number;
  /** Same seed, same records: each record is seeded from (seed, position), so a resumed run regenerates it exactly. */
  readonly seed?: number;
  /** Records per batch. Default 512. */
  readonly batchSize?: number;
  /** Builds one record; `faker` is already seeded for this position. Dates must use `refDate` to stay reproducible. */
  readonly record: (faker: Faker, position: number, refDate: Date) => T;
}

/** Fixed reference date so `faker.date.*` does not depend on when the graph runs. */
const REF_DATE = new Date("2025-01-01T00:00:00Z");

/**
 * Privacy-safe structured records from `@faker-js/faker` templates: no real person's data, no LLM.
 * Origin "template", depth 0. Deterministic per (seed, position), so ids and content survive a resume.
 *
 * Example: `templateSource({ name: "invoices", count: 1000, seed: 7, record: (f) => ({ vendor: f.company.name() }) })`
 */
export function templateSource<T extends SampleData>(options: TemplateSourceOptions<T>): Source {
  if (!Number.isInteger(options.count) || options.count < 0) {
    throw new ConfigError(`templateSource "${options.name}": count must be a non-negative integer, got ${options.count}`);
  }
  const seed = options.seed ?? 42;
  const batchSize = options.batchSize ?? 512;
  return {
    name: options.name,
    origin: "template",
    size: async () => options.count,
    async *batches({ from, signal }) {
      const faker = new Faker({ locale: [en] });
      for (let start = from; start < options.count && !signal.aborted; start += batchSize) {
        const end = Math.min(options.count, start + batchSize);
        const batch: SourceItem[] = [];
        for (let position = start; position < end; position++) {
          faker.seed(Number.parseInt(stableHash(`${seed}:${position}`, 8), 16));
          batch.push({ position, id: `${options.name}-${position}`, data: options.record(faker, position, REF_DATE) });
        }
        yield batch;
      }
    },
  };
}
