// The checker: runs the tests and decides the verdict, in a sandbox the generated program never runs in.
//
// The program runs in a second sandbox (program.cjs) and gets only the generated code. The tests run here,
// with the solution's functions stood in for by proxies: a call sends its arguments over a socket and
// rebuilds the answer from plain data (protocol.cjs). Patching assert or console.assert, calling the
// harness's listeners, exiting early or returning an object with a forged valueOf changes nothing here:
// the program can only compute answers. Node has no fork and no prctl, so the separation is two sandboxes
// (two pid namespaces; two uids in root mode) rather than two processes in one.
"use strict";
const fs = require("node:fs");
const util = require("node:util");
const vm = require("node:vm");
const assert = require("node:assert");
const errors = require("./errors.cjs");
const { MAX_MESSAGE, NotPlain, encode, decode } = require("./protocol.cjs");

const RESULT_FD = 3;
const CHANNEL_FD = 5;
const job = JSON.parse(fs.readFileSync(0, "utf8"));
const { nonce } = job;
let reported = false;
/** Set once the program has left the protocol (exited, died, forged a message): no test outcome can pass after it. */
let forfeit;

function report(event, status = "", message = "", trace = "", missing = [], extra = {}) {
  if (event === "verdict") {
    if (reported) return;
    reported = true;
  }
  const line = { nonce, event, status, message: String(message).slice(0, 4000), trace: String(trace).slice(-8000), missing, ...extra };
  fs.writeSync(RESULT_FD, `${JSON.stringify(line)}\n`);
}

function verdict(status, message = "", trace = "", missing = [], extra = {}) {
  report("verdict", status, message, trace, missing, extra);
  process.exit(status === "passed" ? 0 : 1);
}

// ---------------------------------------------------------------- the channel (blocking: calls are synchronous)

let pending = Buffer.alloc(0);
const chunk = Buffer.alloc(65536);

function send(message) {
  sendLine(`${JSON.stringify(message)}\n`);
}

function sendLine(line) {
  const data = Buffer.from(line, "utf8");
  for (let at = 0; at < data.length; ) at += fs.writeSync(CHANNEL_FD, data, at);
}

function receive() {
  for (;;) {
    const newline = pending.indexOf(10);
    if (newline >= 0) {
      const line = pending.subarray(0, newline).toString("utf8");
      pending = pending.subarray(newline + 1);
      return JSON.parse(line);
    }
    if (pending.length > MAX_MESSAGE) throw new SyntaxError("a message longer than 16 MiB");
    let read;
    try {
      read = fs.readSync(CHANNEL_FD, chunk, 0, chunk.length, null);
    } catch {
      read = 0;
    }
    if (read === 0) return null;
    pending = Buffer.concat([pending, chunk.subarray(0, read)]);
  }
}

class ProgramGone extends Error {}

function lose(status, message, extra = {}) {
  forfeit = { status, message, extra };
  throw new ProgramGone(message);
}

function expect(when) {
  let answer;
  try {
    answer = receive();
  } catch {
    lose("tampering", "the program's process wrote to the checker's channel");
  }
  // The program's sandbox ended: the runner, which sees how, says whether it crashed.
  if (answer === null) lose("test_failed", `the program's process ended ${when}`, { programEnded: true });
  if (typeof answer !== "object" || Array.isArray(answer)) lose("tampering", "the program's process wrote to the checker's channel");
  if (answer.op === "died" && answer.error && typeof answer.error === "object") {
    const error = answer.error;
    const status = ["sandbox_violation", "crashed"].includes(error.status) ? error.status : "test_failed";
    lose(status, String(error.describe ?? error.message ?? "the program threw"), { missing: error.missing ?? [] });
  }
  return answer;
}

// ---------------------------------------------------------------- calls

const ERRORS = { Error, TypeError, RangeError, SyntaxError, ReferenceError, EvalError, URIError };
const reports = new WeakMap();
let numbers = 0;

function rebuild(error) {
  if (error === null || typeof error !== "object") lose("tampering", "the program's process wrote to the checker's channel");
  if ("thrown" in error) {
    try {
      return decode(error.thrown);
    } catch {
      return String(error.thrown);
    }
  }
  const made =
    error.type === "AssertionError" ? new assert.AssertionError({ message: error.message }) : new (ERRORS[error.type] ?? Error)(error.message);
  if (!(error.type in ERRORS) && error.type !== "AssertionError" && typeof error.type === "string") {
    Object.defineProperty(made, "name", { value: error.type });
  }
  if (typeof error.code === "string") made.code = error.code;
  reports.set(made, error);
  return made;
}

