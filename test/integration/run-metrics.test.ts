import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { runStepInline } from '../../lib/jobs/job-functions';
import { createExportJob } from '../../lib/jobs/export-job';
import { createExportStepWork } from '../../lib/jobs/export-steps';
import { createStartSteps } from '../../lib/jobs/start-steps';
import { runJobWorker } from '../../lib/jobs/run-job-worker';
import { createTimeLimitedJob } from '../../lib/jobs/time-limited-job';
import { METRICS_NAMESPACE } from '../../lib/metrics';
import { createRunLedger } from '../../lib/runs/run-ledger';
import { startSampleEnvironment } from '../support/sample-environment';
import type { SampleEnvironment } from '../support/sample-environment';

/**
 * The embedded-metric-format lines a real run writes to stdout (what CloudWatch Logs reads in
 * AWS): one per run, one per export schema, with the figures the run recorded.
 */

interface EmfLine {
  _aws: { Timestamp: number; CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string; Unit: string }[] }[] };
  [key: string]: unknown;
}

let environment: SampleEnvironment;

beforeAll(async () => {
  environment = await startSampleEnvironment();
}, 120_000);

afterAll(async () => {
  await environment?.stop();
});

/** Runs `work` and returns the EMF lines it wrote to stdout. */
async function emfLinesOf(work: () => Promise<unknown>): Promise<EmfLine[]> {
  const written: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation(((chunk: string | Uint8Array, ...rest: never[]) => {
    written.push(String(chunk));
    return write(chunk, ...rest);
  }) as typeof process.stdout.write);
  try {
    await work().catch(() => {});
  } finally {
    spy.mockRestore();
  }
  return written
    .join('')
    .split('\n')
    .filter((line) => line.includes('"_aws"'))
    .map((line) => JSON.parse(line) as EmfLine);
}

function metricNames(line: EmfLine): string[] {
  return line._aws.CloudWatchMetrics[0]!.Metrics.map((m) => m.Name).sort();
}

describe('CloudWatch embedded metrics', () => {
  it('an export writes a line per schema step (duration, rows, bytes, outcome) and one for the run, where its last step closes it', async () => {
    const { db, s3, bucket } = environment;
    // The fan-out carried out in this process, one step at a time so the lines come in schema order.
    const work = createExportStepWork({ bucket, prefix: 'export/' }, s3.client);
    const startSteps = createStartSteps({ mode: 'inline' }, 1, (event) => runStepInline(work, event, { url: db.url }));
    const job = createExportJob({ schemas: ['crm', 'idm', 'no_such_schema'] }, startSteps, { bound: 'unbounded' });
    let result: unknown;
    const lines = await emfLinesOf(async () => {
      const outcome = await runJobWorker(job, { kind: 'new', trigger: 'manual', params: {} }, { leaseMs: 60_000 }, { sql: db.sql, ledger: createRunLedger(db.sql) });
      result = outcome;
    });
    expect(result, 'the run fails: one schema does not exist').toBeUndefined();
    const [run] = await db.sql<{ result: unknown; error: string }[]>`select result, error from jobs.runs where job = 'export'`;
    expect(run!.error).toMatch(/no_such_schema/);

    for (const line of lines) {
      expect(line._aws.CloudWatchMetrics[0]!.Namespace).toBe(METRICS_NAMESPACE);
      expect(line.service).toBe('water-abstraction-jobs');
      expect(line.job).toBe('export');
    }
    const steps = lines.filter((line) => 'schema' in line);
    expect(steps.map((line) => line.schema)).toEqual(['crm', 'idm', 'no_such_schema']);
    for (const step of steps) expect(step._aws.CloudWatchMetrics[0]!.Dimensions).toEqual([['service', 'job', 'schema']]);

    // The figures are the ones the schema's export counted: rows from its tables in the database.
    const [{ rows: crmRows } = { rows: -1 }] = await db.sql<{ rows: number }[]>`
      select sum((xpath('/row/c/text()', query_to_xml(format('select count(*) as c from %I.%I', table_schema, table_name), false, true, '')))[1]::text::int)::int as rows
      from information_schema.tables where table_schema = 'crm' and table_type = 'BASE TABLE'`;
    expect(steps[0]).toMatchObject({ Succeeded: 1, Failed: 0, Rows: crmRows });
    expect(metricNames(steps[0]!)).toEqual(['Bytes', 'Duration', 'Failed', 'Rows', 'Succeeded']);
    expect(steps[0]!.Bytes as number).toBeGreaterThan(0);
    expect(steps[2]).toMatchObject({ Succeeded: 0, Failed: 1 });
    expect(metricNames(steps[2]!)).toEqual(['Duration', 'Failed', 'Succeeded']);

    const runs = lines.filter((line) => !('schema' in line));
    expect(runs).toHaveLength(1);
    expect(runs[0]!._aws.CloudWatchMetrics[0]!.Dimensions).toEqual([['service', 'job']]);
    expect(runs[0]).toMatchObject({ Succeeded: 0, Failed: 1 });
    expect(runs[0]!.Duration as number).toBeGreaterThanOrEqual(0);
    expect(runs[0]!._aws.CloudWatchMetrics[0]!.Metrics).toContainEqual({ Name: 'Duration', Unit: 'Milliseconds' });
  }, 120_000);

  it('a scheduled run skipped because another is active writes one line: Skipped', async () => {
    const { db } = environment;
    const ledger = createRunLedger(db.sql);
    const active = await ledger.enqueue('time-limited', 'http', {});
    const job = createTimeLimitedJob({ days: 50, timeZone: 'Europe/London' });
    let outcome: unknown;
    const lines = await emfLinesOf(async () => {
      outcome = await runJobWorker(job, { kind: 'new', trigger: 'schedule', params: {} }, { leaseMs: 60_000 }, { sql: db.sql, ledger });
    });
    expect(outcome).toMatchObject({ status: 'skipped', activeRunId: active.id });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ job: 'time-limited', Skipped: 1, Succeeded: 0, Failed: 0 });
    await db.sql`delete from jobs.runs where job = 'time-limited'`;
  });

  it('a time-limited run writes one line with its duration, outcome and rows added', async () => {
    const { db } = environment;
    const job = createTimeLimitedJob({ days: 50, timeZone: 'Europe/London' });
    const lines = await emfLinesOf(() => runJobWorker(job, { kind: 'new', trigger: 'manual', params: {} }, { leaseMs: 60_000 }, { sql: db.sql, ledger: createRunLedger(db.sql) }));
    const [{ count } = { count: -1 }] = await db.sql<{ count: number }[]>`select (result->>'count')::int as count from jobs.runs where job = 'time-limited'`;
    expect(count).toBeGreaterThan(0);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ job: 'time-limited', Succeeded: 1, Failed: 0, Rows: count });
    expect(metricNames(lines[0]!)).toEqual(['Duration', 'Failed', 'Rows', 'Succeeded']);
  }, 120_000);
});
