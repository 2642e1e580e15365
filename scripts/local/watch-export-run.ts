import type { Sql } from 'postgres';
import { formatBytes, formatCount, formatTables } from '../format-amounts';

interface StepRow {
  name: string;
  status: string;
  progress: { tablesDone?: number; rows?: number; bytes?: number } | null;
  result: { tables?: number; rows?: number; bytes?: number; compressedBytes?: number; timeTakenMs?: number } | null;
  error: string | null;
}

const ENDED = new Set(['succeeded', 'failed', 'timed_out']);

/** One line for a step that ended: what it wrote and how long it took, or why it failed. */
export function stepLine(step: StepRow): string {
  if (step.status === 'succeeded' && step.result) {
    const { tables = 0, rows = 0, bytes = 0, compressedBytes = 0, timeTakenMs = 0 } = step.result;
    return `  ${step.name.padEnd(10)} done    ${formatTables(tables)}, ${formatCount(rows)} rows, ${formatBytes(bytes)} of CSV (${formatBytes(compressedBytes)} compressed) in ${(timeTakenMs / 1000).toFixed(1)} s`;
  }
  return `  ${step.name.padEnd(10)} ${step.status.toUpperCase()}  ${step.error ?? ''}`;
}

/**
 * Follows the export run requested at or after `since` in the ledger (jobs.runs, jobs.run_steps)
 * and prints what a person wants to see: a line per schema as its step ends and, while steps run,
 * their progress: one updating line on a terminal, a line every 10 s at most otherwise.
 * Returns a stop function that prints whatever ended since the last look.
 */
export function watchExportRun(sql: Sql, since: Date, print: (line: string) => void = console.log): () => Promise<void> {
  const tty = process.stdout.isTTY === true;
  const printed = new Set<string>();
  let lastProgressAt = Date.now();
  let progressShown = false;
  let stopped = false;
  const clearProgress = () => {
    if (tty && progressShown) process.stdout.write('\r\x1b[2K');
    progressShown = false;
  };
  const look = async (): Promise<void> => {
    const steps = await sql<StepRow[]>`
      SELECT s.name, s.status, s.progress, s.result, s.error FROM jobs.run_steps s
      WHERE s.run_id = (SELECT id FROM jobs.runs WHERE job = 'export' AND requested_at >= ${since} ORDER BY requested_at DESC LIMIT 1)
      ORDER BY s.position`.catch(() => [] as StepRow[]);
    for (const step of steps) {
      if (!ENDED.has(step.status) || printed.has(step.name)) continue;
      printed.add(step.name);
      clearProgress();
      print(stepLine(step));
    }
    const running = steps.filter((step) => !ENDED.has(step.status));
    if (running.length === 0 || stopped) return;
    const rows = running.reduce((total, step) => total + (step.progress?.rows ?? 0), 0);
    const bytes = running.reduce((total, step) => total + (step.progress?.bytes ?? 0), 0);
    const line = `  … ${steps.length - running.length} of ${steps.length} schemas done; under way: ${running.map((step) => step.name).join(', ')} (${rows.toLocaleString('en-GB')} rows, ${formatBytes(bytes)} so far)`;
    if (tty) {
      process.stdout.write(`\r\x1b[2K${line.slice(0, (process.stdout.columns ?? 100) - 1)}`);
      progressShown = true;
    } else if (Date.now() - lastProgressAt >= 10_000) {
      print(line);
      lastProgressAt = Date.now();
    }
  };
  let looking = Promise.resolve();
  const timer = setInterval(() => {
    looking = looking.then(look);
  }, 1000);
  return async () => {
    clearInterval(timer);
    await looking;
    stopped = true;
    await look();
    clearProgress();
  };
}
