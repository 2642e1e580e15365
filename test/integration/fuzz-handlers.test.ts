import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import type { TestDatabase } from '../support/database';
import { startSampleEnvironment } from '../support/sample-environment';
import type { SampleEnvironment } from '../support/sample-environment';
import type { TestS3 } from '../support/s3';

/**
 * Throws a few thousand random and malformed events and bodies at every function's real handler.
 * Every HTTP answer must be a 4xx with a JSON error; every malformed worker event must be refused
 * with a clear error; nothing may crash, reject unhandled, record a run or write data.
 */

const ROUNDS = 400; // per generator and handler: about 4,000 events in all

/** Small seeded PRNG (mulberry32) so a failure can be replayed. */
function random(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)]!;
  const string = (max = 40) =>
    Array.from({ length: int(max) }, () => String.fromCodePoint(pick([int(128), 0x20 + int(95), 0xe9, 0x1f600, 0, 0x2028, 0xfeff]))).join('');
  return { next, int, pick, string };
}
type Random = ReturnType<typeof random>;

const JSON_TYPES = ['application/json', 'application/json; charset=utf-8', 'APPLICATION/JSON'];

/** A body that is wrong in at least one way, with the headers to send it with. */
function malformedBody(r: Random): Pick<APIGatewayProxyEvent, 'body' | 'headers' | 'isBase64Encoded'> {
  const json = { 'Content-Type': r.pick(JSON_TYPES) };
  const junkValue = () => r.pick<unknown>([null, 1, -1.5, true, r.string(), [], {}, [r.string()], { a: [1, { b: null }] }]);
  const cases: (() => Pick<APIGatewayProxyEvent, 'body' | 'headers' | 'isBase64Encoded'>)[] = [
    () => ({ body: r.string(60) + '{', headers: json, isBase64Encoded: false }), // not JSON
    () => ({ body: JSON.stringify(junkValue()).slice(0, 1 + r.int(5)) + ']]', headers: json, isBase64Encoded: false }),
    () => ({ body: JSON.stringify(r.pick([null, 42, 'text', true, [1, 2], []])), headers: json, isBase64Encoded: false }), // not an object
    () => ({ body: JSON.stringify({ [r.pick(['schema', 'force', '__proto__x', 'constructor', r.string(8) || 'x'])]: junkValue() }), headers: json, isBase64Encoded: false }),
    () => ({ body: JSON.stringify({ schemas: r.pick<unknown>([[], 'crm', [1], [null], ['public'], ['crm', 'crm'], { 0: 'crm' }, [r.string(10) + '!']]) }), headers: json, isBase64Encoded: false }),
    () => ({ body: '{"schemas":["crm"],"extra":' + JSON.stringify(junkValue()) + '}', headers: json, isBase64Encoded: false }),
    () => ({ body: '{"a":"' + 'x'.repeat(16 * 1024 + r.int(100_000)) + '"}', headers: json, isBase64Encoded: false }), // too large
    () => ({ body: '{}', headers: r.pick([{}, { 'Content-Type': 'text/plain' }, { 'content-type': 'application/x-www-form-urlencoded' }, { 'Content-Type': 'application/jsonx' }]), isBase64Encoded: false }),
    () => ({ body: Buffer.from(r.string(30) + '{').toString('base64'), headers: json, isBase64Encoded: true }),
    () => ({ body: '%%%not base64%%%', headers: json, isBase64Encoded: true }),
  ];
  return r.pick(cases)();
}

function context(): Context {
  return {
    awsRequestId: 'fuzz',
    functionName: 'fuzz',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:eu-west-2:000000000000:function:fuzz',
    memoryLimitInMB: '128',
    logGroupName: 'fuzz',
    logStreamName: 'fuzz',
    callbackWaitsForEmptyEventLoop: false,
    getRemainingTimeInMillis: () => 60_000,
    done: () => {},
    fail: () => {},
    succeed: () => {},
  };
}

