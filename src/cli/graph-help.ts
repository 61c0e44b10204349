// `rxsynth run <graph> --help`: after the run command's own help, the graph's options with their
// defaults and the doc comment above each key of the graph file's `defaults` object.
//
// The comments are read with a small scanner rather than the TypeScript compiler: `typescript` is a
// dev dependency (installed users do not have it, and 20+ MB is a lot for help text), and the defaults
// of a graph file are one object literal whose top-level keys carry `/** ... */` comments. The scanner
// skips strings, templates, regular expressions and nested values, follows `...spread` and
// `defaults: name` to an object in the same file or a relative import, and falls back to the ready
// graph of the same name (a file that does `export default extendGraph(selfInstruct, ...)`). A key whose
// comment is not found is still listed, with its default.
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import type { Command } from "commander";
import type { GraphDefinition } from "../graph.ts";
import { loadGraphFile, READY_GRAPHS_DIR } from "./load-graph.ts";

/** Adds the graph's options to `rxsynth run <graph> --help`; call once the run command is registered. */
export function addGraphHelp(program: Command): void {
  const runCommand = program.commands.find((command) => command.name() === "run");
  if (!runCommand) return;
  let text = "\n`rxsynth run <graph> --help` lists that graph's options; set them with --set key=value.";
  runCommand.addHelpText("after", () => text);
  // Help is printed while commander parses, before any action and synchronously; the graph is loaded here,
  // just before the run command's arguments are parsed.
  program.hook("preSubcommand", async (_program, subcommand) => {
    if (subcommand !== runCommand) return;
    const args = program.args.slice(1);
    const graph = helpRequestedFor(runCommand, args);
    if (graph === undefined) return;
    try {
      const { definition, path } = await loadGraphFile(graph);
      text = `\n${graphOptionsHelp(definition, optionDocs(path, definition.name), graph)}`;
    } catch (error) {
      text = `\n(the options of ${graph} cannot be shown: ${(error as Error).message})`;
    }
  });
}

/** The graph argument of `run ... --help`, or undefined when help is not asked for or no graph is given. */
export function helpRequestedFor(runCommand: Command, args: readonly string[]): string | undefined {
  const end = args.indexOf("--");
  const flags = end < 0 ? args : args.slice(0, end);
  if (!flags.includes("--help") && !flags.includes("-h")) return undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--") return args[i + 1];
    if (!arg.startsWith("-") || arg === "-") return arg;
    const option = runCommand.options.find((candidate) => candidate.long === arg || candidate.short === arg);
    if (option && (option.required || option.optional) && !arg.includes("=")) i++;
  }
  return undefined;
}

const WIDTH = 100;

/** The options block: each key, its default, its doc comment; and how to set one. */
export function graphOptionsHelp(definition: GraphDefinition, docs: ReadonlyMap<string, string>, argument: string): string {
  const keys = Object.keys(definition.defaults);
  if (keys.length === 0) return `Graph ${definition.name} has no options.`;
  const keyWidth = Math.max(...keys.map((key) => key.length)) + 2;
  const indent = " ".repeat(2 + keyWidth);
  const lines = [`Options of graph ${definition.name} (set with --set key=value, or from a file with --config):`];
  for (const key of keys) {
    lines.push(`  ${key.padEnd(keyWidth)}${shownDefault(definition.defaults[key])}`);
    const doc = docs.get(key);
    if (doc) lines.push(...wrap(doc, WIDTH - indent.length).map((line) => indent + line));
  }
  const example = keys.find((key) => typeof definition.defaults[key] === "number") ?? keys[0]!;
  lines.push("", `Example: rxsynth run ${argument} --set ${example}=${setValue(definition.defaults[example])}`);
  return lines.join("\n");
}

function shownDefault(value: unknown): string {
  if (value === undefined) return "(no default)";
  if (typeof value === "function") return "(a function)";
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 120 ? `${text.slice(0, 119)}…` : text;
}

