/** An export failure that already says which step failed (reading the database, or uploading). */
export class ExportStepError extends Error {
  constructor(step: string, cause: unknown) {
    super(`${step}: ${describe(cause)}`, { cause });
    this.name = 'ExportStepError';
  }
}

/** Wraps a failure with the step it happened in, unless an inner step already did. */
export function failedStep(step: string, cause: unknown): ExportStepError {
  return cause instanceof ExportStepError ? cause : new ExportStepError(step, cause);
}

function describe(cause: unknown): string {
  if (!(cause instanceof Error)) return String(cause);
  // AggregateError (e.g. every address of a host refused) has an empty message of its own.
  if (cause instanceof AggregateError && !cause.message) return cause.errors.map(describe).join('; ');
  const code = (cause as { code?: unknown }).code;
  const message = cause.message || cause.name;
  const described = typeof code === 'string' && !message.includes(code) ? `${message} (${code})` : message;
  // row_security is off on the export's connections (snapshot-connections.ts): the server's words
  // say what happened, not what to do about it.
  return ROW_SECURITY.test(message) ? `${described}: the export's role must own the table or have BYPASSRLS, or the table cannot be exported whole` : described;
}

const ROW_SECURITY = /would be affected by row-level security policy/;
