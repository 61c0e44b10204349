/** An API error as the simulator answers it: the status and OpenAI's `{error: {message, type, param, code}}` fields. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
  ) {
    super(message);
  }
}
