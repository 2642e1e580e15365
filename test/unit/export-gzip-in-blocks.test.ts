import { randomBytes } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { gzipInBlocks } from '../../lib/export/gzip-in-blocks';
import { BlockPool } from '../../lib/export/block-pool';

async function* blocksOf(parts: Buffer[]): AsyncGenerator<Buffer> {
  for (const part of parts) yield part;
}

describe('gzipInBlocks', () => {
  it('gives one member per block, in order, that together gunzip to the input, whatever is in flight; each block is handed back once compressed', async () => {
    // Incompressible blocks too: their members outgrow one of zlib's 256 KiB output buffers and come in pieces.
    const parts = [
      ...Array.from({ length: 9 }, (_, k) => Buffer.from(`${k},licence ${k}\n`.repeat(2_000 + k * 500))),
      randomBytes(600_000),
      Buffer.from('tail\n'),
      randomBytes(300_000),
    ];
    for (const blocksInFlight of [1, 2, 4]) {
      const handedBack: Buffer[] = [];
      const members: Buffer[] = [];
      for await (const pieces of gzipInBlocks(blocksOf([...parts, Buffer.alloc(0)]), { blocksInFlight, onCompressed: (block) => handedBack.push(block) })) {
        expect(pieces.every((piece) => piece.length > 0)).toBe(true);
        const member = Buffer.concat(pieces);
        members.push(member);
        // Each member is a whole gzip file of its own.
        expect(member.subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
      }
      expect(members).toHaveLength(parts.length);
      members.forEach((member, k) => expect(gunzipSync(member).equals(parts[k]!)).toBe(true));
      expect(gunzipSync(Buffer.concat(members)).equals(Buffer.concat(parts))).toBe(true);
      expect(handedBack).toHaveLength(parts.length);
    }
  });

  it('a consumer that stops early leaves nothing unhandled', async () => {
    const parts = Array.from({ length: 6 }, () => Buffer.alloc(100_000, 'a'));
    for await (const member of gzipInBlocks(blocksOf(parts), { blocksInFlight: 3 })) {
      expect(member.length).toBeGreaterThan(0);
      break;
    }
  });
});

describe('BlockPool', () => {
  it('hands a given-back block out again, whole, and keeps no more than it may', () => {
    const pool = new BlockPool(1024, 1);
    const first = pool.take();
    const second = pool.take();
    expect(first.length).toBe(1024);
    expect(second.buffer).not.toBe(first.buffer);
    pool.give(first.subarray(0, 10)); // the view that went downstream
    pool.give(second); // beyond what it keeps: dropped
    const again = pool.take();
    expect(again.buffer).toBe(first.buffer);
    expect(again.length).toBe(1024);
    expect(pool.take().buffer).not.toBe(second.buffer);
  });

  it('ignores a buffer that is not one of its blocks', () => {
    const pool = new BlockPool(1024, 4);
    const small = Buffer.alloc(10);
    const slice = Buffer.alloc(4096).subarray(1024, 2048);
    pool.give(small);
    pool.give(slice);
    const taken = pool.take();
    expect(taken.buffer).not.toBe(small.buffer);
    expect(taken.buffer).not.toBe(slice.buffer);
  });
});
