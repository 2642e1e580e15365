import { describe, expect, it } from 'vitest';
import { isJobName, isRunStatus, isUuid, ListRunsQueryError, parseListRunsQuery } from '../../lib/runs/run-queries';

describe('isUuid', () => {
  it.each(['3f1c2a9e-8d4b-4e5f-9a6b-7c8d9e0f1a2b', '3F1C2A9E-8D4B-4E5F-9A6B-7C8D9E0F1A2B', '00000000-0000-0000-0000-000000000000'])(
    'accepts %s',
    (value) => expect(isUuid(value)).toBe(true),
  );

  it.each([
    '',
    'runs',
    '3f1c2a9e8d4b4e5f9a6b7c8d9e0f1a2b',
    '{3f1c2a9e-8d4b-4e5f-9a6b-7c8d9e0f1a2b}',
    '3f1c2a9e-8d4b-4e5f-9a6b-7c8d9e0f1a2',
    '3f1c2a9e-8d4b-4e5f-9a6b-7c8d9e0f1a2bb',
    'gf1c2a9e-8d4b-4e5f-9a6b-7c8d9e0f1a2b',
    ' 3f1c2a9e-8d4b-4e5f-9a6b-7c8d9e0f1a2b',
    '3f1c2a9e-8d4b-4e5f-9a6b-7c8d9e0f1a2b\n',
  ])('refuses %j', (value) => expect(isUuid(value)).toBe(false));
});

describe('isJobName', () => {
  it('knows the two jobs and nothing else', () => {
    expect(isJobName('export')).toBe(true);
    expect(isJobName('time-limited')).toBe(true);
    for (const name of ['Export', 'time_limited', 'timeLimited', 'runs', '', 'export ']) expect(isJobName(name)).toBe(false);
  });
});

describe('isRunStatus', () => {
  it('knows the six statuses', () => {
    for (const status of ['queued', 'running', 'succeeded', 'failed', 'timed_out', 'skipped']) expect(isRunStatus(status)).toBe(true);
    for (const status of ['done', 'timed-out', 'FAILED', '']) expect(isRunStatus(status)).toBe(false);
  });
});

describe('parseListRunsQuery', () => {
  it('defaults to the 20 newest runs of any status', () => {
    expect(parseListRunsQuery(null)).toEqual({ limit: 20 });
    expect(parseListRunsQuery({})).toEqual({ limit: 20 });
    expect(parseListRunsQuery({ status: undefined, limit: undefined })).toEqual({ limit: 20 });
  });

  it('reads a status and a limit', () => {
    expect(parseListRunsQuery({ status: 'failed', limit: '5' })).toEqual({ status: 'failed', limit: 5 });
    expect(parseListRunsQuery({ status: 'timed_out' })).toEqual({ status: 'timed_out', limit: 20 });
    expect(parseListRunsQuery({ limit: '1' })).toEqual({ limit: 1 });
    expect(parseListRunsQuery({ limit: '100' })).toEqual({ limit: 100 });
  });

  it('refuses an unknown status, naming the accepted ones', () => {
    expect(() => parseListRunsQuery({ status: 'done' })).toThrow(ListRunsQueryError);
    expect(() => parseListRunsQuery({ status: 'done' })).toThrow(
      'status must be one of queued, running, succeeded, failed, timed_out, skipped, not "done"',
    );
    expect(() => parseListRunsQuery({ status: '' })).toThrow(/^status must be one of/);
  });

  it.each(['0', '101', '1000', '99999', '-1', '2.5', '1e2', '0x10', ' 5', '5 ', '', 'ten'])('refuses limit=%j', (limit) => {
    expect(() => parseListRunsQuery({ limit })).toThrow(RangeError);
    expect(() => parseListRunsQuery({ limit })).toThrow(/^limit must be a whole number from 1 to 100/);
  });

  it('refuses unknown parameters rather than ignoring a misspelt filter', () => {
    expect(() => parseListRunsQuery({ stauts: 'failed' })).toThrow('Unknown query parameter "stauts": only status and limit are accepted');
    expect(() => parseListRunsQuery({ page: '2', sort: 'asc', limit: '3' })).toThrow('Unknown query parameters "page", "sort"');
  });
});
