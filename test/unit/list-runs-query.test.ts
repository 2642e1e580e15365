import { describe, expect, it } from 'vitest';
import { ListRunsQueryError, parseListRunsQuery } from '../../lib/http/list-runs-query';

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
      'status must be one of queued, running, succeeded, failed, timed_out, skipped, cancelled, not "done"',
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
