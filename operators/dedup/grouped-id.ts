/**
 * A sample id stored with its group, for indexes that must not compare members of one group (see
 * nearDedup's `group`). The group's length comes first, so neither the group nor the id needs a separator
 * it could itself contain; src/scale/shared-near-index.ts reads the same form inside Redis, whose Lua
 * counts bytes, so the length is the group's UTF-8 byte length.
 */
export function groupedId(group: string, id: string): string {
  return `${Buffer.byteLength(group, "utf8")}:${group}${id}`;
}

/** The group and id of a stored id written by `groupedId`. */
export function splitGroupedId(stored: string): { readonly group: string; readonly id: string } {
  const colon = stored.indexOf(":");
  const length = Number(stored.slice(0, colon));
  if (colon < 1 || !Number.isInteger(length)) throw new Error(`not a grouped id: ${JSON.stringify(stored.slice(0, 80))}`);
  const rest = Buffer.from(stored.slice(colon + 1), "utf8");
  return { group: rest.subarray(0, length).toString("utf8"), id: rest.subarray(length).toString("utf8") };
}
