import { describe, expect, it } from 'vitest';
import { parseRestoreArguments } from '../../lib/restore/restore-arguments';

describe('parseRestoreArguments', () => {
  it('reads the source, --into, --schemas and --parallel, in either form', () => {
    expect(parseRestoreArguments(['.local/export', '--into', 'postgres://u@h/db', '--schemas', 'water, crm', '--parallel=3'])).toEqual({
      source: '.local/export',
      into: 'postgres://u@h/db',
      schemas: ['water', 'crm'],
      parallelism: 3,
    });
  });

  it('says what is wrong in one line', () => {
    expect(parseRestoreArguments([])).toMatchObject({ error: expect.stringMatching(/^Give one source \(none given\)/) });
    expect(parseRestoreArguments(['a', 'b', '--into', 'postgres://h/d'])).toMatchObject({ error: expect.stringMatching(/2 given/) });
    expect(parseRestoreArguments(['a'])).toMatchObject({ error: expect.stringMatching(/^--into is missing/) });
    expect(parseRestoreArguments(['a', '--into', 'mysql://u:secret@h/d'])).toEqual({ error: '--into must be a postgres:// or postgresql:// URL, not "mysql://u:***@h/d"' });
    expect(parseRestoreArguments(['a', '--into', 'postgres://h/d', '--schemas', ','])).toMatchObject({ error: expect.stringMatching(/^--schemas is empty/) });
    expect(parseRestoreArguments(['a', '--into', 'postgres://h/d', '--parallel', '0'])).toEqual({ error: '--parallel must be a whole number from 1 to 32' });
    expect(parseRestoreArguments(['a', '--into', 'postgres://h/d', '--force'])).toMatchObject({ error: expect.stringMatching(/^Unknown option --force/) });
  });
});
