import { describe, expect, it, vi } from 'vitest';
import { requesterOf } from '../../lib/http/requester';
import { handleCancelRunRequest, handleSchedulePauseRequest } from '../../lib/jobs/handle-run-requests';
import { readRestoreDispatch } from '../../lib/jobs/restore-after-export';
import { refuseMixedRuns, restoreRunSchemaNames } from '../../lib/jobs/restore-job';
import { createRestoreTarget } from '../../lib/restore/restore-target';
import { RunCancelledError, watchForCancel } from '../../lib/runs/cancel-watch';
import type { RequestedBy } from '../../lib/runs/run';
import { RunNotFoundError, RunStateError } from '../../lib/runs/run-errors';
import { fakeRunLedger } from '../support/fakes';
import { logsInsightsLink, readRunLogsLink } from '../../lib/runs/logs-insights-link';
import { describeRequester } from '../../lib/runs/run-ledger';

const RUN = { id: '5b0e9c1d-2f3a-4b5c-8d6e-7f8091a2b3c4', requestedAt: '2026-12-07T00:00:00.000Z', finishedAt: '2026-12-07T00:05:00.000Z' };

/** The console's own decoding of a Logs Insights link: `$` back to `%`, URI-decoded, unescaped, JSURL read back. */
function decodeQueryDetail(link: string): string {
  const fragment = link.slice(link.indexOf('#logsV2:logs-insights') + '#logsV2:logs-insights'.length);
  const once = decodeURIComponent(fragment.replace(/\$/g, '%'));
  expect(once.startsWith('?queryDetail=')).toBe(true);
  return unescape(once.slice('?queryDetail='.length));
}

