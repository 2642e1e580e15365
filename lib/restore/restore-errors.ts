/**
 * Why a restore ended without replacing anything, sorted by what the person at the terminal can
 * do about it (`npm run restore` exits 1 or 2 accordingly).
 */

/** The restore looked and said no: a tarball fails its check, a definition the target cannot take, a row that will not load. Exit 1. */
export class RestoreRefusedError extends Error {
  override readonly name = 'RestoreRefusedError';
  readonly exitCode = 1;
}

/** The restore could not run: bad arguments, an unreadable source, an unreachable target, another restore running. Exit 2. */
export class RestoreCannotRunError extends Error {
  override readonly name = 'RestoreCannotRunError';
  readonly exitCode = 2;
}

/** A failure's message with its cause's, for one line: `Loading "water"."x": the connection was lost (read ECONNRESET)`. */
export function describeFailure(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as { code?: unknown }).code;
  const detail = (error as { detail?: unknown }).detail;
  let message = error.message || error.name;
  if (typeof code === 'string' && /^(ECONNRESET|ECONNREFUSED|EPIPE|CONNECTION_ENDED|CONNECTION_CLOSED|CONNECTION_DESTROYED|CONNECT_TIMEOUT|57P01)$/.test(code)) {
    message = `the connection to the target was lost (${message})`;
  }
  if (typeof detail === 'string' && detail) message += ` (${detail})`;
  return message;
}
