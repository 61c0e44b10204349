/** What the grouper needs of a queued request. */
export interface Queued {
  readonly id: string;
  /** A batch holds one model's requests only. */
  readonly model: string;
  /** Prompt + max_tokens, for the batch's and the queue's token limits. */
  readonly tokens: number;
}

export interface GrouperSettings<T extends Queued> {
  /** Most requests in one batch. */
  readonly maxRequests: number;
  /** Most tokens in one batch (Infinity: no limit). */
  readonly maxTokens: number;
  /** Most tokens in batches not yet ended, the provider's enqueued-token limit (Infinity: no limit). */
  readonly maxEnqueued: number;
  /** A group goes this long after the last request joined it... */
  readonly lingerMs: number;
  /** ...or this long after its first, whatever keeps arriving. */
  readonly maxWaitMs: number;
  /** Tokens of the batches submitted and not yet ended, and how many there are. */
  enqueued(): { readonly tokens: number; readonly batches: number };
  /** Submits one group; groups are submitted one at a time, in order. */
  submit(group: T[]): Promise<void>;
  onError(error: unknown): void;
}

/**
 * The requests waiting to join a batch, and when a group of them goes: at once when a batch's worth is
 * queued, else when `lingerMs` passes with no new request (or `maxWaitMs` after the first), and only as
 * much as the enqueued-token limit leaves room for; a batch that ends calls `flush` to fill the room.
 */
export class Grouper<T extends Queued> {
  private readonly queue = new Map<string, T>();
  private queuedTokens = 0;
  private firstAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private pumping: Promise<void> | undefined;
  private again = false;
  private wantAll = false;
  private closed = false;

  constructor(private readonly settings: GrouperSettings<T>) {}

  get size(): number {
    return this.queue.size;
  }

  add(item: T): void {
    if (this.queue.size === 0) this.firstAt = Date.now();
    this.queue.set(item.id, item);
    this.queuedTokens += item.tokens;
    this.schedule();
  }

  /** Takes a request off the queue (its caller gave up); false when it was not queued. */
  remove(id: string): boolean {
    const item = this.queue.get(id);
    if (!item) return false;
    this.queue.delete(id);
    this.queuedTokens -= item.tokens;
    return true;
  }

  /**
   * Submits groups one after another; `all`: the tail too, not only full groups. One pump at a time; a call
   * while it runs makes it go round once more.
   */
  async flush(all: boolean): Promise<void> {
    if (all) this.wantAll = true;
    if (this.pumping) {
      this.again = true;
      return this.pumping;
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    let blocked = false;
    const pump = (async () => {
      do {
        this.again = false;
        const everything = this.wantAll;
        this.wantAll = false;
        while (!this.closed && this.queue.size > 0) {
          if (!this.full() && !everything) break;
          const group = this.take();
          // The queue limit leaves no room: the next batch to end calls again.
          if (group.length === 0) {
            blocked = true;
            break;
          }
          await this.settings.submit(group);
        }
      } while (this.again && !this.closed && !blocked);
    })();
    this.pumping = pump;
    try {
      await pump;
    } finally {
      this.pumping = undefined;
    }
    // The tail lingers for more requests.
    if (!blocked) this.schedule();
  }

  /** Stops for good; resolves when a submission under way is done. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    await this.pumping?.catch(() => undefined);
  }

  private full(): boolean {
    return this.queue.size >= this.settings.maxRequests || this.queuedTokens >= this.settings.maxTokens;
  }

  private schedule(): void {
    if (this.closed || this.queue.size === 0) return;
    if (this.full()) {
      this.flush(false).catch((error: unknown) => this.settings.onError(error));
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    const wait = Math.max(0, Math.min(this.settings.lingerMs, this.firstAt + this.settings.maxWaitMs - Date.now()));
    this.timer = setTimeout(() => this.flush(true).catch((error: unknown) => this.settings.onError(error)), wait);
  }

  /** The next group, off the queue: one model, within the batch's limits and the room the queue limit leaves. */
  private take(): T[] {
    const { tokens: enqueued, batches } = this.settings.enqueued();
    const room = Math.min(this.settings.maxTokens, this.settings.maxEnqueued - enqueued);
    const group: T[] = [];
    let tokens = 0;
    let model: string | undefined;
    for (const item of this.queue.values()) {
      if (group.length >= this.settings.maxRequests) break;
      model ??= item.model;
      if (item.model !== model) continue;
      // A request larger than the whole limit still goes, alone, when no batch is in flight.
      if (tokens + item.tokens > room && !(group.length === 0 && batches === 0)) break;
      group.push(item);
      tokens += item.tokens;
    }
    for (const item of group) this.remove(item.id);
    if (this.queue.size > 0) this.firstAt = Date.now();
    return group;
  }
}