function apiEvent(partial: Partial<APIGatewayProxyEvent>): APIGatewayProxyEvent {
  return {
    httpMethod: 'POST',
    path: '/jobs/export',
    resource: '/jobs/export',
    body: null,
    headers: {},
    multiValueHeaders: {},
    isBase64Encoded: false,
    pathParameters: null,
    queryStringParameters: null,
    multiValueQueryStringParameters: null,
    stageVariables: null,
    requestContext: {} as APIGatewayProxyEvent['requestContext'],
    ...partial,
  };
}

type ApiHandler = (event: APIGatewayProxyEvent, context: Context) => Promise<APIGatewayProxyResult>;
type WorkerHandler = (event: unknown, context: Context) => Promise<unknown>;

let environment: SampleEnvironment | undefined;
let db: TestDatabase;
let s3: TestS3;
let bucket: string;
const handlers: Record<string, ApiHandler | WorkerHandler> = {};
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);

beforeAll(async () => {
  environment = await startSampleEnvironment();
  ({ db, s3, bucket } = environment);
  Object.assign(process.env, {
    DATABASE_URL: db.url,
    EXPORT_BUCKET: bucket,
    S3_ENDPOINT: s3.endpoint,
    // As deployed: no event here is valid, so nothing is ever handed over (the Lambda client is never loaded).
    JOB_DISPATCH: 'lambda',
    LAMBDA_ENDPOINT: '',
    EXPORT_WORKER_FUNCTION: 'water-abstraction-jobs-test-exportWorker',
    EXPORT_SCHEMA_WORKER_FUNCTION: 'water-abstraction-jobs-test-exportSchemaWorker',
    TIME_LIMITED_WORKER_FUNCTION: 'water-abstraction-jobs-test-timeLimitedWorker',
    LOG_LEVEL: 'SILENT',
  });
  const exportApi = await import('../../functions/export-api');
  const timeLimitedApi = await import('../../functions/time-limited-api');
  const readRuns = await import('../../functions/read-runs');
  const exportWorker = await import('../../functions/export-worker');
  const exportSchemaWorker = await import('../../functions/export-schema-worker');
  const timeLimitedWorker = await import('../../functions/time-limited-worker');
  Object.assign(handlers, {
    exportApi: exportApi.handler,
    timeLimitedApi: timeLimitedApi.handler,
    getRun: readRuns.getRun,
    listRuns: readRuns.listRuns,
    exportWorker: exportWorker.handler,
    exportSchemaWorker: exportSchemaWorker.handler,
    timeLimitedWorker: timeLimitedWorker.handler,
  });
  process.on('unhandledRejection', onUnhandled);
});

afterAll(async () => {
  process.off('unhandledRejection', onUnhandled);
  await environment?.stop();
});

async function expectJson4xx(response: APIGatewayProxyResult, label: string) {
  expect(response.statusCode, label).toBeGreaterThanOrEqual(400);
  expect(response.statusCode, label).toBeLessThan(500);
  const body = JSON.parse(response.body) as { error?: unknown };
  expect(typeof body.error, label).toBe('string');
  expect(response.body, label).not.toMatch(/\n\s+at |select |insert |update /i);
}

