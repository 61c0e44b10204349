import { readdir, readFile, stat } from "node:fs/promises";
import { basename, dirname, extname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parse as parseYaml } from "yaml";
import { ConfigError } from "../errors.ts";
import { isGraphDefinition, type GraphDefinition, type GraphOptionValues } from "../graph.ts";
import { MARK, MODULE_SYNTAX } from "./graph-format-hooks.mjs";

/** The package's ready graphs (one file each); `rxsynth graphs` lists them. */
export const READY_GRAPHS_DIR = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "graphs");

/**
 * Imports a graph file (TypeScript or JavaScript) and returns its default-exported definition. An argument
 * that is not an existing file may name a ready graph: `quickstart`, `quickstart.ts` or `graphs/quickstart.ts`
 * run from another folder; an existing file always wins.
 */
export async function loadGraph(file: string): Promise<GraphDefinition> {
  return (await loadGraphFile(file)).definition;
}

/** As loadGraph, with the path of the file the definition came from (for its doc comments). */
export async function loadGraphFile(file: string): Promise<{ definition: GraphDefinition; path: string }> {
  const path = (await exists(resolve(file))) ? resolve(file) : await readyGraphPath(file);
  await refuseCommonJs(file, path);
  let module: { default?: unknown; graph?: unknown };
  try {
    module = (await import(graphImportUrl(path))) as typeof module;
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (typeof code === "string" && /^ERR_REQUIRE_(CYCLE_MODULE|ESM|ASYNC_MODULE)$/.test(code)) {
      throw new ConfigError(`${file} was loaded as CommonJS; rename it to .mts or set "type": "module" in its package.json`, { cause: error });
    }
    throw error;
  }
  const definition = module.default ?? module.graph;
  if (!isGraphDefinition(definition)) {
    throw new ConfigError(`${file} must export default defineGraph({ name, description, defaults, build })`);
  }
  return { definition, path };
}

/** A file, not a folder: `rxsynth run quickstart --out quickstart` run twice still means the ready graph. */
async function exists(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/** The ready graph a name (or its file name) stands for; a ConfigError listing them when none does. */
async function readyGraphPath(file: string): Promise<string> {
  // A bare name, or the README's graphs/<name>.ts typed in a folder that has no graphs/ of its own.
  const bare = !/[\\/]/.test(file) || /^graphs[\\/][^\\/]+$/.test(file);
  if (!bare) throw new ConfigError(`graph file ${file} does not exist; \`rxsynth graphs\` lists the ready ones`);
  const name = basename(file).replace(/\.(ts|mts|js|mjs)$/, "");
  const byFile = join(READY_GRAPHS_DIR, `${name}.ts`);
  if (name !== "index" && (await exists(byFile))) return byFile;
  const files = (await readdir(READY_GRAPHS_DIR)).filter((entry) => entry.endsWith(".ts") && entry !== "index.ts").sort();
  const ready = await Promise.all(files.map(async (entry) => ({ path: join(READY_GRAPHS_DIR, entry), name: (await loadGraph(join(READY_GRAPHS_DIR, entry))).name })));
  const match = ready.find((graph) => graph.name === name);
  if (match) return match.path;
  throw new ConfigError(`"${file}" is neither a graph file nor a ready graph; the ready graphs are: ${ready.map((graph) => graph.name).join(", ")}`);
}

/** Graph files are ES modules; a CommonJS one cannot share the CLI's rxsynth, so it is refused with what to change. */
async function refuseCommonJs(file: string, path: string): Promise<void> {
  const extension = extname(path);
  if (extension === ".mts" || extension === ".mjs") return;
  const text = await readFile(path, "utf8");
  const commonJs = extension === ".cts" || extension === ".cjs" || (!MODULE_SYNTAX.test(text) && /\brequire\s*\(|\bmodule\.exports\b|\bexports\.\w+\s*=/.test(text));
  if (commonJs) {
    throw new ConfigError(`${file} is CommonJS (require, module.exports); write it as an ES module: import { defineGraph } from "rxsynth"; export default defineGraph({...}), in a .ts, .mts, .js or .mjs file`);
  }
}

/**
 * The URL to import a graph file by. Under the CLI (bin/rxsynth.mjs registers graph-format-hooks.mjs) it
 * carries the mark that makes the file an ES module even in a "type": "commonjs" project.
 */
function graphImportUrl(path: string): string {
  const url = pathToFileURL(path);
  if ((globalThis as Record<symbol, unknown>)[Symbol.for("rxsynth.graphFormatHooks")] === true) url.searchParams.set(MARK, "");
  return url.href;
}

/** Parses `--set key=value` against the type of the option's default, so `--set count=50` is a number. */
export function parseOverrides(definition: GraphDefinition, assignments: readonly string[]): GraphOptionValues {
  const overrides: GraphOptionValues = {};
  for (const assignment of assignments) {
    const equals = assignment.indexOf("=");
    if (equals <= 0) throw new ConfigError(`--set expects key=value, got "${assignment}"`);
    const key = assignment.slice(0, equals);
    const text = assignment.slice(equals + 1);
    if (!(key in definition.defaults)) {
      throw new ConfigError(`graph "${definition.name}" has no option "${key}"; its options are: ${Object.keys(definition.defaults).join(", ")}`);
    }
    overrides[key] = coerce(key, text, definition.defaults[key]);
  }
  return overrides;
}

function coerce(key: string, text: string, example: unknown): unknown {
  switch (typeof example) {
    case "number": {
      const value = Number(text);
      if (!Number.isFinite(value)) throw new ConfigError(`option ${key} is a number; "${text}" is not`);
      return value;
    }
    case "boolean":
      if (text === "true" || text === "false") return text === "true";
      throw new ConfigError(`option ${key} is true or false; "${text}" is neither`);
    case "string":
      return text;
    default:
      try {
        return JSON.parse(text) as unknown;
      } catch {
        if (example === null || example === undefined) return text;
        throw new ConfigError(`option ${key} takes JSON (like its default ${JSON.stringify(example)}); "${text}" is not JSON`);
      }
  }
}

/** Reads a JSON or YAML (.yaml, .yml) config file of option overrides. */
export async function readConfigFile(file: string): Promise<GraphOptionValues> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch {
    throw new ConfigError(`config file ${file} cannot be read`);
  }
  try {
    const yaml = [".yaml", ".yml"].includes(extname(file).toLowerCase());
    const value = (yaml ? parseYaml(text) : JSON.parse(text)) as unknown;
    if (typeof value !== "object" || value === null || Array.isArray(value)) throw new Error("not a mapping of option names to values");
    return value as GraphOptionValues;
  } catch (error) {
    throw new ConfigError(`config file ${file} must hold a JSON or YAML object of graph options (${(error as Error).message})`);
  }
}

/** Config values must name real options and have their defaults' types (a number where a number is expected). */
export function checkedConfig(definition: GraphDefinition, config: GraphOptionValues): GraphOptionValues {
  for (const [key, value] of Object.entries(config)) {
    if (!(key in definition.defaults)) {
      throw new ConfigError(`config sets "${key}", which graph "${definition.name}" does not have; its options are: ${Object.keys(definition.defaults).join(", ")}`);
    }
    const expected = definition.defaults[key];
    if (expected !== null && expected !== undefined && typeof expected !== "object" && typeof value !== typeof expected) {
      throw new ConfigError(`config sets "${key}" to ${JSON.stringify(value)}, but it is a ${typeof expected} (default ${JSON.stringify(expected)})`);
    }
  }
  return config;
}
