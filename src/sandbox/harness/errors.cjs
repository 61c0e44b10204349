// How an error reads as a sandbox status. Used by the program's process to describe what it threw and
// by the checker for what the tests threw; only the checker decides the verdict.
"use strict";
const path = require("node:path");
const util = require("node:util");

// Error codes that mean the program reached for something the sandbox withholds.
const VIOLATION_CODES = new Set([
  "EROFS", "EACCES", "EPERM", "ENETUNREACH", "EHOSTUNREACH", "ECONNREFUSED", "ENETDOWN",
  "EADDRNOTAVAIL", "ENOTFOUND", "EAI_AGAIN", "ERR_ACCESS_DENIED",
]);
// Limits the sandbox enforces: hitting one is a crash, not a wrong answer.
const RESOURCE_CODES = new Set(["EAGAIN", "ENOMEM", "EMFILE", "ENFILE", "EFBIG", "ENOSPC"]);
const RESOURCE_MESSAGE = /Maximum call stack size exceeded|allocation failed|Invalid (typed )?array length|out of memory/i;
const SOURCES = ["solution.js", "tests.js"];

function* causes(error, seen = new Set()) {
  if (error === null || typeof error !== "object" || seen.has(error)) return;
  seen.add(error);
  yield error;
  yield* causes(error.cause, seen);
  if (Array.isArray(error.errors)) for (const inner of error.errors) yield* causes(inner, seen);
}

function outside(file, visible) {
  if (typeof file !== "string" || !file.startsWith("/")) return false;
  const normal = path.normalize(file);
  return !visible.some((root) => normal === root || normal.startsWith(`${root.replace(/\/$/, "")}/`));
}

// Paths the error found missing below /tmp or /dev/shm: the sandbox's own there hide the host's, which
// only the runner can check for (a project cloned under /tmp reads as missing, not as off limits).
function missingUnder(error, privateRoots) {
  const found = new Set();
  for (const cause of causes(error)) {
    if (cause.code !== "ENOENT") continue;
    for (const file of [cause.path, cause.dest]) {
      if (typeof file !== "string" || !file.startsWith("/")) continue;
      const normal = path.normalize(file);
      if (privateRoots.some((root) => normal.startsWith(`${root}/`))) found.add(normal);
    }
  }
  return [...found].slice(0, 16);
}

/** sandbox_violation or crashed when the error is the sandbox's doing, else undefined. */
function limitStatus(error, visible) {
  for (const cause of causes(error)) {
    if (VIOLATION_CODES.has(cause.code)) return "sandbox_violation";
    // A host path the sandbox does not mount reads as missing, so ENOENT outside the mounted roots
    // means the program went looking for the host's files.
    if (cause.code === "ENOENT" && (outside(cause.path, visible) || outside(cause.dest, visible))) return "sandbox_violation";
  }
  for (const cause of causes(error)) {
    if (RESOURCE_CODES.has(cause.code)) return "crashed";
    if (cause instanceof RangeError && RESOURCE_MESSAGE.test(cause.message)) return "crashed";
  }
  return undefined;
}

function diskFull(error) {
  for (const cause of causes(error)) if (cause.code === "ENOSPC") return true;
  return false;
}

function isAssertion(error) {
  return Boolean(error && typeof error === "object" && (error.name === "AssertionError" || error.code === "ERR_ASSERTION"));
}

function describe(error) {
  if (!(error instanceof Error)) return `uncaught ${util.inspect(error)}`;
  const head = `${error.name}: ${error.message}`.trim();
  const frame = String(error.stack ?? "")
    .split("\n")
    .find((line) => SOURCES.some((source) => line.includes(`${source}:`)));
  const where = frame?.match(/((?:solution|tests)\.js:\d+)/)?.[1];
  return where ? `${head} (at ${where})` : head;
}

function trace(error) {
  const text = error instanceof Error ? String(error.stack ?? error) : `Uncaught ${util.inspect(error)}`;
  return text.endsWith("\n") ? text : `${text}\n`;
}

module.exports = { causes, missingUnder, limitStatus, diskFull, isAssertion, describe, trace };
