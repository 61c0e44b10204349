import type { Redis } from "ioredis";
import { ConfigError } from "../errors.ts";
import { untilAnswered } from "./reconnect.ts";
import { TickBatcher } from "./tick-batch.ts";
import type { NearIndexShape, NearMatch, SharedNearIndex } from "../graph.ts";

/**
 * Compares a signature with the kept documents sharing one of its LSH bands and, when none reaches the
 * threshold, keeps it: one script, so no other worker's admission falls between the look and the insert.
 * Documents are numbered in the order they were kept; a field holding a number is its 4 bytes (struct I4).
 * Similarity is estimated on 16-bit fingerprints with the same correction as the single-process index
 * (operators/dedup/lsh.ts), and ties go to the oldest, so one worker decides as `rxsynth run` would.
 *
 * KEYS: meta (shape, last number), docs (number -> fingerprints .. id), ids (id -> number),
 * buckets (band number (2 bytes) .. band key (4 bytes) -> numbers of the documents in it).
 * ARGV: threshold, shape, then for each document in turn: id, fingerprints (2 bytes each), bucket fields
 * (6 bytes each, as above). Most documents share no band with a kept one, so the work for a candidate
 * waits until one exists: the script's cost is Redis's CPU, on the machine the workers may share with it.
 * Returns, per document, {0} when kept (or when the id finds itself: a replay), {1, id of the match, equal
 * fingerprints}.
 */
const NEAR_ADMIT = `
local shape = redis.call('HGET', KEYS[1], 'shape')
if not shape then
  redis.call('HSET', KEYS[1], 'shape', ARGV[2])
elseif shape ~= ARGV[2] then
  return redis.error_reply('SHAPE ' .. shape)
end
local threshold = tonumber(ARGV[1])
local collision = 1 / 65536
local grouped = string.sub(ARGV[2], -8) == '/grouped'
-- A grouped id is "<length of group>:<group><id>" (operators/dedup/grouped-id.ts).
local function groupOf(id)
  local length, rest = string.match(id, '^(%d+):(.*)$')
  if not length then return nil end
  return string.sub(rest, 1, tonumber(length))
end
local function admit(id, prints, bandKeys)
  local width = string.len(prints)
  local ownGroup = grouped and groupOf(id) or nil
  local mine = redis.call('HGET', KEYS[3], id)
  if mine and string.sub(redis.call('HGET', KEYS[2], mine), 1, width) == prints then return {0} end
  local bands = string.len(bandKeys) / 6
  -- One HMGET for every band's bucket, read again below to insert: the script is atomic, so they cannot change.
  local buckets = {}
  for b = 1, bands do buckets[b] = string.sub(bandKeys, b * 6 - 5, b * 6) end
  local lists = redis.call('HMGET', KEYS[4], unpack(buckets))
  local candidates, seen = {}, {}
  for b = 1, bands do
    local members = lists[b]
    if members then
      for at = 1, string.len(members), 4 do
        local field = string.sub(members, at, at + 3)
        if not seen[field] then
          seen[field] = true
          candidates[#candidates + 1] = field
        end
      end
    end
  end
  local bestNumber, bestEqual, bestId = nil, -1, nil
  if #candidates > 0 then
    local mineParts = {}
    for p = 1, width, 2 do mineParts[p] = string.sub(prints, p, p + 1) end
    local stored = redis.call('HMGET', KEYS[2], unpack(candidates))
    for c = 1, #candidates do
      local equal = 0
      local other = stored[c]
      local otherId = string.sub(other, width + 1)
      if ownGroup and groupOf(otherId) == ownGroup then
        equal = -1
      else
        for p = 1, width, 2 do
          if string.sub(other, p, p + 1) == mineParts[p] then equal = equal + 1 end
        end
      end
      local number = struct.unpack('<I4', candidates[c])
      if equal >= 0 and (equal > bestEqual or (equal == bestEqual and number < bestNumber)) then
        bestEqual, bestNumber, bestId = equal, number, otherId
      end
    end
  end
  if bestId then
    local jaccard = math.max(0, (bestEqual / (width / 2) - collision) / (1 - collision))
    if jaccard >= threshold then return {1, bestId, bestEqual} end
  end
  local number = redis.call('HINCRBY', KEYS[1], 'last', 1)
  local field = struct.pack('<I4', number)
  redis.call('HSET', KEYS[2], field, prints .. id)
  redis.call('HSET', KEYS[3], id, field)
  local updates = {}
  for b = 1, bands do
    updates[#updates + 1] = buckets[b]
    updates[#updates + 1] = (lists[b] or '') .. field
  end
  redis.call('HSET', KEYS[4], unpack(updates))
  return {0}
end
local replies = {}
for i = 3, #ARGV, 3 do replies[#replies + 1] = admit(ARGV[i], ARGV[i + 1], ARGV[i + 2]) end
return replies
`;