function setValue(value: unknown): string {
  const text = typeof value === "string" ? value : (JSON.stringify(value) ?? "");
  return /^[\w./:@+-]+$/.test(text) ? text : `'${text.replaceAll("'", "'\\''")}'`;
}

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  if (line) lines.push(line);
  return lines;
}

/**
 * The doc comment of each top-level key of a graph file's defaults object (`/** ... *\/` right above the
 * key), following spreads and imports; for keys not found there, the ready graph called `name`.
 */
export function optionDocs(path: string, name?: string): Map<string, string> {
  const docs = new Map<string, string>();
  const text = readSource(path);
  if (text !== undefined) {
    // `defaults: { ... }` inside defineGraph, else `defaults: name` or the shorthand `defaults` (bound to an object).
    const inline = /\bdefineGraph\s*\(\s*\{[\s\S]*?\bdefaults\s*:\s*\{/.exec(text);
    if (inline) collectObject(text, inline.index + inline[0].length - 1, path, docs, 0);
    const named = /\bdefaults\s*:\s*([A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)?)\s*[,}\n]/.exec(text)?.[1];
    if (docs.size === 0 && named) collectNamed(text, path, named, docs, 0);
    if (docs.size === 0) collectNamed(text, path, "defaults", docs, 0);
  }
  const ready = name === undefined ? undefined : join(READY_GRAPHS_DIR, `${name}.ts`);
  if (ready && resolve(ready) !== resolve(path) && existsSync(ready)) {
    for (const [key, doc] of optionDocs(ready)) if (!docs.has(key)) docs.set(key, doc);
  }
  return docs;
}

const MAX_HOPS = 4;

function readSource(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

/** Docs of the object literal bound to `name` in this file, or in the file it is imported from. */
function collectNamed(text: string, path: string, name: string, docs: Map<string, string>, hops: number): void {
  if (hops > MAX_HOPS) return;
  const [head, member] = name.split(".") as [string, string | undefined];
  if (member === undefined) {
    const declaration = new RegExp(`\\b(?:const|let|var)\\s+${escape(head)}\\b\\s*(?::[^=;]*)?=\\s*\\{`).exec(text);
    if (declaration) {
      collectObject(text, declaration.index + declaration[0].length - 1, path, docs, hops);
      return;
    }
  }
  const imported = importOf(text, head);
  if (!imported) return;
  const file = resolveImport(path, imported.from);
  const source = file && readSource(file);
  if (!file || source === undefined) return;
  if (imported.name === "default" || member === "defaults") {
    // A graph imported whole: its file's defaults.
    for (const [key, doc] of optionDocs(file)) if (!docs.has(key)) docs.set(key, doc);
  } else {
    collectNamed(source, file, imported.name, docs, hops + 1);
  }
}

/** `import { a as name } from "x"` -> { name: "a", from: "x" }; `import name from "x"` -> { name: "default", ... }. */
function importOf(text: string, local: string): { name: string; from: string } | undefined {
  for (const match of text.matchAll(/\bimport\s+(?:type\s+)?([\w$]+\s*,?\s*)?(?:\{([^}]*)\})?\s*from\s*["']([^"']+)["']/g)) {
    const [, defaultName, named, from] = match;
    if (defaultName?.replace(/[\s,]/g, "") === local) return { name: "default", from: from! };
    for (const part of named?.split(",") ?? []) {
      const [imported, alias] = part.trim().replace(/^type\s+/, "").split(/\s+as\s+/);
      if ((alias ?? imported)?.trim() === local && imported) return { name: imported.trim(), from: from! };
    }
  }
  return undefined;
}

function resolveImport(from: string, specifier: string): string | undefined {
  if (!specifier.startsWith(".")) return undefined;
  const base = resolve(dirname(from), specifier);
  const candidates = [base, base.replace(/\.js$/, ".ts"), base.replace(/\.mjs$/, ".mts"), `${base}.ts`, `${base}.mts`, `${base}.js`];
  return candidates.find((candidate) => existsSync(candidate));
}

function escape(text: string): string {
  return text.replace(/[$]/g, "\\$");
}

/** Walks the object literal whose `{` is at `open`, collecting the doc comment above each top-level key. */
function collectObject(text: string, open: number, path: string, docs: Map<string, string>, hops: number): void {
  const spreads: string[] = [];
  let depth = 0;
  let expectingKey = true;
  let pending: string | undefined;
  let previous = "{"; // the last significant character, to tell a regular expression from a division
  let i = open;
  while (i < text.length) {
    const c = text[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (text.startsWith("/*", i)) {
      const end = text.indexOf("*/", i + 2);
      if (end < 0) break;
      if (depth === 1 && expectingKey && text[i + 2] === "*") pending = cleanDoc(text.slice(i + 3, end));
      i = end + 2;
      continue;
    }
    if (text.startsWith("//", i)) {
      const end = text.indexOf("\n", i);
      i = end < 0 ? text.length : end + 1;
      continue;
    }
    if (c === '"' || c === "'" || c === "`") {
      const end = skipString(text, i);
      if (depth === 1 && expectingKey) take(text.slice(i + 1, end - 1));
      i = end;
      previous = c;
      continue;
    }
    if (c === "/" && /[(,=:[!&|?{};+\-*%<>~^]/.test(previous)) {
      i = skipRegExp(text, i);
      previous = "/";
      continue;
    }
    previous = c;
    if ("([{".includes(c)) {
      depth++;
      i++;
      continue;
    }
    if (")]}".includes(c)) {
      depth--;
      i++;
      if (depth === 0) break;
      continue;
    }
    if (depth === 1 && c === ",") {
      expectingKey = true;
      pending = undefined;
      i++;
      continue;
    }
    if (depth === 1 && expectingKey) {
      const rest = text.slice(i, i + 200);
      const spread = /^\.\.\.\s*([A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)?)/.exec(rest);
      if (spread) {
        spreads.push(spread[1]!);
        expectingKey = false;
        i += spread[0].length;
        previous = "x";
        continue;
      }
      const key = /^[A-Za-z_$][\w$]*/.exec(rest);
      if (key) {
        take(key[0]);
        i += key[0].length;
        previous = "x";
        continue;
      }
    }
    i++;
  }
  for (const spread of spreads) {
    const found = new Map<string, string>();
    collectNamed(text, path, spread, found, hops + 1);
    // A key written in the object after the spread keeps its own comment.
    for (const [key, doc] of found) if (!docs.has(key)) docs.set(key, doc);
  }

  function take(key: string): void {
    if (pending) docs.set(key, pending);
    pending = undefined;
    expectingKey = false;
  }
}

function cleanDoc(body: string): string {
  return body
    .split("\n")
    .map((line) => line.replace(/^\s*\*?\s?/, "").trim())
    .filter((line) => line.length > 0)
    .join(" ");
}

/** The index just past the string or template literal starting at `start`. */
function skipString(text: string, start: number): number {
  const quote = text[start];
  let i = start + 1;
  while (i < text.length) {
    const c = text[i]!;
    if (c === "\\") {
      i += 2;
      continue;
    }
    if (c === quote) return i + 1;
    if (quote === "`" && text.startsWith("${", i)) {
      let depth = 1;
      i += 2;
      while (i < text.length && depth > 0) {
        const d = text[i]!;
        if (d === '"' || d === "'" || d === "`") {
          i = skipString(text, i);
          continue;
        }
        if (d === "{") depth++;
        if (d === "}") depth--;
        i++;
      }
      continue;
    }
    i++;
  }
  return i;
}

function skipRegExp(text: string, start: number): number {
  let i = start + 1;
  let inClass = false;
  while (i < text.length && text[i] !== "\n") {
    const c = text[i]!;
    if (c === "\\") i++;
    else if (c === "[") inClass = true;
    else if (c === "]") inClass = false;
    else if (c === "/" && !inClass) return i + 1;
    i++;
  }
  return i;
}
