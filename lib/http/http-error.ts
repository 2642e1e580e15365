/** An error whose message is safe to show to the caller, with the HTTP status it maps to. */
export class HttpError extends Error {
  override readonly name = 'HttpError';
  constructor(
    readonly statusCode: number,
    message: string,
    /** Extra fields for the JSON answer, e.g. the id of the run that blocks a new one. */
    readonly details: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}
