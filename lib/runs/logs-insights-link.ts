import { runsInAws } from '../config';
import type { Env } from '../config';
import type { Run } from './run';

/**
 * Deployed, the link of a run's logs (GET /jobs/runs/{id} answers it as `logs`): over the log
 * groups in RUN_LOG_GROUPS (serverless.yml lists the functions that log a run's lines), in the
 * function's own region. Elsewhere (sls offline, tests) there is no CloudWatch to link to.
 */
export function readRunLogsLink(env: Env): ((run: Pick<Run, 'id' | 'requestedAt' | 'finishedAt'>) => string) | undefined {
  const groups = (env.RUN_LOG_GROUPS ?? '').split(',').map((group) => group.trim()).filter(Boolean);
  const region = env.AWS_REGION;
  if (!runsInAws(env) || !region || groups.length === 0) return undefined;
  return (run) => logsInsightsLink(run, region, groups);
}

/**
 * A link to CloudWatch Logs Insights, opened on the query of a run's log lines (every line a
 * worker logs for a run carries its runId) over the given log groups, from just before the run
 * was requested to a while after it ended. The console's URL format is its own and undocumented:
 * the query is a JSURL-like object (`~(key~value~...)`, strings `'`-prefixed and URI-encoded with
 * `*` for `%`), escape()d, then URI-encoded with `$` for `%` (as the console itself writes it).
 */
export function logsInsightsLink(run: Pick<Run, 'id' | 'requestedAt' | 'finishedAt'>, region: string, logGroups: readonly string[], now: Date = new Date()): string {
  const start = new Date(Date.parse(run.requestedAt) - 60_000);
  const end = run.finishedAt ? new Date(Date.parse(run.finishedAt) + 15 * 60_000) : now;
  const query = [
    'fields @timestamp, level, message, step, error.message, @log',
    `| filter runId = "${run.id}"`,
    '| sort @timestamp asc',
    '| limit 1000',
  ].join('\n');
  const detail = jsurl({
    end: end.toISOString(),
    start: start.toISOString(),
    timeType: 'ABSOLUTE',
    tz: 'UTC',
    editorString: query,
    isLiveTail: false,
    source: [...logGroups],
  });
  const fragment = encodeURIComponent(`?queryDetail=${escapeLikeJs(detail)}`).replace(/%/g, '$');
  return `https://${region}.console.aws.amazon.com/cloudwatch/home?region=${region}#logsV2:logs-insights${fragment}`;
}

type Value = string | number | boolean | Value[] | { [key: string]: Value };

/** JSURL: the whole `~(...)`; an object `(key~value~key~value)`, an array `(~item~item)`. */
function jsurl(value: Value): string {
  return `~${jsurlValue(value)}`;
}

function jsurlValue(value: Value): string {
  if (typeof value === 'string') return `'${encodeURIComponent(value).replace(/%/g, '*')}`;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return `(${value.map((item) => `~${jsurlValue(item)}`).join('')})`;
  return `(${Object.entries(value).map(([key, item]) => `${key}~${jsurlValue(item)}`).join('~')})`;
}

/** What the deprecated global escape() does: every character but A-Z a-z 0-9 @ * _ + - . / as %XX (or %uXXXX). */
function escapeLikeJs(text: string): string {
  return text.replace(/[^A-Za-z0-9@*_+\-./]/g, (c) => {
    const code = c.charCodeAt(0);
    return code < 256 ? `%${code.toString(16).toUpperCase().padStart(2, '0')}` : `%u${code.toString(16).toUpperCase().padStart(4, '0')}`;
  });
}
