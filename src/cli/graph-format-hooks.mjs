// Module hooks (node:module register) that load a user's graph file as an ES module whatever the
// "type" of the package.json above it. In a project `npm init -y` made ("type": "commonjs"), Node and
// tsx would take `my-graph.ts` for CommonJS: its `import ... from "rxsynth"` then fails with
// "Cannot require() ES Module ... in a cycle", or, with CommonJS hooks, loads a second copy of rxsynth
// whose errors and state are not the CLI's. Graph files are written as modules (the README's examples
// and the ready graphs are), so the CLI takes them for what they are.
//
// loadGraph marks the graph's URL with MARK; this hook strips the mark, so the module is the same one a
// plain import of the file gets. Files the graph imports from its own project (not node_modules) are
// loaded the same way when they are written as modules. A file that uses require() and no import or
// export, and any .cjs/.cts file, stays CommonJS.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

export const MARK = "rxsynth-graph";

/** URLs this hook made modules; their own imports are judged the same way. */
const forced = new Set();

/** An import or export statement at the start of a line: the file is written as an ES module. */
export const MODULE_SYNTAX = /^[ \t]*(?:import[ \t]*[\w{*'"]|export[ \t]+[\w{*]|export[ \t]*\{)/m;

function writtenAsModule(url) {
  if (!url.startsWith("file:") || /\.c[jt]s$/.test(new URL(url).pathname) || url.includes("/node_modules/")) return false;
  try {
    return MODULE_SYNTAX.test(readFileSync(fileURLToPath(url), "utf8"));
  } catch {
    return false;
  }
}

export async function resolve(specifier, context, nextResolve) {
  let marked = false;
  if (specifier.startsWith("file:") && specifier.includes(MARK)) {
    const url = new URL(specifier);
    if (url.searchParams.has(MARK)) {
      url.searchParams.delete(MARK);
      specifier = url.href;
      marked = true;
    }
  }
  // The graph's URL is absolute; without the importer (load-graph.ts), tsx does not take a `.js` graph
  // file for the `.ts` file of the same name, as it would for an import written in TypeScript.
  const resolved = await nextResolve(specifier, marked ? { ...context, parentURL: undefined } : context);
  const fromGraph = marked || (context.parentURL !== undefined && forced.has(context.parentURL));
  if (!fromGraph || resolved.format !== "commonjs" || !writtenAsModule(resolved.url)) return resolved;
  forced.add(resolved.url);
  return { ...resolved, format: "module" };
}
