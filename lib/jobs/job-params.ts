/** Thrown when a job's parameters are not acceptable; its message is safe to show the caller. */
export class InvalidParamsError extends Error {
  override readonly name = 'InvalidParamsError';
}

/** Rejects any field not in `allowed`, naming the unknown ones. */
export function rejectUnknownFields(input: Record<string, unknown>, allowed: readonly string[]): void {
  const unknown = Object.keys(input).filter((key) => !allowed.includes(key));
  if (unknown.length > 0) {
    const expected = allowed.length ? `the only field accepted is ${allowed.map((a) => `"${a}"`).join(', ')}` : 'no fields are accepted';
    throw new InvalidParamsError(`Unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((u) => JSON.stringify(u)).join(', ')}: ${expected}`);
  }
}
