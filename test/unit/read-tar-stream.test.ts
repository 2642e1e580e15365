import { describe, expect, it } from 'vitest';
import { TarFormatError, TarStreamReader, TarTruncatedError } from '../../lib/verification/read-tar-stream';

/** A ustar header block; `size` may be given as raw bytes for the size field (base-256). */
function header(name: string, size: number | Buffer, type = '0'): Buffer {
  const block = Buffer.alloc(512);
  block.write(name, 0, 'utf8');
  block.write('0000644\0', 100, 'ascii');
  if (typeof size === 'number') block.write(`${size.toString(8).padStart(11, '0')}\0`, 124, 'ascii');
  else size.copy(block, 124);
  block.write('00000000000\0', 136, 'ascii');
  block.write(type, 156, 'ascii');
  block.write('ustar\u000000', 257, 'ascii');
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
  return block;
}

/** "<length> <key>=<value>\n", the length counting its own digits. */
function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let length = body.length + 1;
  while (String(length).length + body.length !== length) length = String(length).length + body.length;
  return `${length}${body}`;
}

const pad = (length: number) => Buffer.alloc((512 - (length % 512)) % 512);
const END = Buffer.alloc(1024);

function read(archive: Buffer, chunkSize = 100) {
  const entries: { name: string; data: string }[] = [];
  const reader = new TarStreamReader({
    entry: (h) => entries.push({ name: h.name, data: '' }),
    data: (chunk) => (entries.at(-1)!.data += chunk.toString()),
    entryEnd: () => {},
  });
  for (let i = 0; i < archive.length; i += chunkSize) reader.write(archive.subarray(i, i + chunkSize));
  reader.end();
  return entries;
}

describe('TarStreamReader', () => {
  it('takes a pax header\'s path and size over the ustar fields (as the export writes names over 100 bytes and sizes over 8 GiB)', () => {
    const name = `water/${'x'.repeat(120)}.csv`;
    const records = Buffer.from(paxRecord('path', name) + paxRecord('size', '11'));
    const archive = Buffer.concat([header('PaxHeader', records.length, 'x'), records, pad(records.length), header(name.slice(0, 100), 0), Buffer.from('id\n1\n2\n3\n4\n'), pad(11), END]);
    expect(read(archive)).toEqual([{ name, data: 'id\n1\n2\n3\n4\n' }]);
  });

  it('reads a base-256 size field', () => {
    const size = Buffer.alloc(12);
    size[0] = 0x80;
    size[11] = 3;
    expect(read(Buffer.concat([header('a.csv', size), Buffer.from('x\ny'), pad(3), END]))).toEqual([{ name: 'a.csv', data: 'x\ny' }]);
  });

  it('says where a truncated archive ends: inside an entry, or without the end marker', () => {
    const whole = Buffer.concat([header('a.csv', 600), Buffer.alloc(600, 0x61), pad(600), END]);
    expect(() => read(whole.subarray(0, 700))).toThrow(TarTruncatedError);
    expect(() => read(whole.subarray(0, 700))).toThrow(/ends inside a\.csv \(412 of its 600 bytes missing\)/);
    expect(() => read(whole.subarray(0, whole.length - 512))).toThrow(/without its end-of-archive marker/);
  });

  it('refuses a bad header checksum and a header after a lone zero block', () => {
    const bad = header('a.csv', 0);
    bad[0] = 0x62;
    expect(() => read(Buffer.concat([bad, END]))).toThrow(TarFormatError);
    expect(() => read(Buffer.concat([header('a.csv', 0), Buffer.alloc(512), header('b.csv', 0), END]))).toThrow(/follows a lone zero block/);
  });
});
