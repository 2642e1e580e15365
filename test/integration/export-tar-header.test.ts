import { execFile } from 'node:child_process';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TAR_BLOCK, tarEnd, tarHeader, tarPadding } from '../../lib/export/tar-header';

const run = promisify(execFile);
const MTIME = new Date('2026-11-25T10:00:00Z');

let folder: string;
beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), 'waj-tar-header-'));
});
afterAll(async () => {
  await rm(folder, { recursive: true, force: true });
});

/**
 * Writes an uncompressed tar of one entry whose data is zeros. The data is left as a hole
 * (a sparse file), so an entry of more than 8 GiB costs no disk; readers seek over it.
 */
async function writeTar(name: string, size: number): Promise<string> {
  const path = join(folder, `${Math.random().toString(36).slice(2)}.tar`);
  const file = await open(path, 'w');
  try {
    const header = tarHeader({ name, size, mtime: MTIME });
    await file.write(header, 0, header.length, 0);
    const end = Buffer.concat([tarPadding(size), tarEnd()]);
    await file.write(end, 0, end.length, header.length + size);
  } finally {
    await file.close();
  }
  return path;
}

async function listWithPython(path: string): Promise<[string, number, number][]> {
  const { stdout } = await run('python3', [
    '-c',
    'import tarfile, json, sys\nprint(json.dumps([[m.name, m.size, int(m.mtime)] for m in tarfile.open(sys.argv[1]).getmembers()]))',
    path,
  ]);
  return JSON.parse(stdout) as [string, number, number][];
}

describe('tarHeader', () => {
  it('writes one ustar block for a short name, which GNU tar and Python read back', async () => {
    expect(tarHeader({ name: 'crm/entity.csv', size: 5018, mtime: MTIME })).toHaveLength(TAR_BLOCK);
    const path = await writeTar('crm/entity.csv', 5018);
    expect(await listWithPython(path)).toEqual([['crm/entity.csv', 5018, MTIME.getTime() / 1000]]);
    const { stdout } = await run('tar', ['-tvf', path]);
    expect(stdout).toMatch(/ 5018 .*crm\/entity\.csv\n$/);
  });

  it('adds a pax header for a name past 100 bytes (UTF-8) and for a size past 8 GiB', async () => {
    const name = `Awkward "Schema" Ünïcode Ω/${'Ω%2F'.repeat(21)}.csv`;
    const size = 9 * 1024 ** 3 + 7; // beyond ustar's 11 octal digits
    const path = await writeTar(name, size);
    expect(await listWithPython(path)).toEqual([[name, size, MTIME.getTime() / 1000]]);
    const { stdout } = await run('tar', ['-tvf', path]);
    expect(stdout).toContain(` ${size} `);
    expect(stdout.trim().endsWith(name)).toBe(true);
  });

  it('pads data to whole blocks and ends an archive with two zero blocks', () => {
    expect(tarPadding(0)).toHaveLength(0);
    expect(tarPadding(1)).toHaveLength(511);
    expect(tarPadding(512)).toHaveLength(0);
    expect(tarEnd()).toEqual(Buffer.alloc(1024));
  });
});
