// The one place the test suite decides whether it can run the execution sandbox. The sandbox is built on
// Debian's bubblewrap (`bwrap`); without it the sandbox tests are skipped (sandbox-setup.ts prints one
// line saying so), except under CI=true, where they run and fail, so a CI machine cannot pass by skipping.
import { describe, it } from "vitest";
import { findExecutable } from "../../src/sandbox/host.ts";

export const SANDBOX_SKIPPED_MESSAGE = "sandbox tests skipped: bubblewrap (bwrap) is not installed; apt-get install bubblewrap";

/** Whether `bwrap` is on PATH. */
export const hasBubblewrap = findExecutable("bwrap") !== undefined;

/** CI=true (or 1): the sandbox tests must run. */
export const inCi = ["true", "1"].includes((process.env.CI ?? "").toLowerCase());

/** Skip the sandbox tests: no bwrap here, and not in CI. */
export const skipSandbox = !hasBubblewrap && !inCi;

/** A describe block whose tests run programs in the sandbox. */
export const describeWithSandbox = describe.skipIf(skipSandbox);

/** A test that runs programs in the sandbox. */
export const itWithSandbox = it.skipIf(skipSandbox);

/**
 * For a block that cannot be wrapped (a case of describe.each): when the sandbox tests are skipped,
 * registers one skipped test saying why and returns true, so the caller registers nothing else.
 */
export function skippedWithoutSandbox(): boolean {
  if (skipSandbox) it.skip(SANDBOX_SKIPPED_MESSAGE, () => {});
  return skipSandbox;
}
