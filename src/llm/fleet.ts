import { ConfigError } from "../errors.ts";
import { AdaptiveConcurrency, type Permit } from "./limiter.ts";

/** One server of a fleet, with its own cap when it differs from the client's `concurrency`. */
export interface FleetServer {
  readonly url: string;
  /** Most requests in flight to this server; the adaptive cap starts here. Default: the client's `concurrency`. */
  readonly concurrency?: number;
}

/** One base URL, a comma-separated list of them, or a list (of URLs or servers with their own caps). */
export type BaseUrls = string | readonly (string | FleetServer)[];

/** How a fleet treats a server that fails. */
export interface FleetOptions {
  /**
   * Names the fleet in the cache key (`endpointId` defaults to `fleet:<name>`): the answer to a request
   * does not depend on which server gave it, nor on which servers the fleet has today. Default "default".
   */
  readonly name?: string;
  /** Connection errors, timeouts or 5xx in a row before a server is ejected. Default 3. */
  readonly ejectAfter?: number;
  /** First ejection, in ms; doubles while the server's probes fail, up to `ejectMaxMs`. Default 1 000. */
  readonly ejectBaseMs?: number;
  /** Default 30 000. */
  readonly ejectMaxMs?: number;
}

export const FLEET_DEFAULTS = { name: "default", ejectAfter: 3, ejectBaseMs: 1_000, ejectMaxMs: 30_000 } as const;

/** What `llm.fleet()` says about one server. */
export interface FleetMemberView {
  readonly url: string;
  readonly host: string;
  /** "up": takes traffic; "ejected": none until its backoff ends; "probing": one request decides. */
  readonly state: "up" | "ejected" | "probing";
  readonly healthy: boolean;
  readonly inFlight: number;
  /** Its adaptive cap now. */
  readonly limit: number;
  /** Requests it answered (any HTTP answer that is not a failure of the server). */
  readonly served: number;
  /** Requests it failed: connection errors, timeouts, 5xx. */
  readonly failures: number;
  readonly ejections: number;
}

/** Splits and checks base URLs: a list with the same server twice would weigh it double by accident. */
export function parseBaseUrls(value: BaseUrls, where: string): FleetServer[] {
  const entries = typeof value === "string" ? value.split(",").map((url) => url.trim()).filter((url) => url.length > 0) : value;
  const servers = entries.map((entry) => (typeof entry === "string" ? { url: entry.trim() } : { ...entry, url: entry.url.trim() }));
  if (servers.length === 0) throw new ConfigError(`${where}: no base URL given: set one (http://host:8000/v1) or a comma-separated list of them`);
  const seen = new Set<string>();
  for (const server of servers) {
    const key = server.url.replace(/\/+$/, "");
    if (seen.has(key)) throw new ConfigError(`${where}: ${server.url} is listed twice: list each server of a fleet once`);
    seen.add(key);
    if (server.concurrency !== undefined && !(Number.isInteger(server.concurrency) && server.concurrency > 0)) {
      throw new ConfigError(`${where}: the concurrency of ${server.url} must be a positive integer, got ${server.concurrency}`);
    }
  }
  return servers;
}

/** A server of the fleet: its cap, its health, and whatever the client keeps per server (`handle`). */
export class FleetMember<T> {
  readonly host: string;
  readonly concurrency: AdaptiveConcurrency;
  state: "up" | "ejected" | "probing" = "up";
  /** Date.now() when an ejected server may be probed. */
  ejectedUntil = 0;
  backoffMs = 0;
  streak = 0;
  served = 0;
  failures = 0;
  ejections = 0;

  constructor(
    readonly url: string,
    max: number,
    adaptive: boolean,
    readonly handle: T,
  ) {
    this.host = URL.canParse(url) ? new URL(url).host : url;
    this.concurrency = new AdaptiveConcurrency(max, 1, adaptive ? 0.5 : 1);
  }

  /** In flight over the cap: the load the router balances. */
  get load(): number {
    return this.concurrency.inFlight / this.concurrency.limit;
  }

  view(): FleetMemberView {
    return {
      url: this.url,
      host: this.host,
      state: this.state,
      healthy: this.state === "up",
      inFlight: this.concurrency.inFlight,
      limit: this.concurrency.limit,
      served: this.served,
      failures: this.failures,
      ejections: this.ejections,
    };
  }
}

