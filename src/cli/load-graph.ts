import { access, readFile } from "node:fs/promises";
import { extname, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parse as parseYaml } from "yaml";
import { ConfigError } from "../errors.ts";
import { isGraphDefinition, type GraphDefinition, type GraphOptionValues } from "../graph.ts";

/** Imports a graph file (TypeScript or JavaScript) and returns its default-exported definition. */
export async function loadGraph(file: string): Promise<GraphDefinition> {
  const path = resolve(file);
  try {
    await access(path);
  } catch {
    throw new ConfigError(`graph file ${file} does not exist; \`rxsynth graphs\` lists the ready ones`);
  }
  const module = (await import(pathToFileURL(path).href)) as { default?: unknown; graph?: unknown };
  const definition = module.default ?? module.graph;
  if (!isGraphDefinition(definition)) {
    throw new ConfigError(`${file} must export default defineGraph({ name, description, defaults, build })`);
  }
  return definition;
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
