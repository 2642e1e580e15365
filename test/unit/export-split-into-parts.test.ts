import { describe, expect, it } from 'vitest';
import { splitIntoParts } from '../../lib/export/split-into-parts';

async function* chunks(sizes: number[]): AsyncGenerator<Buffer> {
  let next = 0;
  for (const size of sizes) {
    const chunk = Buffer.alloc(size);
    for (let i = 0; i < size; i += 1) chunk[i] = next++ % 251;
    yield chunk;
  }
}

async function collect(sizes: number[], partBytes: number): Promise<Buffer[]> {
  const parts: Buffer[] = [];
  // Collected before comparing, so a part buffer reused for the next part would show up.
  for await (const part of splitIntoParts(chunks(sizes), partBytes)) parts.push(part);
  return parts;
}

describe('splitIntoParts', () => {
  it('makes every part full size but the last, and keeps the bytes in order', async () => {
    const sizes = [3, 10, 1, 7, 0, 9];
    const parts = await collect(sizes, 8);
    expect(parts.map((part) => part.length)).toEqual([8, 8, 8, 6]);
    const expected = Buffer.concat([...(await collect(sizes, 1000))]);
    expect(Buffer.concat(parts)).toEqual(expected);
    expect(expected.length).toBe(30);
    expect([...expected.subarray(0, 5)]).toEqual([0, 1, 2, 3, 4]);
  });

  it('yields nothing for an empty stream and one short part for a small one', async () => {
    expect(await collect([], 8)).toEqual([]);
    expect(await collect([0, 0], 8)).toEqual([]);
    expect((await collect([5], 8)).map((part) => part.length)).toEqual([5]);
  });

  it('ends exactly on a part boundary without an empty last part', async () => {
    expect((await collect([16], 8)).map((part) => part.length)).toEqual([8, 8]);
  });

  it('refuses a part size that is not a positive integer', async () => {
    await expect(collect([1], 0)).rejects.toThrow(RangeError);
  });
});
