import type { Redis } from "ioredis";
import type { SharedRecords } from "../graph.ts";
import { untilAnswered } from "./reconnect.ts";

/**
 * A run's records by source position, in one Redis hash (position -> value). HSET replaces, so a try that
 * commits overwrites what a failed try of the same chunk wrote; a write sent again after a dropped
 * connection writes the same value.
 */
export class RedisRecords implements SharedRecords {
  constructor(
    private readonly redis: Redis,
    private readonly key: string,
  ) {}

  async put(position: number, value: string): Promise<void> {
    await untilAnswered(this.redis, () => this.redis.hset(this.key, String(position), value));
  }

  async range(from: number, to: number): Promise<Array<string | undefined>> {
    if (to <= from) return [];
    const fields = Array.from({ length: to - from }, (_, i) => String(from + i));
    const values = await untilAnswered(this.redis, () => this.redis.hmget(this.key, ...fields));
    return values.map((value) => value ?? undefined);
  }
}