/** A slot on one server, for one attempt. */
export interface Lease<T> {
  readonly member: FleetMember<T>;
  readonly permit: Permit;
}

/** What an attempt said about its server: it answered, it failed (connection, timeout, 5xx), or nothing (aborted). */
export type MemberHealth = "answered" | "failed" | "none";

interface Waiter<T> {
  readonly avoid: ReadonlySet<FleetMember<T>> | undefined;
  readonly resolve: (lease: Lease<T>) => void;
  readonly reject: (error: unknown) => void;
  readonly signal: AbortSignal | undefined;
  readonly onAbort: () => void;
}

/**
 * Sends each attempt to the least-loaded healthy server (in flight over its adaptive cap). A server that
 * fails `ejectAfter` times in a row is ejected: no traffic until its backoff ends, then one request
 * probes it, and its answer brings it back (its failure ejects it for twice as long). With every server
 * out, attempts go to the one due back first, so the client's own retries and outage gate apply to the
 * fleet as to one endpoint. One server is a fleet that never ejects.
 */
export class FleetRouter<T> {
  readonly members: readonly FleetMember<T>[];
  private readonly waiters: Waiter<T>[] = [];
  private readonly ejectAfter: number;
  private readonly ejectBaseMs: number;
  private readonly ejectMaxMs: number;
  /** Where ties start, turned on every pick so equal loads share the traffic instead of favouring the first. */
  private turn = 0;

  constructor(
    members: readonly FleetMember<T>[],
    options: FleetOptions = {},
    private readonly log: (line: string) => void = () => {},
    private readonly now: () => number = Date.now,
  ) {
    this.members = members;
    this.ejectAfter = options.ejectAfter ?? FLEET_DEFAULTS.ejectAfter;
    this.ejectBaseMs = options.ejectBaseMs ?? FLEET_DEFAULTS.ejectBaseMs;
    this.ejectMaxMs = Math.max(this.ejectBaseMs, options.ejectMaxMs ?? FLEET_DEFAULTS.ejectMaxMs);
  }

  get size(): number {
    return this.members.length;
  }

  get limit(): number {
    return this.members.reduce((sum, member) => sum + member.concurrency.limit, 0);
  }

  get inFlight(): number {
    return this.members.reduce((sum, member) => sum + member.concurrency.inFlight, 0);
  }

  /** Whether a server that takes traffic is left outside `avoid` (the servers that failed this call). */
  hasHealthy(avoid: ReadonlySet<FleetMember<T>>): boolean {
    return this.members.some((member) => member.state === "up" && !avoid.has(member));
  }

  /** A slot on the server to send to; waits while every candidate is at its cap. `avoid` is a preference. */
  acquire(signal: AbortSignal | undefined, avoid?: ReadonlySet<FleetMember<T>>): Promise<Lease<T>> {
    if (signal?.aborted) return Promise.reject(signal.reason ?? new DOMException("The operation was aborted", "AbortError"));
    if (this.waiters.length === 0) {
      const lease = this.pick(avoid);
      if (lease) return Promise.resolve(lease);
    }
    return new Promise<Lease<T>>((resolve, reject) => {
      const waiter: Waiter<T> = {
        avoid,
        resolve,
        reject,
        signal,
        onAbort: () => {
          const at = this.waiters.indexOf(waiter);
          if (at >= 0) this.waiters.splice(at, 1);
          reject(signal!.reason ?? new DOMException("The operation was aborted", "AbortError"));
        },
      };
      signal?.addEventListener("abort", waiter.onAbort, { once: true });
      this.waiters.push(waiter);
      // Waiters ahead may wait for other servers than those with room now.
      if (this.waiters.length > 1) this.pump();
    });
  }

  /** Returns the slot: `outcome` steers the server's cap, `health` its place in the fleet. */
  release(lease: Lease<T>, outcome: "ok" | "overloaded" | "other", health: MemberHealth): void {
    const member = lease.member;
    member.concurrency.release(lease.permit, outcome);
    if (health === "answered") this.answered(member);
    else if (health === "failed") this.failed(member);
    else if (member.state === "probing") member.state = "ejected"; // the probe was abandoned: the next request probes
    this.pump();
  }

  view(): FleetMemberView[] {
    return this.members.map((member) => member.view());
  }