/** Same as FINGERPRINT_COLLISION in operators/dedup/lsh.ts: unequal values agree on 16 bits with this chance. */
const COLLISION = 1 / 65536;

type AdmitReply = [number, string?, number?];

interface NearCommands {
  rxNearAdmit(...args: unknown[]): Promise<AdmitReply[]>;
}

interface Admission {
  readonly id: string;
  readonly prints: Buffer;
  readonly bandBytes: Buffer;
}

/**
 * The MinHash LSH index of one operator of one run, in Redis: 16-bit fingerprints and the id of each kept
 * document, and the LSH buckets over them; about numPerm x 2 + bands x 10 bytes of data per kept document
 * plus Redis's own per-field cost (benchmarks/scale.ts reports the bytes per document it measured).
 */
export class RedisNearIndex implements SharedNearIndex {
  private readonly keys: readonly string[];
  private readonly shapeName: string;
  private readonly batches = new TickBatcher<Admission, AdmitReply>((admissions) => this.send(admissions));

  constructor(
    private readonly redis: Redis,
    prefix: string,
    private readonly shape: NearIndexShape,
  ) {
    this.keys = [`${prefix}:meta`, `${prefix}:docs`, `${prefix}:ids`, `${prefix}:buckets`];
    this.shapeName = `${shape.numPerm}/${shape.bands}x${shape.rows}@${shape.threshold}${shape.grouped ? "/grouped" : ""}`;
  }

  async admit(id: string, signature: Uint32Array, bands: Uint32Array): Promise<NearMatch | undefined> {
    if (signature.length !== this.shape.numPerm || bands.length !== this.shape.bands) {
      throw new ConfigError(`a signature of ${signature.length} values in ${bands.length} bands, the shared index expects ${this.shape.numPerm} in ${this.shape.bands}`);
    }
    const prints = Buffer.alloc(signature.length * 2);
    for (let p = 0; p < signature.length; p++) prints.writeUInt16LE(signature[p]! & 0xffff, p * 2);
    const bandBytes = Buffer.alloc(this.shape.bands * 6);
    for (let b = 0; b < this.shape.bands; b++) {
      bandBytes.writeUInt16LE(b, b * 6);
      bandBytes.writeUInt32LE(bands[b]! >>> 0, b * 6 + 2);
    }
    const reply = await this.batches.call({ id, prints, bandBytes });
    if (reply[0] === 0) return undefined;
    const raw = Number(reply[2]) / this.shape.numPerm;
    return { duplicateOf: String(reply[1]), jaccard: Math.max(0, (raw - COLLISION) / (1 - COLLISION)) };
  }

  private async send(admissions: readonly Admission[]): Promise<AdmitReply[]> {
    const documents = admissions.flatMap((admission) => [admission.id, admission.prints, admission.bandBytes]);
    try {
      return await untilAnswered(this.redis, () => (this.redis as unknown as NearCommands).rxNearAdmit(...this.keys, String(this.shape.threshold), this.shapeName, ...documents));
    } catch (error) {
      const saved = /SHAPE ([^\s;]+)/.exec(String((error as Error).message))?.[1];
      if (!saved) throw error;
      throw new ConfigError(`the run's shared near-dedup index was made with ${saved} (permutations/bands x rows@threshold), this worker asks for ${this.shapeName}; workers of one run must share the graph's options`);
    }
  }
}

/** The index's script, on a connection that has run no command yet (see defineScaleCommands). */
export function defineNearIndexCommands(redis: Redis): void {
  redis.defineCommand("rxNearAdmit", { numberOfKeys: 4, lua: NEAR_ADMIT });
}
