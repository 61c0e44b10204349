// The program's process: loads the generated code and answers the checker's calls with plain data. It runs
// in a sandbox of its own; the tests, their expected values and the channel to the runner never enter it,
// so whatever it patches or forges, it can only answer calls (or fail to).
"use strict";
const net = require("node:net");
const vm = require("node:vm");
const errors = require("./errors.cjs");
const { MAX_MESSAGE, NotPlain, encode, decode } = require("./protocol.cjs");

const CHANNEL_FD = 3;
const socket = new net.Socket({ fd: CHANNEL_FD, readable: true, writable: true });
let settings;
let buffered = "";
const waiting = [];
let busy = false;

// Code written for plain scripts expects these, as it would from `node solution.js`.
globalThis.require = require;
globalThis.module = module;
globalThis.exports = module.exports;

socket.setEncoding("utf8");
socket.on("data", (chunk) => {
  buffered += chunk;
  for (let at = buffered.indexOf("\n"); at >= 0; at = buffered.indexOf("\n")) {
    waiting.push(buffered.slice(0, at));
    buffered = buffered.slice(at + 1);
  }
  if (buffered.length > MAX_MESSAGE) process.exit(70);
  void serveNext();
});
// The checker is gone: nothing is left to answer.
socket.on("end", () => process.exit(0));
socket.on("error", () => process.exit(0));

// As under plain node, an error nobody catches ends the program; the checker learns it as the program's
// death (at its next call, or when it asks the program to finish).
let dying = false;
function die(error) {
  if (dying) return;
  dying = true;
  const report = describe(error);
  socket.end(`${JSON.stringify({ op: "died", error: report })}\n`, () => process.exit(1));
}
process.on("uncaughtException", die);
process.on("unhandledRejection", die);

// The tests are done: the program still runs until its own pending work (timers, child processes,
// sockets) is done, as it would under plain node, and then says so.
let finishing = false;
process.on("beforeExit", () => {
  if (!finishing || dying) return;
  dying = true;
  socket.ref();
  socket.end(`${JSON.stringify({ op: "finished" })}\n`, () => process.exit(0));
});

function send(message) {
  let line = JSON.stringify(message);
  if (line.length > MAX_MESSAGE) line = JSON.stringify({ op: "not_plain", id: message.id, message: "returned a value of more than 16 MiB" });
  socket.write(`${line}\n`);
}

async function serveNext() {
  if (busy) return;
  busy = true;
  while (waiting.length > 0) {
    const message = JSON.parse(waiting.shift());
    if (message.op === "load") load(message);
    else if (message.op === "call" || message.op === "value") await answer(message);
    else if (message.op === "finish") {
      finishing = true;
      socket.unref();
    }
  }
  busy = false;
}

function load(message) {
  settings = message;
  let script;
  try {
    script = new vm.Script(message.code, { filename: "solution.js" });
  } catch (error) {
    const where = String(error.stack ?? "").split("\n")[0];
    send({ op: "load_failed", status: "syntax_error", message: `solution: ${error.name}: ${error.message} (at ${where})`, trace: errors.trace(error) });
    return;
  }
  try {
    script.runInThisContext();
  } catch (error) {
    // Throwing while the program itself loads is a crash, not a failed test.
    const report = describe(error);
    send({ ...report, op: "load_failed", status: report.status ?? "crashed" });
    return;
  }
  // Every name the solution's own text declares (the checker binds those its tests use; nothing of the
  // tests comes here), and what it exported CommonJS style.
  const functions = [];
  const values = [];
  const declared = new Set([...message.code.matchAll(/[A-Za-z_$][\w$]*/g)].map((match) => match[0]));
  for (const name of declared) {
    let kind;
    try {
      kind = vm.runInThisContext(`typeof ${name}`);
    } catch {
      continue; // a keyword, or a binding not yet initialised
    }
    if (kind === "function") functions.push(name);
    else if (kind !== "undefined") values.push(name);
  }
  send({ op: "loaded", functions, values });
}

async function answer(call) {
  if (call.op === "value") return reply(call.id, () => vm.runInThisContext(call.name), "is", false);
  let result;
  let isAsync = false;
  let args;
  try {
    const fn = vm.runInThisContext(call.name);
    args = decode(call.args);
    result = fn(...args);
    if (result !== null && (typeof result === "object" || typeof result === "function") && typeof result.then === "function") {
      isAsync = true;
      result = await result;
    }
  } catch (error) {
    send({ op: "raise", id: call.id, async: isAsync, error: describe(error) });
    return;
  }
  // Arguments the call changed go back too, so the tests see in-place changes as they would in one process.
  let changed;
  try {
    const after = encode(args);
    if (JSON.stringify(after) !== JSON.stringify(call.args)) changed = after;
  } catch {
    // An argument the call made unsendable: the tests keep theirs as it was.
  }
  reply(call.id, () => result, "returned", isAsync, changed);
}

function reply(id, value, verb, isAsync, changed) {
  try {
    send({ op: "return", id, async: isAsync, value: encode(value()), ...(changed ? { args: changed } : {}) });
  } catch (error) {
    const message = error instanceof NotPlain ? `${verb} ${error.message}, which is not plain data` : `${verb} a value that cannot be read as plain data`;
    send({ op: "not_plain", id, message });
  }
}

/** What the checker needs to rebuild the error and to say why the program stopped. */
function describe(error) {
  let message = errors.describe(error);
  if (errors.diskFull(error)) message += ` (the sandbox's writable space of ${settings.diskMb} MB is full)`;
  const trace = errors.trace(error);
  process.stderr.write(trace);
  const report = {
    type: error instanceof Error ? error.name : null,
    message: String(error instanceof Error ? error.message : "").slice(0, 4000),
    code: error && typeof error === "object" && typeof error.code === "string" ? error.code : null,
    status: errors.limitStatus(error, settings.visible) ?? null,
    describe: message.slice(0, 4000),
    trace: trace.slice(-8000),
    missing: errors.missingUnder(error, settings.private),
  };
  if (!(error instanceof Error)) {
    try {
      report.thrown = encode(error);
    } catch {
      report.thrown = String(error);
    }
  }
  return report;
}