function call(name, args) {
  if (forfeit) throw new ProgramGone(forfeit.message);
  const id = ++numbers;
  let encoded;
  try {
    encoded = encode(args);
  } catch (error) {
    // Not a TypeError the tests could take for the solution's: the call never happened.
    const what = error instanceof NotPlain ? error.message : `a value that cannot be sent (${error?.name ?? typeof error})`;
    lose("test_failed", `the tests passed ${what} to ${name}; only plain data crosses to the program`);
  }
  const answer = ask({ op: "call", id, name, args: encoded }, `during a call to ${name}`);
  const settle = (value, failed) => {
    if (answer.async) return failed ? Promise.reject(value) : Promise.resolve(value);
    if (failed) throw value;
    return value;
  };
  if (answer.op === "return") {
    const value = decoded(answer.value);
    if ("args" in answer) {
      const after = decoded(answer.args);
      if (!Array.isArray(after) || after.length !== args.length) lose("tampering", "the program's process wrote to the checker's channel");
      args.forEach((old, index) => {
        try {
          update(old, after[index]);
        } catch {
          // A frozen argument keeps its value, as it would in one process in sloppy mode.
        }
      });
    }
    return settle(value, false);
  }
  if (answer.op === "not_plain") {
    lose("test_failed", `${name} ${answer.message ?? "returned a value that is not plain data"}; the tests see only plain data (numbers, strings, arrays, plain objects, Maps, Sets, Dates)`);
  }
  if (answer.op === "raise" && answer.error && typeof answer.error === "object") return settle(rebuild(answer.error), true);
  lose("tampering", "the program's process wrote to the checker's channel");
}

function ask(message, when) {
  let line;
  try {
    line = `${JSON.stringify(message)}\n`;
  } catch (error) {
    lose("test_failed", `the tests passed a value that cannot be sent ${when} (${error?.message ?? error})`);
  }
  if (line.length > MAX_MESSAGE) lose("test_failed", `the tests passed more than 16 MiB ${when}`);
  try {
    sendLine(line);
  } catch {
    // The program is gone; expect() says how.
  }
  const answer = expect(when);
  if (answer.id !== message.id) lose("tampering", "the program's process wrote to the checker's channel");
  return answer;
}

function decoded(value) {
  try {
    return decode(value);
  } catch {
    return lose("tampering", "the program's process wrote to the checker's channel");
  }
}

const isPlainObject = (value) => value !== null && typeof value === "object" && [Object.prototype, null].includes(Object.getPrototypeOf(value));

/** Makes the tests' own `target` equal `fresh` in place, keeping the identity of containers inside it that stay. */
function update(target, fresh) {
  const nested = (old, next) => (Array.isArray(old) && Array.isArray(next)) || (isPlainObject(old) && isPlainObject(next));
  if (Array.isArray(target) && Array.isArray(fresh)) {
    if (target.length !== fresh.length) target.length = fresh.length;
    fresh.forEach((next, index) => (nested(target[index], next) ? update(target[index], next) : (target[index] = next)));
  } else if (isPlainObject(target) && isPlainObject(fresh)) {
    for (const key of Object.keys(target)) if (!(key in fresh)) delete target[key];
    for (const [key, next] of Object.entries(fresh)) nested(target[key], next) ? update(target[key], next) : (target[key] = next);
  } else if (target instanceof Map && fresh instanceof Map) {
    target.clear();
    for (const [key, value] of fresh) target.set(key, value);
  } else if (target instanceof Set && fresh instanceof Set) {
    target.clear();
    for (const value of fresh) target.add(value);
  } else if (target instanceof Date && fresh instanceof Date) {
    target.setTime(fresh.getTime());
  }
}

function proxy(name) {
  const stand = { [name]: (...args) => call(name, args) }[name];
  return stand;
}

// ---------------------------------------------------------------- the verdict

function judge(error) {
  if (forfeit) return [forfeit.status, forfeit.message, forfeit.extra.missing ?? [], forfeit.extra];
  const fromProgram = error && typeof error === "object" ? reports.get(error) : undefined;
  if (fromProgram) {
    const status = ["sandbox_violation", "crashed"].includes(fromProgram.status) ? fromProgram.status : "test_failed";
    return [status, fromProgram.describe, fromProgram.missing ?? [], {}];
  }
  for (const cause of errors.causes(error)) {
    const inner = reports.get(cause);
    if (inner && ["sandbox_violation", "crashed"].includes(inner.status)) return [inner.status, inner.describe, inner.missing ?? [], {}];
  }
  const status = errors.limitStatus(error, job.visibleRoots) ?? "test_failed";
  return [status, errors.describe(error), errors.missingUnder(error, job.privateRoots), {}];
}

