import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import type { Sql } from 'postgres';
import { createExportJob } from '../../lib/jobs/export-job';
import { createExportStepWork } from '../../lib/jobs/export-steps';
import { createStartSteps } from '../../lib/jobs/start-steps';
import { runStepInline } from '../../lib/jobs/job-functions';
import { runJobWorker } from '../../lib/jobs/run-job-worker';
import { createRunLedger } from '../../lib/runs/run-ledger';
import { downloadObject } from '../fixtures/export/tarball';

/**
 * Exports `schemas` of a migrated database as the job does (coordinator, one moment, a step per
 * schema, inline), to `s3://bucket/export/<schema>.tgz`; with `folder`, also downloads each tarball
 * there as `<schema>.tgz` (what `npm run export:local` leaves). `configured`: the schemas configured
 * (EXPORT_SCHEMAS) when a run exports fewer. Throws unless the run succeeded.
 */
export async function exportThroughJob(
  target: { sql: Sql; url: string },
  s3: S3Client,
  bucket: string,
  schemas: string[],
  folder?: string,
  configured: string[] = schemas,
): Promise<{ runId: string }> {
  const ledger = createRunLedger(target.sql);
  // The configured schemas, as EXPORT_SCHEMAS: the path every definition is printed under.
  const work = createExportStepWork({ bucket, prefix: 'export/', schemas: configured }, s3);
  const startSteps = createStartSteps({ mode: 'inline' }, schemas.length, (event) => runStepInline(work, event, { url: target.url }));
  const job = createExportJob({ schemas }, startSteps, { bound: 'unbounded' });
  const run = await ledger.enqueue('export', 'http', { schemas });
  const outcome = await runJobWorker(job, { kind: 'run', runId: run.id }, { leaseMs: 60_000 }, { sql: target.sql, ledger });
  if ((outcome as { status?: string }).status !== 'succeeded') {
    const failed = await ledger.getWithSteps(run.id);
    throw new Error(`The export did not succeed: ${JSON.stringify(failed)}`);
  }
  if (folder) {
    await mkdir(folder, { recursive: true });
    for (const schema of schemas) await writeFile(join(folder, `${schema}.tgz`), await downloadObject(s3, bucket, `export/${schema}.tgz`));
  }
  return { runId: run.id };
}
