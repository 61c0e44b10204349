// Error bodies as the openai client reads them. The client takes an error's message, param and code from
// `body.error` only; SGLang and older vLLM send them at the top level ({"object": "error", "message": ...}),
// FastAPI-based servers (Mistral's 422) send pydantic's `detail` list, LM Studio a bare string. Read as they
// come, all of them become "400 status code (no body)": nothing to learn from, nothing for the breaker.

interface Envelope {
  readonly message: string;
  readonly type?: string;
  readonly param?: string | null;
  readonly code?: string | null;
}

/** A `fetch` whose error responses always carry `{error: {message, type, param, code}}`. */
export function withErrorEnvelope(fetchImpl: typeof fetch): typeof fetch {
  return (async (input: string | URL | Request, init?: RequestInit) => {
    const response = await fetchImpl(input, init);
    if (response.status < 400 || !(response.headers.get("content-type") ?? "").includes("json")) return response;
    const text = await response.text();
    const envelope = envelopeOf(text);
    const body = envelope ? JSON.stringify({ error: envelope }) : text;
    return new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers });
  }) as typeof fetch;
}

/** The body's error in OpenAI's shape, or undefined when it already has it (or is not JSON). */
export function envelopeOf(text: string): Envelope | undefined {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!body || typeof body !== "object") return undefined;
  const record = body as Record<string, unknown>;
  const nested = record.error;
  if (nested && typeof nested === "object" && typeof (nested as { message?: unknown }).message === "string") return undefined;
  if (typeof nested === "string") return { message: nested };
  const detail = Array.isArray(record.detail) ? record.detail : (record.message as { detail?: unknown } | undefined)?.detail;
  if (Array.isArray(detail)) return fromDetail(detail);
  if (typeof record.message === "string") {
    return { message: record.message, type: stringOrUndefined(record.type), param: stringOrNull(record.param), code: stringOrNull(record.code) };
  }
  if (typeof record.detail === "string") return { message: record.detail };
  return undefined;
}

/** Pydantic's validation errors: "body.stream_options: Extra inputs are not permitted"; the field is the param. */
function fromDetail(detail: readonly unknown[]): Envelope {
  const items = detail.map((item) => item as { loc?: unknown[]; msg?: unknown });
  const message = items
    .map((item) => `${Array.isArray(item.loc) ? item.loc.join(".") : "(request)"}: ${typeof item.msg === "string" ? item.msg : JSON.stringify(item.msg)}`)
    .join("; ");
  const loc = items[0]?.loc;
  const param = Array.isArray(loc) ? loc.find((part, index) => index > 0 && typeof part === "string" && loc[0] === "body") : undefined;
  return { message, param: typeof param === "string" ? param : null };
}

const stringOrUndefined = (value: unknown) => (typeof value === "string" ? value : undefined);
const stringOrNull = (value: unknown) => (typeof value === "string" ? value : null);
