import { ReplyError, type Redis } from "ioredis";
import { SharedStateError, errorMessage } from "../errors.ts";

/**
 * Whether a command failed because the connection dropped, not because of what it asked: it may or may
 * not have run. ioredis rejects commands in flight when the socket closes ("Command aborted due to
 * connection close", and a pipeline cut part-way), instead of sending them again.
 */
export function lostConnection(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  return error.name === "AbortError" || /Connection is closed|aborted due to connection close|ECONNRESET|ECONNREFUSED|EPIPE/.test(error.message);
}

/**
 * Runs `command` until it gets an answer, waiting for the connection to come back after each drop. Only
 * for commands that may run twice with the effect of once: every script of the scale-out state is written
 * so (a claim finds its holder, an admission finds itself, a merge takes maxima). An outage of Redis then
 * pauses the step, as it pauses the worker, instead of becoming a verdict on a sample.
 */
export async function untilAnswered<T>(redis: Redis, command: () => Promise<T>): Promise<T> {
  for (;;) {
    try {
      return await command();
    } catch (error) {
      if (lostConnection(error) && redis.status !== "end") {
        await ready(redis);
        continue;
      }
      if (error instanceof ReplyError) {
        throw new SharedStateError(
          `Redis refused a command of the run's shared state: ${errorMessage(error)}; make sure it has memory to spare (maxmemory, with noeviction) and is a writable primary, then start the worker again (its work item went back to the queue)`,
          { cause: error },
        );
      }
      throw error;
    }
  }
}

/** One wait per connection, however many commands wait on it: one listener, not one per command. */
const waits = new WeakMap<Redis, Promise<void>>();

function ready(redis: Redis): Promise<void> {
  if (redis.status === "ready") return Promise.resolve();
  let wait = waits.get(redis);
  if (!wait) {
    wait = new Promise<void>((resolve) => {
      const done = () => {
        redis.off("ready", done);
        redis.off("end", done);
        waits.delete(redis);
        resolve();
      };
      redis.on("ready", done);
      redis.on("end", done);
    });
    waits.set(redis, wait);
  }
  return wait;
}