function fail(error) {
  const [status, message, missing, extra] = judge(error);
  const trace = errors.trace(error);
  fs.writeSync(2, trace);
  verdict(status, message, trace, missing, extra);
}

report("started");
let tests;
try {
  tests = new vm.Script(job.tests, { filename: "tests.js" });
} catch (error) {
  const where = String(error.stack ?? "").split("\n")[0];
  verdict("syntax_error", `tests: ${error.name}: ${error.message} (at ${where})`, errors.trace(error));
}

// Tests written for the REPL or `node -e` call a global assert; it is node's, never the solution's.
globalThis.assert = assert;
// Names the tests may mean from the solution: identifiers in their text that are not already globals here
// (a solution defining `Math`, `JSON` or `assert` does not change what the tests' own uses of them mean).
// They stay here: the program is told nothing of the tests.
const names = new Set([...job.tests.matchAll(/[A-Za-z_$][\w$]*/g)].map((match) => match[0]).filter((name) => !(name in globalThis)));
if (job.entryPoint) names.add(job.entryPoint);

let loaded;
try {
  send({ op: "load", code: job.code, visible: job.visibleRoots, private: job.privateRoots, diskMb: job.diskMb });
  loaded = expect("before its tests ran");
} catch (error) {
  fail(error);
}
if (loaded.op === "load_failed") {
  verdict(String(loaded.status), String(loaded.describe ?? loaded.message ?? ""), String(loaded.trace ?? ""), loaded.missing ?? []);
}
if (loaded.op !== "loaded") verdict("tampering", "the program's process wrote to the checker's channel");

const functions = new Set();
try {
  for (const name of loaded.functions ?? []) {
    if (typeof name !== "string" || !names.has(name)) continue;
    functions.add(name);
    globalThis[name] = proxy(name);
  }
  for (const name of loaded.values ?? []) {
    if (typeof name !== "string" || !names.has(name) || functions.has(name)) continue;
    const answer = ask({ op: "value", id: ++numbers, name }, `reading ${name}`);
    if (answer.op === "return") globalThis[name] = decoded(answer.value);
  }
} catch (error) {
  fail(error);
}

// Test files written for plain scripts expect require and console.assert; a console.assert that only
// prints would let every failing test pass, so here it throws.
globalThis.require = require;
globalThis.module = module;
globalThis.exports = module.exports;
console.assert = (condition, ...message) => {
  if (!condition) throw new assert.AssertionError({ message: message.length ? util.format(...message) : "console.assert failed" });
};

process.on("uncaughtException", fail);
process.on("unhandledRejection", fail);
process.on("beforeExit", () => settle(process.exitCode));

/**
 * The tests are over (the event loop drained, or they called process.exit): passed only if they set no
 * failing exit code (node:test and hand-written tests report failures that way) and the program ended well.
 */
function settle(code) {
  // A test that caught the program's exit does not turn it into a pass.
  if (!forfeit) finishProgram();
  if (forfeit) verdict(forfeit.status, forfeit.message, "", forfeit.extra.missing ?? [], forfeit.extra);
  if (code !== undefined && code !== 0) verdict("test_failed", `the tests ended with exit code ${code}`);
  verdict("passed");
}

/** The tests are done; the program's own pending work must end without an error too. */
function finishProgram() {
  try {
    send({ op: "finish" });
    const answer = expect("after the tests");
    if (answer.op !== "finished") lose("tampering", "the program's process wrote to the checker's channel");
  } catch (error) {
    if (!(error instanceof ProgramGone)) throw error;
  }
}
process.on("exit", (code) => {
  if (reported) return;
  // process.exit(0) from the tests is their way of saying they are done.
  if (code === 0 && !forfeit) {
    settleOnExit();
    return;
  }
  report("verdict", "test_failed", `exited with code ${code} before the tests finished`);
});

function settleOnExit() {
  finishProgram();
  if (forfeit) report("verdict", forfeit.status, forfeit.message, "", forfeit.extra.missing ?? [], forfeit.extra);
  else report("verdict", "passed");
}

try {
  tests.runInThisContext();
  if (job.entryPoint) {
    if (!functions.has(job.entryPoint)) throw new ReferenceError(`the solution defines no function ${job.entryPoint} for the tests to check`);
    vm.runInThisContext("check", { filename: "tests.js" })(proxy(job.entryPoint));
  }
} catch (error) {
  fail(error);
}
