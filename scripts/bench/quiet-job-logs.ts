/**
 * Imported first by a bench that runs the job's code in its own process (ES modules run in import
 * order, so this runs before the logger and the metrics read their settings): the job's INFO lines
 * and CloudWatch metric lines would bury the bench's figures on standard output.
 */
process.env.LOG_LEVEL ??= 'WARN';
process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';
