/**
 * Gathers the calls made in one turn of the event loop into one request. Samples reach an operator in
 * bursts (a source batch, a barrier's release), and one Redis script for a burst costs the worker one
 * command to encode and one reply to parse, and Redis one script call, instead of one per sample. The
 * calls keep their order: a script decides its items in turn, and a batch is sent only once the one
 * before it is answered, so a batch cut off by a dropped connection and sent again is still decided
 * before the later ones (which would otherwise wait in the client's offline queue and go first).
 */
export class TickBatcher<I, O> {
  private pending: Array<{ readonly item: I; readonly resolve: (value: O) => void; readonly reject: (error: unknown) => void }> = [];
  private scheduled = false;
  /** The batch in flight, settled or not: the next one is sent after it. */
  private previous: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly send: (items: readonly I[]) => Promise<readonly O[]>,
    /** Most items in one request: a script blocks Redis while it runs. */
    private readonly maxBatch = 128,
  ) {}

  call(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      if (this.pending.length >= this.maxBatch) this.flush();
      else if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => {
          this.scheduled = false;
          this.flush();
        });
      }
    });
  }

  private flush(): void {
    const batch = this.pending;
    if (batch.length === 0) return;
    this.pending = [];
    this.previous = this.previous.then(() =>
      this.send(batch.map((call) => call.item)).then(
        (results) => batch.forEach((call, i) => call.resolve(results[i]!)),
        (error: unknown) => batch.forEach((call) => call.reject(error)),
      ),
    );
  }
}
