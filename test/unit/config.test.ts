import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  readDatabaseSettings,
  readDispatchSettings,
  readStepDispatchSettings,
  readExportSettings,
  readRestoreSettings,
  readTimeLimitedSettings,
  runsInAws,
  runsOffline,
  runsUnderInvokeLocal,
} from '../../lib/config';

describe('readExportSettings', () => {
  it('applies the documented defaults', () => {
    expect(readExportSettings({ EXPORT_BUCKET: 'b' })).toEqual({
      bucket: 'b',
      prefix: 'export/',
      schemas: ['water', 'returns', 'crm', 'crm_v2', 'idm', 'permit'],
      concurrency: 6,
      s3Endpoint: undefined,
    });
  });

  it('runs one schema step per schema at once unless EXPORT_CONCURRENCY says otherwise', () => {
    expect(readExportSettings({ EXPORT_BUCKET: 'b', EXPORT_SCHEMAS: 'a,b' }).concurrency).toBe(2);
    expect(readExportSettings({ EXPORT_BUCKET: 'b', EXPORT_CONCURRENCY: '3' }).concurrency).toBe(3);
    for (const bad of ['0', '-1', '2.5', 'six', '101']) {
      expect(() => readExportSettings({ EXPORT_BUCKET: 'b', EXPORT_CONCURRENCY: bad }), bad).toThrow(/EXPORT_CONCURRENCY/);
    }
  });

  it('runs the steps in-process under sls invoke local, unless a Lambda endpoint is given', () => {
    expect(readStepDispatchSettings({ IS_LOCAL: 'true' })).toEqual({ mode: 'inline' });
    expect(readStepDispatchSettings({ IS_LOCAL: 'true', LAMBDA_ENDPOINT: 'http://127.0.0.1:3002', EXPORT_SCHEMA_WORKER_FUNCTION: 'svc-dev-exportSchemaWorker' })).toEqual({
      mode: 'lambda',
      functionName: 'svc-dev-exportSchemaWorker',
      endpoint: 'http://127.0.0.1:3002',
    });
    expect(readStepDispatchSettings({ JOB_DISPATCH: 'inline' })).toEqual({ mode: 'inline' });
    expect(() => readStepDispatchSettings({})).toThrow(/EXPORT_SCHEMA_WORKER_FUNCTION/);
  });

  it('names EXPORT_BUCKET when it is missing or blank', () => {
    expect(() => readExportSettings({})).toThrow(/EXPORT_BUCKET/);
    expect(() => readExportSettings({ EXPORT_BUCKET: '  ' })).toThrow(ConfigError);
  });

  it('reads a schema list, trimming spaces, and refuses empty or repeated entries', () => {
    expect(readExportSettings({ EXPORT_BUCKET: 'b', EXPORT_SCHEMAS: 'crm, idm' }).schemas).toEqual(['crm', 'idm']);
    expect(() => readExportSettings({ EXPORT_BUCKET: 'b', EXPORT_SCHEMAS: 'crm,,idm' })).toThrow(/EXPORT_SCHEMAS/);
    expect(() => readExportSettings({ EXPORT_BUCKET: 'b', EXPORT_SCHEMAS: 'crm,crm' })).toThrow(/twice/);
  });

  it('takes an EXPORT_PREFIX that is a folder, and refuses one that would widen the S3 grant', () => {
    expect(readExportSettings({ EXPORT_BUCKET: 'b', EXPORT_PREFIX: 'wrls/exports/' }).prefix).toBe('wrls/exports/');
    for (const prefix of ['', 'export', '/export/', 'ex*/', 'a//b/', 'my exports/', '/']) {
      expect(() => readExportSettings({ EXPORT_BUCKET: 'b', EXPORT_PREFIX: prefix }), prefix).toThrow(/EXPORT_PREFIX must be a folder/);
    }
  });

  it('reads EXPORT_TABLE_PARALLELISM as a whole number from 1 to 64, unset when empty', () => {
    expect(readExportSettings({ EXPORT_BUCKET: 'b' }).tableParallelism).toBeUndefined();
    expect(readExportSettings({ EXPORT_BUCKET: 'b', EXPORT_TABLE_PARALLELISM: '' }).tableParallelism).toBeUndefined();
    expect(readExportSettings({ EXPORT_BUCKET: 'b', EXPORT_TABLE_PARALLELISM: ' 3 ' }).tableParallelism).toBe(3);
    for (const value of ['0', '-1', '1.5', 'two', '65']) {
      expect(() => readExportSettings({ EXPORT_BUCKET: 'b', EXPORT_TABLE_PARALLELISM: value }), value).toThrow(/EXPORT_TABLE_PARALLELISM/);
    }
  });

  it('refuses an S3_ENDPOINT that is not a URL, and treats an empty one as unset', () => {
    expect(() => readExportSettings({ EXPORT_BUCKET: 'b', S3_ENDPOINT: 'not a url' })).toThrow(/S3_ENDPOINT/);
    expect(readExportSettings({ EXPORT_BUCKET: 'b', S3_ENDPOINT: '' }).s3Endpoint).toBeUndefined();
  });
});