describe('logsInsightsLink', () => {
  it('opens Logs Insights in the region on a query of the run\'s lines over the log groups, from a minute before the request to 15 minutes after the end', () => {
    const link = logsInsightsLink(RUN, 'eu-west-2', ['/aws/lambda/a-dev-exportWorker', '/aws/lambda/a-dev-exportSchemaWorker']);
    expect(link.startsWith('https://eu-west-2.console.aws.amazon.com/cloudwatch/home?region=eu-west-2#logsV2:logs-insights$3FqueryDetail$3D')).toBe(true);
    const detail = decodeQueryDetail(link);
    expect(detail).toBe(
      "~(end~'2026-12-07T00*3A20*3A00.000Z~start~'2026-12-06T23*3A59*3A00.000Z~timeType~'ABSOLUTE~tz~'UTC~editorString~'" +
        'fields*20*40timestamp*2C*20level*2C*20message*2C*20step*2C*20error.message*2C*20*40log*0A*7C*20filter*20runId*20*3D*20*22' +
        "5b0e9c1d-2f3a-4b5c-8d6e-7f8091a2b3c4*22*0A*7C*20sort*20*40timestamp*20asc*0A*7C*20limit*201000~isLiveTail~false" +
        "~source~(~'*2Faws*2Flambda*2Fa-dev-exportWorker~'*2Faws*2Flambda*2Fa-dev-exportSchemaWorker))",
    );
    // The query itself, as the console shows it.
    const query = decodeURIComponent(/editorString~'([^~]*)/.exec(detail)![1]!.replace(/\*/g, '%'));
    expect(query).toBe(`fields @timestamp, level, message, step, error.message, @log\n| filter runId = "${RUN.id}"\n| sort @timestamp asc\n| limit 1000`);
  });

  it('is given only where the function runs in AWS with its log groups set', () => {
    const env = { AWS_LAMBDA_FUNCTION_NAME: 'svc-prod-getRun', AWS_REGION: 'eu-west-2', RUN_LOG_GROUPS: '/aws/lambda/a, /aws/lambda/b' };
    expect(readRunLogsLink(env)?.(RUN)).toContain('*2Faws*2Flambda*2Fb');
    expect(readRunLogsLink({ ...env, IS_OFFLINE: 'true' })).toBeUndefined();
    expect(readRunLogsLink({ ...env, RUN_LOG_GROUPS: '' })).toBeUndefined();
  });
});

describe('requesterOf', () => {
  it('takes the key\'s id, the address and the user agent, never the key', () => {
    const event = { requestContext: { identity: { apiKey: 'secret-value', apiKeyId: 'abc123', sourceIp: '203.0.113.9', userAgent: 'curl/8' } } } as never;
    const requester = requesterOf(event);
    expect(requester).toEqual({ kind: 'http', apiKeyId: 'abc123', sourceIp: '203.0.113.9', userAgent: 'curl/8' });
    expect(JSON.stringify(requester)).not.toContain('secret-value');
    expect(requesterOf({ headers: { 'user-agent': 'from-the-header' } })).toEqual({ kind: 'http', apiKeyId: null, sourceIp: null, userAgent: 'from-the-header' });
    expect(describeRequester(requester)).toBe('API key abc123 (203.0.113.9)');
    expect(describeRequester({ kind: 'schedule' })).toBe('the schedule');
  });
});

describe('watchForCancel', () => {
  it('aborts its signal with RunCancelledError once the ledger says cancelled, asking again after a failed look; stop() ends the asking', async () => {
    const answers = [async () => false, async () => Promise.reject(new Error('connection lost')), async () => true];
    let asked = 0;
    const watch = watchForCancel('r1', () => (answers[asked++] ?? (async () => true))(), 5);
    await new Promise((resolve) => watch.signal.addEventListener('abort', resolve, { once: true }));
    expect(asked).toBe(3);
    expect(watch.signal.reason).toBeInstanceOf(RunCancelledError);
    expect((watch.signal.reason as RunCancelledError).runId).toBe('r1');

    let polls = 0;
    const stopped = watchForCancel('r2', async () => (polls += 1) > 1000, 5);
    stopped.stop();
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(polls).toBe(0);
    expect(stopped.signal.aborted).toBe(false);
  });
});

describe('the cancel and schedule routes', () => {
  const id = '5b0e9c1d-2f3a-4b5c-8d6e-7f8091a2b3c4';
  const request = (method: string, path: Record<string, string>, body?: unknown) =>
    ({ httpMethod: method, pathParameters: path, body: body === undefined ? null : JSON.stringify(body), isBase64Encoded: false, headers: { 'Content-Type': 'application/json' } }) as never;
  const overview = (job: string) => ({ schedule: job === 'restore' ? null : ({ expression: 'cron(15 20 * * ? *)' } as never) });

  it('cancel: 202 with the run; 409 for one that ended or is being put in place; 404 unknown; 400 not a uuid; 405 another method', async () => {
    const cancel = vi.fn(async () => ({ id, status: 'cancelled', steps: [] }) as never);
    const ledger = async () => fakeRunLedger({ cancel });
    expect((await handleCancelRunRequest(request('POST', { id }), ledger)).statusCode).toBe(202);
    const ended = async () => fakeRunLedger({ cancel: async () => Promise.reject(new RunStateError(id, 'succeeded', 'cancel')) });
    const answer = await handleCancelRunRequest(request('POST', { id }), ended);
    expect([answer.statusCode, JSON.parse(answer.body)]).toEqual([409, { error: `Run ${id} has already ended (succeeded): there is nothing to cancel`, status: 'succeeded' }]);
    const swapping = async () => fakeRunLedger({ cancel: async () => Promise.reject(new RunStateError(id, 'running', 'cancel', 'its schemas are being put in place')) });
    expect(JSON.parse((await handleCancelRunRequest(request('POST', { id }), swapping)).body).error).toBe(`Run ${id} cannot be cancelled: its schemas are being put in place`);
    const unknown = async () => fakeRunLedger({ cancel: async () => Promise.reject(new RunNotFoundError(id)) });
    expect((await handleCancelRunRequest(request('POST', { id }), unknown)).statusCode).toBe(404);
    expect((await handleCancelRunRequest(request('POST', { id: 'latest' }), ledger)).statusCode).toBe(400);
    expect((await handleCancelRunRequest(request('DELETE', { id }), ledger)).statusCode).toBe(405);
    expect(cancel).toHaveBeenCalledTimes(1);
  });

  it('schedule: 200 with the pause and who made it; 409 for a job with no schedule; 404 unknown job; 400 any other body; 405 another method', async () => {
    const setSchedulePause = vi.fn(async (_job: string, paused: boolean, by: RequestedBy) => ({ paused, by, at: '2026-12-07T00:00:00.000Z' }));
    const ledger = async () => fakeRunLedger({ setSchedulePause });
    const paused = await handleSchedulePauseRequest(request('PUT', { job: 'time-limited' }, { paused: true }), ledger, overview as never);
    expect([paused.statusCode, JSON.parse(paused.body)]).toEqual([
      200,
      { job: 'time-limited', schedule: { expression: 'cron(15 20 * * ? *)', paused: true, pausedBy: { kind: 'http', apiKeyId: null, sourceIp: null, userAgent: null }, pausedAt: '2026-12-07T00:00:00.000Z' } },
    ]);
    expect((await handleSchedulePauseRequest(request('PUT', { job: 'restore' }, { paused: true }), ledger, overview as never)).statusCode).toBe(409);
    expect((await handleSchedulePauseRequest(request('PUT', { job: 'nope' }, { paused: true }), ledger, overview as never)).statusCode).toBe(404);
    for (const body of [undefined, { paused: 1 }, { paused: false, why: 'x' }]) {
      expect((await handleSchedulePauseRequest(request('PUT', { job: 'export' }, body), ledger, overview as never)).statusCode, JSON.stringify(body)).toBe(400);
    }
    expect((await handleSchedulePauseRequest(request('POST', { job: 'export' }, { paused: true }), ledger, overview as never)).statusCode).toBe(405);
    expect(setSchedulePause).toHaveBeenCalledTimes(1);
  });
});

describe('refuseMixedRuns and the run\'s staging names', () => {
  const tarball = (schema: string, exportRunId: string | null) => ({ schema, key: `export/${schema}.tgz`, etag: '"e"', exportRunId, size: 1, verified: null });

  it('takes one export run\'s tarballs, refuses a mix unless the schemas were named, and only the asked-for run when one is', () => {
    expect(refuseMixedRuns([tarball('water', 'a'), tarball('crm', 'a')], {})).toBe('a');
    expect(() => refuseMixedRuns([tarball('water', 'a'), tarball('crm', 'b')], {})).toThrow(/different export runs \(water from a; crm from b\)/);
    expect(refuseMixedRuns([tarball('water', 'a'), tarball('crm', 'b')], { schemas: ['water', 'crm'] })).toBeUndefined();
    expect(() => refuseMixedRuns([tarball('water', 'a'), tarball('crm', 'b')], { exportRunId: 'a' })).toThrow(/not all of export run a/);
    expect(() => refuseMixedRuns([tarball('water', null)], {})).not.toThrow();
    expect(restoreRunSchemaNames('5B0E9C1D-2F3A-4B5C-8D6E-7F8091A2B3C4', 3)).toEqual({ staging: 'waj_restore_5b0e9c1d2f3a_3', retired: 'waj_retired_5b0e9c1d2f3a_3' });
  });
});

describe('readRestoreDispatch', () => {
  it('hands a restore to restoreWorker by Lambda where one can be invoked, and to nothing otherwise (the export run then says so)', () => {
    const lambda = { RESTORE_WORKER_FUNCTION: 'svc-dev-restoreWorker', LAMBDA_ENDPOINT: 'http://127.0.0.1:3002' };
    expect(readRestoreDispatch(lambda)).toBeTypeOf('function');
    expect(readRestoreDispatch({})).toBeUndefined();
    expect(readRestoreDispatch({ ...lambda, JOB_DISPATCH: 'inline' })).toBeUndefined();
    // sls invoke local with no Lambda endpoint: there is nothing to invoke.
    expect(readRestoreDispatch({ RESTORE_WORKER_FUNCTION: 'svc-dev-restoreWorker', IS_LOCAL: 'true' })).toBeUndefined();
  });
});

describe('createRestoreTarget', () => {
  it('gives the URL it was set with, as is, without SSM', async () => {
    const target = createRestoreTarget({ url: 'postgres://r@h/reporting' });
    expect(await target.url()).toBe('postgres://r@h/reporting');
  });

  it('names the parameter and the local setting when the parameter cannot be read, and tries again next time', async () => {
    const target = createRestoreTarget({ urlParameter: '/nowhere/restore-url' });
    const previous = process.env.AWS_REGION;
    process.env.AWS_REGION = 'eu-west-2';
    process.env.AWS_EC2_METADATA_DISABLED = 'true';
    try {
      await expect(target.url()).rejects.toThrow(/SSM parameter \/nowhere\/restore-url \(RESTORE_DATABASE_URL_PARAMETER\).*set RESTORE_DATABASE_URL instead/);
    } finally {
      if (previous === undefined) delete process.env.AWS_REGION;
      else process.env.AWS_REGION = previous;
    }
  }, 20_000);
});
