/**
 * Stops a run whose calls all fail the same way. One sample's bad request is that sample's reject; the
 * same error on K calls in a row (vLLM's "System role not supported", an unknown parameter, llama.cpp's 500
 * for any exception) is the configuration's, and rejecting every sample for it would throw the run away.
 */
export class CircuitBreaker {
  private signature: string | undefined;
  private streak = 0;

  constructor(private readonly limit: number) {}

  /** A call failed for good; returns the line that stops the run once `limit` calls in a row failed alike. */
  failed(status: number | undefined, message: string): string | undefined {
    // Request ids, numbers and quoted values differ from call to call; the shape of the error does not.
    const signature = `${status ?? "-"} ${message.replace(/req_[\w-]+|chatcmpl-\w+|\b[0-9a-f]{8,}(?:-[0-9a-f]{4,})*\b|\d+|'[^']*'|"[^"]*"/gi, "#")}`;
    this.streak = signature === this.signature ? this.streak + 1 : 1;
    this.signature = signature;
    if (this.streak < this.limit) return undefined;
    return `the last ${this.streak} calls all failed the same way (${message}): this is the endpoint's or the graph's configuration, not the samples; fix it, then rerun the same command to resume`;
  }

  succeeded(): void {
    this.streak = 0;
    this.signature = undefined;
  }
}