describe('readDatabaseSettings', () => {
  it('needs DATABASE_URL or DATABASE_URL_PARAMETER', () => {
    expect(() => readDatabaseSettings({})).toThrow(/DATABASE_URL/);
    expect(readDatabaseSettings({ DATABASE_URL_PARAMETER: '/p' })).toEqual({ urlParameter: '/p' });
  });

  it('prefers DATABASE_URL, which must be a postgres URL', () => {
    expect(readDatabaseSettings({ DATABASE_URL: 'postgres://h/db', DATABASE_URL_PARAMETER: '/p' })).toEqual({ url: 'postgres://h/db' });
    expect(() => readDatabaseSettings({ DATABASE_URL: 'mysql://h/db' })).toThrow(/postgres/);
  });
});

describe('readTimeLimitedSettings', () => {
  it('defaults to 50 days in Europe/London', () => {
    expect(readTimeLimitedSettings({})).toEqual({ days: 50, timeZone: 'Europe/London' });
  });

  it.each(['0', '-1', '2.5', 'fifty', '1e3'])('refuses TIME_LIMITED_DAYS=%s', (days) => {
    expect(() => readTimeLimitedSettings({ TIME_LIMITED_DAYS: days })).toThrow(/TIME_LIMITED_DAYS/);
  });

  it('refuses an unknown time zone', () => {
    expect(() => readTimeLimitedSettings({ JOBS_TIME_ZONE: 'Mars/Olympus' })).toThrow(/JOBS_TIME_ZONE/);
  });
});

describe('readDispatchSettings', () => {
  it('defaults to lambda and needs the worker name', () => {
    expect(() => readDispatchSettings({}, 'EXPORT_WORKER_FUNCTION')).toThrow(/EXPORT_WORKER_FUNCTION/);
    expect(readDispatchSettings({ EXPORT_WORKER_FUNCTION: 'svc-dev-exportWorker' }, 'EXPORT_WORKER_FUNCTION')).toEqual({
      mode: 'lambda',
      functionName: 'svc-dev-exportWorker',
      endpoint: undefined,
    });
  });

  it('takes a local Lambda endpoint', () => {
    const settings = readDispatchSettings(
      { JOB_DISPATCH: 'lambda', EXPORT_WORKER_FUNCTION: 'f', LAMBDA_ENDPOINT: 'http://127.0.0.1:3002' },
      'EXPORT_WORKER_FUNCTION',
    );
    expect(settings).toEqual({ mode: 'lambda', functionName: 'f', endpoint: 'http://127.0.0.1:3002' });
  });

  it('runs inline without a worker name, but not with a Lambda endpoint', () => {
    expect(readDispatchSettings({ JOB_DISPATCH: 'inline' }, 'X')).toEqual({ mode: 'inline' });
    expect(() => readDispatchSettings({ JOB_DISPATCH: 'inline', LAMBDA_ENDPOINT: 'http://x' }, 'X')).toThrow(/LAMBDA_ENDPOINT/);
  });

  it('names JOB_DISPATCH when it is neither mode', () => {
    expect(() => readDispatchSettings({ JOB_DISPATCH: 'queue' }, 'X')).toThrow(/JOB_DISPATCH/);
  });
});

