import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';

/**
 * CloudWatch metrics in the embedded metric format: one JSON line on stdout per record, which
 * CloudWatch Logs turns into metrics with no API call (and so no permission) from the function.
 * The CloudWatch dashboard in serverless.yml charts these names; keep the two in step.
 */
export const METRICS_NAMESPACE = 'WaterAbstractionJobs';
export const METRICS_SERVICE = 'water-abstraction-jobs';

/** Metric names; a run's carry the dimensions {service, job}, a step's {service, job, schema}. */
export const METRIC = {
  duration: 'Duration',
  rows: 'Rows',
  bytes: 'Bytes',
  succeeded: 'Succeeded',
  failed: 'Failed',
  skipped: 'Skipped',
  cancelled: 'Cancelled',
} as const;

export type Outcome = 'succeeded' | 'failed';

export interface RunFigures {
  job: string;
  outcome: Outcome | 'skipped' | 'cancelled';
  durationMs?: number;
  rows?: number;
  bytes?: number;
}

export interface StepFigures {
  job: string;
  /** The step's name: for the export, the schema. */
  schema: string;
  outcome: Outcome | 'cancelled';
  durationMs: number;
  rows?: number;
  bytes?: number;
}

/**
 * A Metrics object per record: its dimensions are the record's own, and publishing it writes one
 * line with all its figures. Outcome is a 0/1 count per outcome, so Sum counts runs and Average
 * is a rate.
 */
function publish(dimensions: Record<string, string>, figures: { outcome: RunFigures['outcome']; durationMs?: number; rows?: number; bytes?: number }) {
  const metrics = new Metrics({ namespace: METRICS_NAMESPACE, serviceName: METRICS_SERVICE, defaultDimensions: dimensions });
  metrics.addMetric(METRIC.succeeded, MetricUnit.Count, figures.outcome === 'succeeded' ? 1 : 0);
  metrics.addMetric(METRIC.failed, MetricUnit.Count, figures.outcome === 'failed' ? 1 : 0);
  if (figures.outcome === 'skipped') metrics.addMetric(METRIC.skipped, MetricUnit.Count, 1);
  if (figures.outcome === 'cancelled') metrics.addMetric(METRIC.cancelled, MetricUnit.Count, 1);
  if (figures.durationMs !== undefined) metrics.addMetric(METRIC.duration, MetricUnit.Milliseconds, figures.durationMs);
  if (figures.rows !== undefined) metrics.addMetric(METRIC.rows, MetricUnit.Count, figures.rows);
  if (figures.bytes !== undefined) metrics.addMetric(METRIC.bytes, MetricUnit.Bytes, figures.bytes);
  metrics.publishStoredMetrics();
}

/** One line per run that ended (or was skipped): duration, outcome, and rows/bytes where the job has them. */
export function recordRunMetrics({ job, ...figures }: RunFigures): void {
  publish({ job }, figures);
}

/** One line per step of a run (per schema for the export), whether it succeeded or failed. */
export function recordStepMetrics({ job, schema, ...figures }: StepFigures): void {
  publish({ job, schema }, figures);
}
