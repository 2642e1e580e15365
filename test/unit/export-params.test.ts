import { describe, expect, it } from 'vitest';
import { DEFAULT_EXPORT_SCHEMAS } from '../../lib/config';
import { parseExportParams } from '../../lib/jobs/export-request';
import { InvalidParamsError } from '../../lib/jobs/job-params';

const configured = [...DEFAULT_EXPORT_SCHEMAS];

describe('parseExportParams', () => {
  it('exports every configured schema when nothing narrows it', () => {
    expect(parseExportParams(undefined, configured)).toEqual({});
    expect(parseExportParams({}, configured)).toEqual({});
  });

  it('narrows to the named schemas, in the configured order', () => {
    expect(parseExportParams({ schemas: ['idm', 'water'] }, configured)).toEqual({ schemas: ['water', 'idm'] });
  });

  it.each([
    [{ schemas: [] }, /non-empty/],
    [{ schemas: 'crm' }, /non-empty list/],
    [{ schemas: [1] }, /non-empty list/],
    [{ schemas: ['public'] }, /"public"/],
    [{ schemas: ['crm', 'crm'] }, /twice/],
    [{ schemas: ['crm'], force: true }, /Unknown field "force"/],
    [{ schema: 'crm' }, /Unknown field "schema"/],
  ])('refuses %j', (input, message) => {
    expect(() => parseExportParams(input, configured)).toThrow(InvalidParamsError);
    expect(() => parseExportParams(input, configured)).toThrow(message);
  });
});
