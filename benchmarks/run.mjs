#!/usr/bin/env node
// `npm run bench -- <name>` runs benchmarks/<name>.ts under tsx; with no name it lists them.
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const names = readdirSync(here).filter((f) => f.endsWith(".ts")).map((f) => f.slice(0, -3)).sort();
const wanted = process.argv.slice(2);
if (wanted.length === 0) {
  console.log(`benchmarks: ${names.join(", ")}\nrun one with: npm run bench -- <name>`);
  process.exit(0);
}
for (const name of wanted) {
  if (!names.includes(name)) {
    console.error(`no benchmark "${name}"; there are: ${names.join(", ")}`);
    process.exit(2);
  }
  const result = spawnSync(process.execPath, ["--expose-gc", "--import", "tsx", join(here, `${name}.ts`)], { stdio: "inherit" });
  if (result.status !== 0) process.exit(result.status ?? 1);
}
