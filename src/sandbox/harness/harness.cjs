// Runs one solution and its tests inside the sandbox and reports a single verdict on fd 3.
// The verdict carries a nonce read from stdin before any user code runs, so a program that prints,
// exits early or writes to fd 3 itself cannot pass for a finished test run.
"use strict";
const fs = require("node:fs");
const path = require("node:path");
const util = require("node:util");
const vm = require("node:vm");
const { AssertionError } = require("node:assert");

const HERE = "/harness";
// Error codes that mean the program reached for something the sandbox withholds.
const VIOLATION_CODES = new Set([
  "EROFS", "EACCES", "EPERM", "ENETUNREACH", "EHOSTUNREACH", "ECONNREFUSED", "ENETDOWN",
  "EADDRNOTAVAIL", "ENOTFOUND", "EAI_AGAIN", "ERR_ACCESS_DENIED",
]);
// Limits the sandbox enforces: hitting one is a crash, not a wrong answer.
const RESOURCE_CODES = new Set(["EAGAIN", "ENOMEM", "EMFILE", "ENFILE", "EFBIG", "ENOSPC"]);
const RESOURCE_MESSAGE = /Maximum call stack size exceeded|allocation failed|Invalid (typed )?array length|out of memory/i;

const nonce = fs.readFileSync(0, "utf8").trim();
const job = JSON.parse(fs.readFileSync(path.join(HERE, "job.json"), "utf8"));
let reported = false;
let phase = "code";

function report(event, status = "", message = "", trace = "", missing = []) {
  if (event === "verdict") {
    if (reported) return;
    reported = true;
  }
  const line = { nonce, event, status, message: String(message).slice(0, 4000), trace: trace.slice(-8000), missing: missing.slice(0, 16) };
  fs.writeSync(3, `${JSON.stringify(line)}\n`);
}

function* causes(error, seen = new Set()) {
  if (error === null || typeof error !== "object" || seen.has(error)) return;
  seen.add(error);
  yield error;
  yield* causes(error.cause, seen);
  if (Array.isArray(error.errors)) for (const inner of error.errors) yield* causes(inner, seen);
}

function outside(file) {
  if (typeof file !== "string" || !file.startsWith("/")) return false;
  const normal = path.normalize(file);
  return !job.visibleRoots.some((root) => normal === root || normal.startsWith(`${root.replace(/\/$/, "")}/`));
}

// Paths the error found missing below /tmp or /dev/shm: the sandbox's own there hide the host's, which
// only the runner can check for (a project cloned under /tmp reads as missing, not as off limits).
function missingUnder(error) {
  const found = new Set();
  for (const cause of causes(error)) {
    if (cause.code !== "ENOENT") continue;
    for (const file of [cause.path, cause.dest]) {
      if (typeof file !== "string" || !file.startsWith("/")) continue;
      const normal = path.normalize(file);
      if ((job.privateRoots ?? []).some((root) => normal.startsWith(`${root}/`))) found.add(normal);
    }
  }
  return [...found];
}

function classify(error) {
  for (const cause of causes(error)) {
    if (VIOLATION_CODES.has(cause.code)) return "sandbox_violation";
    // A host path the sandbox does not mount reads as missing, so ENOENT outside the mounted roots
    // means the program went looking for the host's files.
    if (cause.code === "ENOENT" && (outside(cause.path) || outside(cause.dest))) return "sandbox_violation";
  }
  for (const cause of causes(error)) {
    if (RESOURCE_CODES.has(cause.code)) return "crashed";
    if (cause instanceof RangeError && RESOURCE_MESSAGE.test(cause.message)) return "crashed";
  }
  if (error instanceof AssertionError || (error && (error.name === "AssertionError" || error.code === "ERR_ASSERTION"))) {
    return "test_failed";
  }
  // Throwing while the program itself loads is a crash; throwing once the tests call into it is a failed test.
  return phase === "code" ? "crashed" : "test_failed";
}

function describe(error) {
  if (!(error instanceof Error)) return `uncaught ${util.inspect(error)}`;
  const head = `${error.name}: ${error.message}`.trim();
  const frame = String(error.stack ?? "")
    .split("\n")
    .find((line) => line.includes(`${HERE}/solution.js`) || line.includes(`${HERE}/tests.js`));
  const where = frame?.match(/\/harness\/((?:solution|tests)\.js:\d+)/)?.[1];
  return where ? `${head} (at ${where})` : head;
}

// Sent with the verdict too, so the runner can tell the harness's report from what the program printed.
function printTrace(text) {
  const trace = text.endsWith("\n") ? text : `${text}\n`;
  fs.writeSync(2, trace);
  return trace;
}

function fail(error) {
  const trace = printTrace(error instanceof Error ? String(error.stack ?? error) : `Uncaught ${util.inspect(error)}`);
  report("verdict", classify(error), describe(error), trace, missingUnder(error));
  process.exit(1);
}

report("started");
const scripts = {};
for (const part of ["solution", "tests"]) {
  const filename = path.join(HERE, `${part}.js`);
  try {
    scripts[part] = new vm.Script(fs.readFileSync(filename, "utf8"), { filename });
  } catch (error) {
    const trace = printTrace(String(error.stack ?? error));
    const where = String(error.stack ?? "").split("\n")[0].replace(`${HERE}/`, "");
    report("verdict", "syntax_error", `${part}: ${error.name}: ${error.message} (at ${where})`, trace);
    process.exit(1);
  }
}

// Test files written for plain scripts expect require and console.assert; a console.assert that only
// prints would let every failing test pass, so here it throws.
globalThis.require = require;
globalThis.module = module;
globalThis.exports = module.exports;
console.assert = (condition, ...message) => {
  if (!condition) throw new AssertionError({ message: message.length ? util.format(...message) : "console.assert failed" });
};

process.on("uncaughtException", fail);
process.on("unhandledRejection", fail);
process.on("beforeExit", () => report("verdict", "passed"));
process.on("exit", (code) => report("verdict", "test_failed", `exited with code ${code} before the tests finished`));

try {
  scripts.solution.runInThisContext();
  phase = "tests";
  scripts.tests.runInThisContext();
  if (job.entryPoint) vm.runInThisContext(`check(${job.entryPoint});`, { filename: `${HERE}/tests.js` });
} catch (error) {
  fail(error);
}
