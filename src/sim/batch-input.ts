/** A validation error of a batch input file, as OpenAI lists it in the batch's `errors.data`. */
export interface BatchError {
  readonly code: string;
  readonly message: string;
  readonly param: string | null;
  /** 1-based line of the input file; null for the file as a whole. */
  readonly line: number | null;
}

/** One request of a batch that passed validation. */
export interface BatchLine {
  readonly customId: string;
  readonly body: unknown;
}

/** OpenAI's limit on the requests of one batch. */
const MAX_REQUESTS = 50_000;

/** Reads a batch input file the way OpenAI's validation step does; any error fails the whole batch. */
export function validateInput(content: Buffer, endpoint: string): { lines: BatchLine[]; errors: BatchError[]; model: string | null } {
  const lines: BatchLine[] = [];
  const errors: BatchError[] = [];
  const seen = new Set<string>();
  let model: string | null = null;
  const fail = (line: number | null, code: string, message: string, param: string | null = null) => errors.push({ code, message, param, line });
  const text = content.toString("utf8");
  const raw = text.split("\n");
  if (raw.length > 0 && raw[raw.length - 1] === "") raw.pop();
  if (raw.every((line) => line.trim() === "")) {
    fail(null, "empty_file", "The batch input file is empty.");
    return { lines, errors, model };
  }
  if (raw.length > MAX_REQUESTS) fail(null, "too_many_tasks", `The batch input file has ${raw.length} requests; the limit is ${MAX_REQUESTS}.`);
  for (const [index, rawLine] of raw.entries()) {
    const lineNo = index + 1;
    let parsed: unknown;
    try {
      parsed = JSON.parse(rawLine);
    } catch {
      fail(lineNo, "invalid_json_line", "This line is not parseable as valid JSON.");
      continue;
    }
    if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) {
      fail(lineNo, "invalid_json_line", "This line is not parseable as valid JSON.");
      continue;
    }
    const item = parsed as Record<string, unknown>;
    if (typeof item.custom_id !== "string" || item.custom_id.length === 0) {
      fail(lineNo, "missing_required_parameter", "Missing required parameter: 'custom_id'.", "custom_id");
      continue;
    }
    if (item.method !== "POST") {
      fail(lineNo, "invalid_request", `Invalid value for 'method': ${JSON.stringify(item.method ?? null)}. Only POST is supported.`, "method");
      continue;
    }
    if (item.url !== endpoint) {
      fail(lineNo, "url_mismatch", `The provided url ${JSON.stringify(item.url ?? null)} does not match the batch endpoint ${endpoint}.`, "url");
      continue;
    }
    if (!item.body || typeof item.body !== "object" || Array.isArray(item.body)) {
      fail(lineNo, "missing_required_parameter", "Missing required parameter: 'body'.", "body");
      continue;
    }
    if (seen.has(item.custom_id)) {
      fail(
        lineNo,
        "duplicate_custom_id",
        "The custom_id for this request is a duplicate of another request. The custom_id parameter must be unique for each request in a batch.",
        "custom_id",
      );
      continue;
    }
    seen.add(item.custom_id);
    const lineModel = (item.body as { model?: unknown }).model;
    if (typeof lineModel === "string") {
      if (model === null) model = lineModel;
      else if (lineModel !== model) {
        fail(lineNo, "model_mismatch", `The model ${lineModel} does not match the model ${model} of the batch's other requests: one batch, one model.`, "body.model");
        continue;
      }
    }
    lines.push({ customId: item.custom_id, body: item.body });
  }
  return { lines: errors.length > 0 ? [] : lines, errors, model };
}
