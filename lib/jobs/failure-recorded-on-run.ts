/**
 * Errors whose failure the worker has already recorded on the run (the job ran and failed), as
 * opposed to errors before the run was taken (a malformed event, an unknown run, no database).
 * Inline dispatch needs the difference: the first kind was handed over, the second was not.
 */
const recorded = new WeakSet<object>();

export function markFailureRecordedOnRun<T>(error: T): T {
  if (typeof error === 'object' && error !== null) recorded.add(error);
  return error;
}

export function isFailureRecordedOnRun(error: unknown): boolean {
  return typeof error === 'object' && error !== null && recorded.has(error);
}