describe('fuzzing every handler', () => {
  it('the POST handlers answer every malformed request with a 4xx JSON error', async () => {
    const r = random(20261122);
    for (const name of ['exportApi', 'timeLimitedApi']) {
      const handler = handlers[name] as ApiHandler;
      for (let i = 0; i < ROUNDS; i += 1) {
        const method = r.next() < 0.85 ? 'POST' : r.pick(['GET', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', '', 'post']);
        const event =
          method === 'POST'
            ? apiEvent({ httpMethod: method, ...malformedBody(r) })
            : apiEvent({ httpMethod: method, body: r.next() < 0.5 ? null : '{}', headers: { 'Content-Type': 'application/json' } });
        // time-limited takes no fields at all, so any JSON object with a field is malformed for it too.
        await expectJson4xx(await handler(event, context()), `${name} #${i} ${JSON.stringify(event).slice(0, 300)}`);
      }
    }
  });

  it('the GET handlers answer bad ids, jobs and queries with a 4xx JSON error', async () => {
    const r = random(7);
    const getRun = handlers.getRun as ApiHandler;
    const listRuns = handlers.listRuns as ApiHandler;
    for (let i = 0; i < ROUNDS; i += 1) {
      const id = r.pick([r.string(50), '', 'latest', '00000000-0000-4000-8000-00000000000', `${crypto.randomUUID()}x`, crypto.randomUUID()]);
      await expectJson4xx(await getRun(apiEvent({ httpMethod: 'GET', pathParameters: r.next() < 0.05 ? null : { id } }), context()), `getRun ${JSON.stringify(id)}`);

      const badJob = r.next() < 0.5;
      const job = badJob ? r.pick([r.string(12), '', 'exports', 'EXPORT', 'time_limited']) : r.pick(['export', 'time-limited']);
      const query = badJob
        ? r.pick([null, { limit: '5' }])
        : r.pick([{ limit: r.pick(['0', '101', '-1', '1.5', 'ten', '', '1e2', '0x10', r.string(5)]) }, { status: r.pick(['done', 'QUEUED', '', r.string(6)]) }, { [r.string(6) || 'x']: '1' }]);
      await expectJson4xx(await listRuns(apiEvent({ httpMethod: 'GET', pathParameters: { job }, queryStringParameters: query }), context()), `listRuns ${job} ${JSON.stringify(query)}`);
    }
  });

  it('the workers refuse every malformed event with a clear error, before touching data', async () => {
    const r = random(99);
    for (const name of ['exportWorker', 'timeLimitedWorker']) {
      const handler = handlers[name] as WorkerHandler;
      for (let i = 0; i < ROUNDS; i += 1) {
        const event = r.pick<() => unknown>([
          () => r.string(20) || 'x',
          () => r.int(1000),
          () => [r.string(5)],
          () => ({ runId: r.string(36) }),
          () => ({ runId: crypto.randomUUID() }), // a run nobody recorded
          () => ({ runId: crypto.randomUUID(), schemas: ['crm'] }),
          () => ({ trigger: r.pick(['http', 'manual', 'SCHEDULE', 1, null]) }),
          () => ({ trigger: 'schedule', extra: true }),
          () => ({ schemas: r.pick<unknown>(['crm', [], [1], ['public'], ['crm', 'crm']]) }),
          () => ({ [r.pick(['schema', 'force', 'days'])]: r.string(4) }),
        ])();
        await expect(handler(event, context()), `${name} ${JSON.stringify(event)}`).rejects.toThrow(/.{10,}/);
      }
    }
  });

  it('the schema worker refuses every malformed step event, and a step nobody recorded', async () => {
    const r = random(10);
    const handler = handlers.exportSchemaWorker as WorkerHandler;
    for (let i = 0; i < ROUNDS; i += 1) {
      const event = r.pick<() => unknown>([
        () => r.string(20) || 'x',
        () => null,
        () => [r.string(5)],
        () => ({ runId: crypto.randomUUID() }),
        () => ({ runId: r.string(36), step: 'crm' }),
        () => ({ runId: crypto.randomUUID(), step: r.pick<unknown>(['', 1, null, ['crm']]) }),
        () => ({ runId: crypto.randomUUID(), step: 'crm', schemas: ['crm'] }),
        () => ({ runId: crypto.randomUUID(), step: 'crm' }), // a step nobody recorded
        () => ({ trigger: 'schedule' }),
      ])();
      await expect(handler(event, context()), `exportSchemaWorker ${JSON.stringify(event)}`).rejects.toThrow(/.{10,}/);
    }
  });

  it('left nothing behind: no run, no upload, no workflow row, no unhandled rejection', async () => {
    expect(await db.sql`select id, job, status from jobs.runs`).toEqual([]);
    const listed = await s3.client.send(new ListObjectsV2Command({ Bucket: bucket }));
    expect(listed.Contents ?? []).toEqual([]);
    expect(await db.sql`select 1 from water.charge_version_workflows where status = 'to_setup'`).toEqual([]);
    expect(unhandled).toEqual([]);
  });
});
