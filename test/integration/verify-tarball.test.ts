import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gunzipSync, gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { verifyTarball } from '../../lib/verification/verify-tarball';
import { buildSchemaTarball, buildTar, flipByteInside, SAMPLE_TABLES, summarise } from '../fixtures/verification/build-tarball';

/** Feeds the bytes in small, uneven chunks, as a network stream would. */
function streamOf(bytes: Buffer, chunkSize = 777): Readable {
  const chunks: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += chunkSize) chunks.push(bytes.subarray(i, i + chunkSize));
  return Readable.from(chunks);
}

describe('verifyTarball', () => {
  it('verifies a whole tarball, counting a multi-line quoted value as one record', async () => {
    const result = await verifyTarball(streamOf(await buildSchemaTarball('water', SAMPLE_TABLES)));
    expect(result.problems).toEqual([]);
    expect(result.status).toBe('verified');
    expect(result.schema).toBe('water');
    // licences: a header and three records, one of them spanning two lines.
    expect(result.csvFiles.map((f) => [f.file, f.rows])).toEqual([
      ['water/licences.csv', 3],
      ['water/charge_versions.csv', 2],
      ['water/empty_table.csv', 0],
    ]);
  });

  it('counts quoted newlines inside a record: a manifest that counted lines is wrong', async () => {
    const tgz = await buildSchemaTarball('water', SAMPLE_TABLES, {
      manifest: (m) => ({ ...m, tables: m.tables.map((t) => (t.table === 'licences' ? { ...t, rows: 4 } : t)) }),
    });
    const result = await verifyTarball(streamOf(tgz));
    expect(result.problems).toEqual([
      { kind: 'rows', table: 'licences', file: 'water/licences.csv', expected: 4, found: 3, message: 'licences (water/licences.csv): rows expected 4, found 3' },
    ]);
  });

  it('reads several gzip members back to back as one stream', async () => {
    const tar = gunzipSync(await buildSchemaTarball('water', SAMPLE_TABLES));
    const cut = 1536; // inside the archive, at a block boundary
    const multiMember = Buffer.concat([gzipSync(tar.subarray(0, cut)), gzipSync(tar.subarray(cut))]);
    const result = await verifyTarball(streamOf(multiMember));
    expect(result.status).toBe('verified');
  });

  it('fails a CSV whose bytes changed (one byte flipped, recompressed), naming the table and the sha256', async () => {
    const tgz = flipByteInside(await buildSchemaTarball('water', SAMPLE_TABLES), 'alcs', 'b'); // "alcs" -> "blcs"
    const result = await verifyTarball(streamOf(tgz));
    expect(result.status).toBe('failed');
    expect(result.problems).toHaveLength(1);
    expect(result.problems[0]).toMatchObject({ kind: 'sha256', table: 'charge_versions', file: 'water/charge_versions.csv' });
    expect(result.problems[0]!.message).toMatch(/^charge_versions \(water\/charge_versions\.csv\): sha256 expected [0-9a-f]{64}, found [0-9a-f]{64}$/);
  });

  it('fails a truncated object as truncated (cut inside the gzip stream)', async () => {
    const tgz = await buildSchemaTarball('water', SAMPLE_TABLES);
    const result = await verifyTarball(streamOf(tgz.subarray(0, Math.floor(tgz.length / 2))));
    expect(result.status).toBe('failed');
    expect(result.problems).toEqual([expect.objectContaining({ kind: 'truncated', message: expect.stringMatching(/^Truncated: the gzip stream ends unexpectedly/) })]);
  });

  it('fails as truncated an archive cut at a member boundary, where gzip alone sees nothing wrong', async () => {
    const tar = gunzipSync(await buildSchemaTarball('water', SAMPLE_TABLES));
    // Everything but the end-of-archive marker, then the first 512 bytes only of it.
    for (const keep of [tar.length - 1024, tar.length - 512, 2048]) {
      const result = await verifyTarball(streamOf(gzipSync(tar.subarray(0, keep))));
      expect(result.status, `kept ${keep} bytes`).toBe('failed');
      expect(result.problems[0]?.kind).toBe('truncated');
    }
  });

  it('fails a CSV that is missing from the manifest, naming it', async () => {
    const tgz = await buildSchemaTarball('water', SAMPLE_TABLES, { manifest: (m) => ({ ...m, tables: m.tables.filter((t) => t.table !== 'charge_versions') }) });
    const result = await verifyTarball(streamOf(tgz));
    expect(result.problems).toEqual([
      { kind: 'not-in-manifest', table: 'charge_versions', file: 'water/charge_versions.csv', found: 2, message: 'charge_versions (water/charge_versions.csv): in the archive (2 rows) but not in the manifest' },
    ]);
  });

  it('fails a manifest entry that is missing from the archive, naming it', async () => {
    const tgz = await buildSchemaTarball('water', SAMPLE_TABLES, {
      manifest: (m) => ({ ...m, tables: [...m.tables, { table: 'returns', file: 'water/returns.csv', rows: 5, bytes: 50, sha256: '0'.repeat(64) }] }),
    });
    const result = await verifyTarball(streamOf(tgz));
    expect(result.problems).toEqual([
      { kind: 'missing-from-archive', table: 'returns', file: 'water/returns.csv', message: 'returns (water/returns.csv): in the manifest but not in the archive' },
    ]);
  });

  it('fails a manifest row count off by one, with expected and found', async () => {
    const tgz = await buildSchemaTarball('water', SAMPLE_TABLES, {
      manifest: (m) => ({ ...m, tables: m.tables.map((t) => (t.table === 'charge_versions' ? { ...t, rows: t.rows + 1 } : t)) }),
    });
    const result = await verifyTarball(streamOf(tgz));
    expect(result.problems).toEqual([expect.objectContaining({ kind: 'rows', table: 'charge_versions', expected: 3, found: 2 })]);
  });

  it('fails a tarball with no manifest', async () => {
    const result = await verifyTarball(streamOf(await buildSchemaTarball('water', SAMPLE_TABLES, { withoutManifest: true })));
    expect(result.status).toBe('failed');
    expect(result.problems.map((p) => p.kind)).toEqual(['manifest-missing']);
  });

  it('fails a manifest that is not JSON', async () => {
    const tar = await buildTar([
      { name: 'water/a.csv', content: Buffer.from('x\n1\n') },
      { name: 'water/manifest.json', content: Buffer.from('{"schema": "water", "tables": [') },
    ]);
    const result = await verifyTarball(streamOf(gzipSync(tar)));
    expect(result.problems.map((p) => p.kind)).toEqual(['manifest-invalid']);
  });

  it('calls an object that is not gzip unreadable (a plain tar; an empty object)', async () => {
    const plainTar = gunzipSync(await buildSchemaTarball('water', SAMPLE_TABLES));
    const result = await verifyTarball(streamOf(plainTar));
    expect(result.status).toBe('unreadable');
    expect(result.problems).toEqual([{ kind: 'not-gzip', message: expect.stringMatching(/^Not a gzip file/) }]);
    expect((await verifyTarball(Readable.from([]))).status).toBe('unreadable');
  });

  it('fails gzip whose compressed data is corrupted', async () => {
    const tgz = Buffer.from(await buildSchemaTarball('water', SAMPLE_TABLES));
    tgz.writeUInt8(tgz.readUInt8(tgz.length - 6) ^ 0xff, tgz.length - 6); // inside the CRC-32 of the member's trailer
    const result = await verifyTarball(streamOf(tgz));
    expect(result.status).toBe('failed');
    expect(result.problems[0]?.kind).toBe('corrupt');
  });

  it('fails gzip of something that is not a tar archive', async () => {
    const result = await verifyTarball(streamOf(gzipSync(Buffer.from('id,name\n1,a\n'.repeat(100)))));
    expect(result.status).toBe('failed');
    expect(result.problems[0]).toMatchObject({ kind: 'corrupt', message: expect.stringMatching(/^Not a valid tar archive/) });
  });

  it('reads long entry names (pax) as the export writes them', async () => {
    const table = `t_${'x'.repeat(150)}`;
    const result = await verifyTarball(streamOf(await buildSchemaTarball('crm_v2', [{ table, csv: 'a\n1\n' }])));
    expect(result.problems).toEqual([]);
    expect(result.csvFiles[0]!.file).toBe(`crm_v2/${table}.csv`);
  });

  it('verifies a tarball repacked with GNU tar (GNU long names, padding to a 10 KiB record)', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'waj-gnu-tar-'));
    try {
      const tables = [...SAMPLE_TABLES, { table: `long_${'n'.repeat(120)}`, csv: 'a\n1\n' }];
      mkdirSync(join(folder, 'water'));
      for (const t of tables) writeFileSync(join(folder, 'water', `${t.table}.csv`), t.csv);
      const manifest = { schema: 'water', exportedAt: '2026-11-25T12:00:00.000Z', tables: tables.map((t) => summarise('water', t)) };
      writeFileSync(join(folder, 'water', 'manifest.json'), JSON.stringify(manifest));
      execFileSync('tar', ['--format=gnu', '-czf', join(folder, 'water.tgz'), '-C', folder, 'water']);
      const result = await verifyTarball(streamOf(readFileSync(join(folder, 'water.tgz'))));
      expect(result.problems).toEqual([]);
      expect(result.tables).toHaveLength(4);
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });

  it('fails an archive with data after its end-of-archive marker', async () => {
    const tar = gunzipSync(await buildSchemaTarball('water', SAMPLE_TABLES));
    const result = await verifyTarball(streamOf(gzipSync(Buffer.concat([tar, Buffer.from('trailing bytes')]))));
    expect(result.status).toBe('failed');
    expect(result.problems[0]).toMatchObject({ kind: 'corrupt', message: expect.stringMatching(/Data after the end-of-archive marker/) });
  });

  it('throws, rather than calling the tarball truncated, when reading the source fails (a dropped connection)', async () => {
    const tgz = await buildSchemaTarball('water', SAMPLE_TABLES);
    const dropped = new Readable({ read() {} });
    dropped.push(tgz.subarray(0, 200));
    setImmediate(() => dropped.destroy(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })));
    await expect(verifyTarball(dropped)).rejects.toThrow(/socket hang up/);
  });
});
