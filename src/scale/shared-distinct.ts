import type { Redis } from "ioredis";
import { ConfigError } from "../errors.ts";
import { untilAnswered } from "./reconnect.ts";
import type { SharedDistinct } from "../graph.ts";

/** Redis's HyperLogLog shape: 2^14 registers of 6 bits, after a 16-byte header ("HYLL", encoding, cached count). */
export const REDIS_HLL_REGISTERS = 1 << 14;
const HEADER_BYTES = 16;
const DENSE_BYTES = HEADER_BYTES + (REDIS_HLL_REGISTERS * 6) / 8;

/**
 * Registers in Redis's dense HyperLogLog encoding, so PFMERGE and PFCOUNT work on them. Which register an
 * item lands in does not have to follow PFADD's hash: every part of one counter comes from this encoding,
 * and the estimate only needs the ranks to be geometric, which they are for any uniform hash.
 */
export function toRedisDense(registers: Uint8Array): Buffer {
  if (registers.length !== REDIS_HLL_REGISTERS) throw new ConfigError(`a shared distinct counter takes ${REDIS_HLL_REGISTERS} registers (precision 14), got ${registers.length}`);
  const dense = Buffer.alloc(DENSE_BYTES);
  dense.write("HYLL", 0, "ascii");
  // Byte 4 = 0: dense encoding. The cached count's top bit set: not computed yet.
  dense[15] = 0x80;
  for (let i = 0; i < REDIS_HLL_REGISTERS; i++) {
    const rank = registers[i]!;
    if (rank === 0) continue;
    if (rank > 63) throw new ConfigError(`HyperLogLog register ${i} holds ${rank}, more than 6 bits`);
    const bit = i * 6;
    const at = HEADER_BYTES + (bit >> 3);
    const shift = bit & 7;
    dense[at] = dense[at]! | ((rank << shift) & 0xff);
    if (shift > 2) dense[at + 1] = dense[at + 1]! | (rank >> (8 - shift));
  }
  return dense;
}

/**
 * Merges one part into the counter and records the part's total. The part goes through a scratch key
 * because PFMERGE takes keys, not values; the script makes the three steps one, so no scratch key is left
 * by a crash. KEYS: counter (HLL), totals (part -> total), scratch, names (set of the run's counters).
 * ARGV: dense registers, part, total, counter name.
 */
const MERGE = `
redis.call('SET', KEYS[3], ARGV[1])
redis.call('PFMERGE', KEYS[1], KEYS[1], KEYS[3])
redis.call('DEL', KEYS[3])
-- A replay that counted less (a resumed part that saw only its remaining samples) keeps the larger total.
local known = tonumber(redis.call('HGET', KEYS[2], ARGV[2]) or '0')
if tonumber(ARGV[3]) > known then redis.call('HSET', KEYS[2], ARGV[2], ARGV[3]) end
redis.call('SADD', KEYS[4], ARGV[4])
return 1
`;

/** One distinct counter of a run, kept in Redis for every worker (see SharedDistinct). */
export class RedisDistinct implements SharedDistinct {
  constructor(
    private readonly redis: Redis,
    private readonly keys: { readonly counter: string; readonly totals: string; readonly scratch: string; readonly names: string },
    private readonly name: string,
  ) {}

  async merge(registers: Uint8Array, part: string, total: number): Promise<void> {
    const { counter, totals, scratch, names } = this.keys;
    const dense = toRedisDense(registers);
    await untilAnswered(this.redis, () => (this.redis as unknown as DistinctCommands).rxDistinctMerge(counter, totals, scratch, names, dense, part, String(total), this.name));
  }
}

interface DistinctCommands {
  rxDistinctMerge(...args: unknown[]): Promise<unknown>;
}

/** The counter's script, on a connection that has run no command yet (see defineScaleCommands). */
export function defineDistinctCommands(redis: Redis): void {
  redis.defineCommand("rxDistinctMerge", { numberOfKeys: 4, lua: MERGE });
}
