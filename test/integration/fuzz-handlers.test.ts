import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import { RUN_STATUSES } from '../../lib/runs/run';
import type { RunStatus } from '../../lib/runs/run';
import type { TestDatabase } from '../support/database';
import { startSampleEnvironment } from '../support/sample-environment';
import type { SampleEnvironment } from '../support/sample-environment';
import type { TestS3 } from '../support/s3';

/**
 * Property-based tests (fast-check) of every function's real handler against malformed events and
 * bodies: every HTTP answer must be a 4xx with a JSON error; every malformed worker event must be
 * refused with a clear error; nothing may crash, reject unhandled, record a run or write data.
 * fast-check prints the seed and the smallest failing event when a property fails, so a failure
 * can be replayed (`fc.assert(..., { seed, path })`).
 */

const RUNS = 200; // per property and handler: about 2,000 events in all, a few seconds

/** Any text, with what breaks parsers: NUL, lone surrogates, U+2028, a BOM, astral characters. */
const text = (maxLength = 40) =>
  fc.oneof(fc.string({ unit: 'binary', maxLength }), fc.string({ unit: fc.constantFrom('\0', '\u2028', '\ufeff', '\ud83d', '😀', 'é', '{', '"'), maxLength }));
const junkValue = fc.jsonValue({ maxDepth: 2 });

const JSON_TYPES = ['application/json', 'application/json; charset=utf-8', 'APPLICATION/JSON'];
const jsonHeaders = fc.constantFrom(...JSON_TYPES).map((type) => ({ 'Content-Type': type }));

type Body = Pick<APIGatewayProxyEvent, 'body' | 'headers' | 'isBase64Encoded'>;
const jsonBody = (body: fc.Arbitrary<string>): fc.Arbitrary<Body> =>
  fc.record({ body, headers: jsonHeaders, isBase64Encoded: fc.constant(false) });

/** A body that is wrong in at least one way, with the headers to send it with. */
const malformedBody: fc.Arbitrary<Body> = fc.oneof(
  jsonBody(text(60).map((t) => `${t}{`)), // not JSON
  jsonBody(fc.tuple(junkValue, fc.integer({ min: 1, max: 5 })).map(([value, n]) => `${JSON.stringify(value).slice(0, n)}]]`)),
  jsonBody(fc.oneof(fc.constant(null), fc.integer(), fc.double({ noNaN: true }), text(), fc.boolean(), fc.array(junkValue, { maxLength: 3 })).map((v) => JSON.stringify(v))), // not an object
  // An unknown field; time-limited takes no fields at all, so any field is malformed for it too.
  jsonBody(
    fc
      .tuple(fc.oneof(fc.constantFrom('schema', 'force', '__proto__', 'constructor', 'SCHEMAS'), fc.string({ minLength: 1, maxLength: 8 })), junkValue)
      .filter(([field]) => field !== 'schemas')
      .map(([field, value]) => JSON.stringify({ [field]: value })),
  ),
  jsonBody(
    fc
      .oneof(fc.constantFrom<unknown>([], 'crm', [1], [null], ['public'], ['crm', 'crm'], { 0: 'crm' }), text(10).map((t) => [`${t}!`]))
      .map((schemas) => JSON.stringify({ schemas })),
  ),
  jsonBody(junkValue.map((value) => `{"schemas":["crm"],"extra":${JSON.stringify(value)}}`)),
  jsonBody(fc.integer({ min: 1, max: 100_000 }).map((n) => `{"a":"${'x'.repeat(16 * 1024 + n)}"}`)), // too large
  fc.record({
    body: fc.constant('{}'),
    headers: fc.constantFrom<Record<string, string>>({}, { 'Content-Type': 'text/plain' }, { 'content-type': 'application/x-www-form-urlencoded' }, { 'Content-Type': 'application/jsonx' }),
    isBase64Encoded: fc.constant(false),
  }),
  fc.record({ body: text(30).map((t) => Buffer.from(`${t}{`).toString('base64')), headers: jsonHeaders, isBase64Encoded: fc.constant(true) }),
  fc.record({ body: fc.constant('%%%not base64%%%'), headers: jsonHeaders, isBase64Encoded: fc.constant(true) }),
);

