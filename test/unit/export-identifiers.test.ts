import { describe, expect, it } from 'vitest';
import { encodePathSegment, manifestEntryName, tableEntryName } from '../../lib/export/archive-entry-name';
import { quoteIdentifier } from '../../lib/export/quote-identifier';

describe('quoteIdentifier', () => {
  it.each([
    ['licences', '"licences"'],
    ['Upper Case', '"Upper Case"'],
    ['say "hi"', '"say ""hi"""'],
    ['dotted.name', '"dotted.name"'],
    ['Ünïcode Ω', '"Ünïcode Ω"'],
    ['"', '""""'],
  ])('quotes %j as %s', (name, quoted) => {
    expect(quoteIdentifier(name)).toBe(quoted);
  });

  it('refuses names PostgreSQL could never have', () => {
    expect(() => quoteIdentifier('')).toThrow(/empty/);
    expect(() => quoteIdentifier('a\0b')).toThrow(/NUL/);
  });
});

describe('tar entry names', () => {
  it('keeps letters, spaces, quotes and non-ASCII as they are', () => {
    expect(tableEntryName('water', 'licences')).toBe('water/licences.csv');
    expect(tableEntryName('Odd "Schema" Ω', 'Tåble Name')).toBe('Odd "Schema" Ω/Tåble Name.csv');
    expect(manifestEntryName('crm_v2')).toBe('crm_v2/manifest.json');
  });

  it('encodes what a tar reader or archiver would take for path syntax', () => {
    expect(encodePathSegment('a/b')).toBe('a%2Fb');
    expect(encodePathSegment('a\\b')).toBe('a%5Cb');
    expect(encodePathSegment('c:drive')).toBe('c%3Adrive');
    expect(encodePathSegment('line\nbreak')).toBe('line%0Abreak');
    expect(encodePathSegment('100%')).toBe('100%25');
    expect(encodePathSegment('..')).toBe('%2E%2E');
    expect(encodePathSegment('.')).toBe('%2E');
  });

  it('never maps two different names to one entry', () => {
    const names = ['a/b', 'a%2Fb', 'a%b', 'a%25b', 'a\\b', 'A/B'];
    expect(new Set(names.map(encodePathSegment)).size).toBe(names.length);
  });
});
