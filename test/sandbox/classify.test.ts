import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/index.ts";
import { hiddenByPrivateRoot } from "../../src/sandbox/bwrap.ts";
import { judge, type RawRun } from "../../src/sandbox/classify.ts";
import { seccompFilter } from "../../src/sandbox/seccomp.ts";

const NONCE = "n0nce";
const event = (fields: Record<string, string>) => `${JSON.stringify({ nonce: NONCE, message: "", status: "", ...fields })}\n`;
const started = event({ event: "started" });
const run = (fields: Partial<RawRun>): RawRun => ({
  exitCode: 0,
  signal: null,
  stderr: "",
  events: started,
  nonce: NONCE,
  timedOut: false,
  aborted: false,
  timeoutMs: 1000,
  ...fields,
});

describe("judge", () => {
  it("trusts only verdicts that carry the run's nonce", () => {
    const forged = `${JSON.stringify({ nonce: "guess", event: "verdict", status: "passed" })}\n`;
    expect(judge(run({ events: started + forged })).status).toBe("test_failed");
    expect(judge(run({ events: started + event({ event: "verdict", status: "passed" }) })).status).toBe("passed");
  });

  it("fails a run that passed its tests but exited non-zero, and crashes one killed after", () => {
    const passed = started + event({ event: "verdict", status: "passed" });
    expect(judge(run({ events: passed, exitCode: 3 }))).toMatchObject({ status: "test_failed" });
    expect(judge(run({ events: passed, exitCode: 137 }))).toMatchObject({ status: "crashed", signal: "SIGKILL" });
  });

  it("reads a signal death from bwrap's 128 + signal exit code", () => {
    const judged = judge(run({ exitCode: 134, stderr: "noise\nFATAL ERROR: Reached heap limit Allocation failed\nmore\n" }));
    expect(judged).toMatchObject({ status: "crashed", signal: "SIGABRT" });
    expect(judged.message).toBe("killed by SIGABRT: FATAL ERROR: Reached heap limit Allocation failed");
  });

  it("upgrades a failure to a violation only from text the program printed, not the harness's traceback", () => {
    const trace = "Traceback:\n  assert msg == 'Permission denied'\nAssertionError\n";
    const verdict = started + JSON.stringify({ nonce: NONCE, event: "verdict", status: "test_failed", message: "AssertionError", trace }) + "\n";
    expect(judge(run({ events: verdict, exitCode: 1, stderr: trace })).status).toBe("test_failed");
    expect(judge(run({ events: verdict, exitCode: 1, stderr: `sh: 1: cannot create /etc/x: Read-only file system\n${trace}` })).status).toBe(
      "sandbox_violation",
    );
  });

  it("upgrades a missing path to a violation when the host has it, hidden by the sandbox's private /tmp", () => {
    const missing = (paths: string[]) =>
      started + JSON.stringify({ nonce: NONCE, event: "verdict", status: "crashed", message: "FileNotFoundError", missing: paths }) + "\n";
    const hidden = (path: string) => path.startsWith("/tmp/clone/");
    expect(judge(run({ events: missing(["/tmp/clone/x.txt"]), exitCode: 1, hiddenOnHost: hidden })).status).toBe("sandbox_violation");
    expect(judge(run({ events: missing(["/tmp/own/x.txt"]), exitCode: 1, hiddenOnHost: hidden })).status).toBe("crashed");
    expect(judge(run({ events: missing(["/tmp/clone/x.txt"]), exitCode: 1 })).status).toBe("crashed");
  });

  it("puts the timeout first and throws a ConfigError when the sandbox never started", () => {
    expect(judge(run({ timedOut: true, events: "", exitCode: null, signal: "SIGKILL" })).status).toBe("timeout");
    expect(() => judge(run({ events: "", exitCode: 1, stderr: "bwrap: Creating new namespace failed: Operation not permitted\n" }))).toThrow(
      ConfigError,
    );
  });
});

describe("seccompFilter", () => {
  it("assembles whole sock_filter records for x86-64 and arm64 and nothing elsewhere", () => {
    for (const arch of ["x64", "arm64"] as const) {
      const filter = seccompFilter(arch)!;
      expect(filter.length % 8).toBe(0);
      // The last two instructions return EPERM and ENOSYS.
      expect(filter.readUInt32LE(filter.length - 12)).toBe(0x00050001);
      expect(filter.readUInt32LE(filter.length - 4)).toBe(0x00050026);
    }
    expect(seccompFilter("s390x")).toBeUndefined();
  });
});

describe("hiddenByPrivateRoot", () => {
  it("is true for a host path below /tmp or /dev/shm that exists, or whose folder does, outside interpreter installs", () => {
    const dir = mkdtempSync("/tmp/rxsynth-hidden-");
    try {
      expect(hiddenByPrivateRoot(dir)).toBe(true);
      expect(hiddenByPrivateRoot(join(dir, "new", "file.txt"))).toBe(true);
      expect(hiddenByPrivateRoot(join(dir, "..", "rxsynth-no-such-folder", "file.txt"))).toBe(false);
      expect(hiddenByPrivateRoot(join(dir, "file.txt"), [dir])).toBe(false);
      expect(hiddenByPrivateRoot("/tmp")).toBe(false);
      expect(hiddenByPrivateRoot("/etc/passwd")).toBe(false);
      expect(hiddenByPrivateRoot("relative/file.txt")).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