/** Another method than POST, with a body or none. */
const otherMethod: fc.Arbitrary<Partial<APIGatewayProxyEvent>> = fc.record({
  httpMethod: fc.constantFrom('GET', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', '', 'post'),
  body: fc.constantFrom(null, '{}'),
  headers: fc.constant({ 'Content-Type': 'application/json' }),
});

const uuid = fc.uuid();

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

describe('property: every handler refuses what is malformed', () => {
  it('the POST handlers answer every malformed request with a 4xx JSON error', async () => {
    const request = fc.oneof({ weight: 6, arbitrary: malformedBody.map((body) => ({ httpMethod: 'POST', ...body })) }, { weight: 1, arbitrary: otherMethod });
    for (const name of ['exportApi', 'timeLimitedApi']) {
      const handler = handlers[name] as ApiHandler;
      await fc.assert(
        fc.asyncProperty(request, async (partial) => {
          const event = apiEvent(partial);
          await expectJson4xx(await handler(event, context()), `${name} ${JSON.stringify(event).slice(0, 300)}`);
        }),
        { numRuns: RUNS },
      );
    }
  });

  it('the GET handlers answer bad ids, jobs and queries with a 4xx JSON error', async () => {
    const getRun = handlers.getRun as ApiHandler;
    const id = fc.oneof(text(50), fc.constantFrom('', 'latest', '00000000-0000-4000-8000-00000000000'), uuid.map((u) => `${u}x`), uuid);
    const pathParameters = fc.oneof({ weight: 1, arbitrary: fc.constant(null) }, { weight: 19, arbitrary: id.map((value) => ({ id: value })) });
    await fc.assert(
      fc.asyncProperty(pathParameters, async (path) => {
        await expectJson4xx(await getRun(apiEvent({ httpMethod: 'GET', pathParameters: path }), context()), `getRun ${JSON.stringify(path)}`);
      }),
      { numRuns: RUNS },
    );

    const listRuns = handlers.listRuns as ApiHandler;
    const badJob = fc.record({
      job: fc.oneof(text(12), fc.constantFrom('', 'exports', 'EXPORT', 'time_limited')).filter((job) => job !== 'export' && job !== 'time-limited'),
      query: fc.constantFrom<Record<string, string> | null>(null, { limit: '5' }),
    });
    const badQuery = fc.record({
      job: fc.constantFrom('export', 'time-limited'),
      query: fc.oneof(
        fc.oneof(fc.constantFrom('0', '101', '-1', '1.5', 'ten', '', '1e2', '0x10'), text(5).filter((t) => !/^\d{1,4}$/.test(t) || Number(t) < 1 || Number(t) > 100)).map((limit) => ({ limit })),
        fc.oneof(fc.constantFrom('done', 'QUEUED', ''), text(6)).filter((status) => !RUN_STATUSES.includes(status as RunStatus)).map((status) => ({ status })),
        text(6).filter((name) => name !== 'status' && name !== 'limit').map((name) => ({ [name || 'x']: '1' })),
      ),
    });
    await fc.assert(
      fc.asyncProperty(fc.oneof(badJob, badQuery), async ({ job, query }) => {
        await expectJson4xx(
          await listRuns(apiEvent({ httpMethod: 'GET', pathParameters: { job }, queryStringParameters: query }), context()),
          `listRuns ${JSON.stringify(job)} ${JSON.stringify(query)}`,
        );
      }),
      { numRuns: RUNS },
    );
  });

  it('the workers refuse every malformed event with a clear error, before touching data', async () => {
    const event = fc.oneof(
      text(20).map((t) => t || 'x'),
      fc.integer({ min: 0, max: 999 }),
      fc.array(text(5), { minLength: 1, maxLength: 3 }),
      text(36).map((runId) => ({ runId })),
      uuid.map((runId) => ({ runId })), // a run nobody recorded
      uuid.map((runId) => ({ runId, schemas: ['crm'] })),
      fc.constantFrom<unknown>('http', 'manual', 'SCHEDULE', 1, null).map((trigger) => ({ trigger })),
      fc.constant({ trigger: 'schedule', extra: true }),
      fc.constantFrom<unknown>('crm', [], [1], ['public'], ['crm', 'crm']).map((schemas) => ({ schemas })),
      fc.tuple(fc.constantFrom('schema', 'force', 'days'), text(4)).map(([field, value]) => ({ [field]: value })),
    );
    for (const name of ['exportWorker', 'timeLimitedWorker']) {
      const handler = handlers[name] as WorkerHandler;
      await fc.assert(
        fc.asyncProperty(event, async (e) => {
          await expect(handler(e, context()), `${name} ${JSON.stringify(e)}`).rejects.toThrow(/.{10,}/);
        }),
        { numRuns: RUNS },
      );
    }
  });

  it('the schema worker refuses every malformed step event, and a step nobody recorded', async () => {
    const handler = handlers.exportSchemaWorker as WorkerHandler;
    const event = fc.oneof(
      text(20).map((t) => t || 'x'),
      fc.constant(null),
      fc.array(text(5), { minLength: 1, maxLength: 3 }),
      uuid.map((runId) => ({ runId })),
      text(36).map((runId) => ({ runId, step: 'crm' })),
      fc.tuple(uuid, fc.constantFrom<unknown>('', 1, null, ['crm'])).map(([runId, step]) => ({ runId, step })),
      uuid.map((runId) => ({ runId, step: 'crm', schemas: ['crm'] })),
      uuid.map((runId) => ({ runId, step: 'crm' })), // a step nobody recorded
      fc.constant({ trigger: 'schedule' }),
    );
    await fc.assert(
      fc.asyncProperty(event, async (e) => {
        await expect(handler(e, context()), `exportSchemaWorker ${JSON.stringify(e)}`).rejects.toThrow(/.{10,}/);
      }),
      { numRuns: RUNS },
    );
  });

  it('left nothing behind: no run, no upload, no workflow row, no unhandled rejection', async () => {
    expect(await db.sql`select id, job, status from jobs.runs`).toEqual([]);
    const listed = await s3.client.send(new ListObjectsV2Command({ Bucket: bucket }));
    expect(listed.Contents ?? []).toEqual([]);
    expect(await db.sql`select 1 from water.charge_version_workflows where status = 'to_setup'`).toEqual([]);
    expect(unhandled).toEqual([]);
  });
});
