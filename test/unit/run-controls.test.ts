import { describe, expect, it } from 'vitest';
import { requesterOf } from '../../lib/http/requester';
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
