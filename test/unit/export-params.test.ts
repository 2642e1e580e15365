import { describe, expect, it } from 'vitest';
import { DEFAULT_EXPORT_SCHEMAS } from '../../lib/config';
import { parseExportParams } from '../../lib/jobs/export-request';
import { InvalidParamsError } from '../../lib/jobs/job-params';
import { parseRestoreParams } from '../../lib/jobs/restore-request';

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
    [{ restore: 'yes' }, /"restore" must be true or false/],
  ])('refuses %j', (input, message) => {
    expect(() => parseExportParams(input, configured)).toThrow(InvalidParamsError);
    expect(() => parseExportParams(input, configured)).toThrow(message);
  });

  it('takes {"restore": true}, a restore of the run\'s schemas once its tarballs are verified; false is no restore', () => {
    expect(parseExportParams({ restore: true }, configured)).toEqual({ restore: true });
    expect(parseExportParams({ schemas: ['crm'], restore: true }, configured)).toEqual({ schemas: ['crm'], restore: true });
    expect(parseExportParams({ restore: false }, configured)).toEqual({});
  });
});

describe('parseRestoreParams', () => {
  const run = '5B0E9C1D-2F3A-4B5C-8D6E-7F8091A2B3C4';

  it('restores every configured schema, or the named ones in the configured order, optionally only of one export run', () => {
    expect(parseRestoreParams(undefined, configured)).toEqual({});
    expect(parseRestoreParams({ schemas: ['permit', 'crm'] }, configured)).toEqual({ schemas: ['crm', 'permit'] });
    expect(parseRestoreParams({ exportRunId: run }, configured)).toEqual({ exportRunId: run.toLowerCase() });
  });

  it.each([
    [{ schemas: [] }, /non-empty/],
    [{ schemas: ['public'] }, /"public"/],
    [{ exportRunId: 'latest' }, /"exportRunId" must be the uuid of an export run/],
    [{ exportRunId: 42 }, /uuid/],
    [{ restore: true }, /Unknown field "restore"/],
  ])('refuses %j', (input, message) => {
    expect(() => parseRestoreParams(input, configured)).toThrow(InvalidParamsError);
    expect(() => parseRestoreParams(input, configured)).toThrow(message);
  });
});
