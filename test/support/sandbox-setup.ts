// Vitest global setup: runs once per `vitest run`, before any test file, and says once why the sandbox
// tests are skipped. Under CI=true they are not skipped: they run and fail, and this line says why.
import { SANDBOX_SKIPPED_MESSAGE, hasBubblewrap, inCi } from "./sandbox.ts";

export default function setup(): void {
  if (hasBubblewrap) return;
  console.log(
    inCi ? "CI=true: bubblewrap (bwrap) is not installed, so the sandbox tests fail; apt-get install bubblewrap" : SANDBOX_SKIPPED_MESSAGE,
  );
}