describe('where the process runs', () => {
  it('tells AWS from the two emulators, which set AWS_LAMBDA_FUNCTION_NAME too', () => {
    const lambda = { AWS_LAMBDA_FUNCTION_NAME: 'svc-dev-exportWorker' };
    expect([runsInAws(lambda), runsOffline(lambda), runsUnderInvokeLocal(lambda)]).toEqual([true, false, false]);
    const offline = { ...lambda, IS_OFFLINE: 'true' };
    expect([runsInAws(offline), runsOffline(offline), runsUnderInvokeLocal(offline)]).toEqual([false, true, false]);
    const invokeLocal = { ...lambda, IS_LOCAL: 'true' };
    expect([runsInAws(invokeLocal), runsOffline(invokeLocal), runsUnderInvokeLocal(invokeLocal)]).toEqual([false, false, true]);
    expect([runsInAws({}), runsOffline({}), runsUnderInvokeLocal({})]).toEqual([false, false, false]);
  });
});

describe('readRestoreSettings', () => {
  const base = { EXPORT_BUCKET: 'b' };

  it('stops at cold start without a target, naming both settings', () => {
    expect(() => readRestoreSettings(base)).toThrow(ConfigError);
    expect(() => readRestoreSettings(base)).toThrow(/RESTORE_DATABASE_URL is not set: .*or RESTORE_DATABASE_URL_PARAMETER/);
  });

  it('takes the target from the URL (local) over the parameter (deployed), and the export\'s bucket, prefix and schemas', () => {
    expect(readRestoreSettings({ ...base, RESTORE_DATABASE_URL_PARAMETER: '/x/y' })).toEqual({
      bucket: 'b',
      prefix: 'export/',
      schemas: ['water', 'returns', 'crm', 'crm_v2', 'idm', 'permit'],
      s3Endpoint: undefined,
      target: { urlParameter: '/x/y' },
      concurrency: 3,
      tableParallelism: undefined,
    });
    const both = readRestoreSettings({ ...base, RESTORE_DATABASE_URL: 'postgres://r@h/reporting', RESTORE_DATABASE_URL_PARAMETER: '/x/y', RESTORE_CONCURRENCY: '2', RESTORE_TABLE_PARALLELISM: '4' });
    expect(both).toMatchObject({ target: { url: 'postgres://r@h/reporting' }, concurrency: 2, tableParallelism: 4 });
  });

  it('refuses the export\'s own database as the target, and bad numbers, naming the setting', () => {
    expect(() => readRestoreSettings({ ...base, DATABASE_URL: 'postgres://a@h/db', RESTORE_DATABASE_URL: 'postgres://a@h/db' })).toThrow(/RESTORE_DATABASE_URL is DATABASE_URL/);
    expect(() => readRestoreSettings({ ...base, RESTORE_DATABASE_URL: 'mysql://h/db' })).toThrow(/RESTORE_DATABASE_URL must start with postgres/);
    for (const bad of ['0', 'x', '101']) expect(() => readRestoreSettings({ ...base, RESTORE_DATABASE_URL_PARAMETER: '/p', RESTORE_CONCURRENCY: bad })).toThrow(/RESTORE_CONCURRENCY/);
    for (const bad of ['0', '17']) expect(() => readRestoreSettings({ ...base, RESTORE_DATABASE_URL_PARAMETER: '/p', RESTORE_TABLE_PARALLELISM: bad })).toThrow(/RESTORE_TABLE_PARALLELISM/);
  });
});
