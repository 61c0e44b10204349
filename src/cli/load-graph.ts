import { access, readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
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

/** Reads a JSON config file of option overrides. */
export async function readConfigFile(file: string): Promise<GraphOptionValues> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch {
    throw new ConfigError(`config file ${file} cannot be read`);
  }
  try {
    const value = JSON.parse(text) as unknown;
    if (typeof value !== "object" || value === null || Array.isArray(value)) throw new Error("not an object");
    return value as GraphOptionValues;
  } catch (error) {
    throw new ConfigError(`config file ${file} must hold a JSON object of graph options (${(error as Error).message})`);
  }
}
