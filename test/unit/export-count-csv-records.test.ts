import { describe, expect, it } from 'vitest';
import { CsvRecordCounter } from '../../lib/export/count-csv-records';

function countInChunks(csv: string, chunkSizes: number[]): number {
  const bytes = Buffer.from(csv);
  const counter = new CsvRecordCounter();
  let offset = 0;
  for (let i = 0; offset < bytes.length; i += 1) {
    const size = chunkSizes[i % chunkSizes.length] ?? bytes.length;
    counter.scan(bytes.subarray(offset, offset + size));
    offset += size;
  }
  return counter.count;
}

// Records as PostgreSQL's CSV writes them: newline-terminated, quoted fields may hold newlines.
const csv = [
  'id,note,data\n',
  '1,plain,\n',
  '2,"with ""quotes"", and comma","{""a:b"": ""c,d""}"\n',
  '3,"multi\nline\r\nfield",\n',
  '4,"",""\n',
  '5,"""","\n"\n',
  '6,"ends with newline\n",x\n',
].join('');

describe('CsvRecordCounter', () => {
  it('counts records, not newlines, when quoted fields hold newlines', () => {
    expect(countInChunks(csv, [csv.length])).toBe(7);
  });

  it('gives the same count however the stream is cut', () => {
    for (let size = 1; size <= 12; size += 1) expect(countInChunks(csv, [size]), `chunks of ${size}`).toBe(7);
    expect(countInChunks(csv, [3, 1, 7, 2, 19])).toBe(7);
  });

  it('counts a last record that has no newline', () => {
    expect(countInChunks('a,b\n1,2', [100])).toBe(2);
    expect(countInChunks('a,b\n"open\n', [100])).toBe(2);
  });

  it('counts nothing in nothing, and a lone header as one record', () => {
    expect(new CsvRecordCounter().count).toBe(0);
    expect(countInChunks('id\n', [1])).toBe(1);
  });
});