  private answered(member: FleetMember<T>): void {
    member.served++;
    member.streak = 0;
    if (member.state === "up") return;
    member.state = "up";
    member.backoffMs = 0;
    this.log(`llm: fleet: ${member.host} answers again: back in the fleet (${this.upCount()} of ${this.size} servers up)`);
  }

  private failed(member: FleetMember<T>): void {
    member.failures++;
    member.streak++;
    if (this.size === 1) return;
    // A failed probe, or a failure while the whole fleet is out, sends it back out for longer.
    if (member.state !== "up" || member.streak >= this.ejectAfter) this.eject(member);
  }

  private eject(member: FleetMember<T>): void {
    const first = member.state === "up";
    member.backoffMs = first ? this.ejectBaseMs : Math.min(this.ejectMaxMs, Math.max(this.ejectBaseMs, member.backoffMs * 2));
    member.ejectedUntil = this.now() + member.backoffMs;
    member.state = "ejected";
    if (!first) return;
    member.ejections++;
    this.log(
      `llm: fleet: ${member.host} ejected after ${member.streak} failures in a row: probing it again in ${member.backoffMs} ms ` +
        `(${this.upCount()} of ${this.size} servers up)`,
    );
  }

  private upCount(): number {
    return this.members.filter((member) => member.state === "up").length;
  }

  private pick(avoid: ReadonlySet<FleetMember<T>> | undefined): Lease<T> | undefined {
    const members = this.members;
    if (members.length === 1) return this.take(members[0]!);
    const now = this.now();
    const start = this.turn++ % members.length;
    let best: FleetMember<T> | undefined;
    let bestAvoided: FleetMember<T> | undefined;
    let anyUp = false;
    let otherUp = false;
    for (let k = 0; k < members.length; k++) {
      const member = members[(start + k) % members.length]!;
      if (member.state !== "up") continue;
      anyUp = true;
      const avoided = avoid?.has(member) ?? false;
      if (!avoided) otherUp = true;
      if (member.concurrency.inFlight >= member.concurrency.limit) continue;
      if (avoided) {
        if (!bestAvoided || member.load < bestAvoided.load) bestAvoided = member;
      } else if (!best || member.load < best.load) best = member;
    }
    // A server due back gets one request before anyone else: with others up, its failure costs a free retry.
    for (let k = 0; k < members.length; k++) {
      const member = members[(start + k) % members.length]!;
      if (member.state !== "ejected" || member.ejectedUntil > now || avoid?.has(member)) continue;
      const lease = this.take(member);
      if (lease) {
        member.state = "probing";
        return lease;
      }
    }
    if (best) return this.take(best);
    // A call that failed on a server waits for another that is up rather than go straight back to it
    // (a free retry against a flaky server would loop with no backoff); with none other up, it may.
    if (otherUp) return undefined;
    if (anyUp) return bestAvoided ? this.take(bestAvoided) : undefined;
    // The whole fleet is out: the server due back first takes the attempt (the outage gate spaces them),
    // one this call has not failed on before one it has.
    const rank = (member: FleetMember<T>) => (avoid?.has(member) ? Number.MAX_SAFE_INTEGER : 0) + member.ejectedUntil;
    let soonest: FleetMember<T> | undefined;
    for (const member of members) {
      if (member.state === "probing" || member.concurrency.inFlight >= member.concurrency.limit) continue;
      if (!soonest || rank(member) < rank(soonest)) soonest = member;
    }
    return soonest ? this.take(soonest) : undefined;
  }

  private take(member: FleetMember<T>): Lease<T> | undefined {
    const permit = member.concurrency.tryAcquire();
    return permit ? { member, permit } : undefined;
  }

  /**
   * Serves waiters in order; one that waits for other servers than those with room (see `avoid`) lets the
   * next ones by, until one that would take any server finds none.
   */
  private pump(): void {
    for (let i = 0; i < this.waiters.length; ) {
      const waiter = this.waiters[i]!;
      const lease = this.pick(waiter.avoid);
      if (!lease) {
        if (!waiter.avoid || waiter.avoid.size === 0) return;
        i++;
        continue;
      }
      this.waiters.splice(i, 1);
      waiter.signal?.removeEventListener("abort", waiter.onAbort);
      waiter.resolve(lease);
    }
  }
}
