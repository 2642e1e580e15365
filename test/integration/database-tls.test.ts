import { createHash } from 'node:crypto';
import { chownSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import postgres from 'postgres';
import type { Sql } from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectDatabase } from '../../lib/clients/database';
import { openCopyOut } from '../../lib/export/open-copy-out';
import { openCopyIn } from '../../lib/restore/open-copy-in';
import { startEmbeddedPostgres } from '../support/embedded-postgres';
import type { EmbeddedPostgres } from '../support/embedded-postgres';

/**
 * The project's clients do TLS themselves (lib/clients/database-socket.ts), so that the export can
 * tap COPY rows off the decrypted stream. Tried against a private server with TLS switched on (a
 * self-signed certificate for localhost from test/fixtures/tls) and, for the refusals, switched off.
 */
const fixtures = join(import.meta.dirname, '../fixtures/tls');
const ROWS = 50_000;
const COPY = `COPY (SELECT g, md5(g::text) AS hash FROM generate_series(1, ${ROWS}) g) TO STDOUT (FORMAT csv, HEADER)`;
const expectedCsv = (): Buffer =>
  Buffer.from(['g,hash', ...Array.from({ length: ROWS }, (_, k) => `${k + 1},${createHash('md5').update(String(k + 1)).digest('hex')}`)].join('\n') + '\n');

let server: EmbeddedPostgres;
const urlWith = (sslmode?: string): string => (sslmode ? `${server.adminUrl}?sslmode=${sslmode}` : server.adminUrl);

async function setTls(on: boolean): Promise<void> {
  const admin = postgres(server.adminUrl, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`ALTER SYSTEM SET ssl = ${on ? 'on' : 'off'}`);
    await admin`SELECT pg_reload_conf()`;
  } finally {
    await admin.end();
  }
}

async function usesTls(sql: Sql): Promise<boolean> {
  const [row] = await sql<{ ssl: boolean }[]>`SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()`;
  return row!.ssl;
}

beforeAll(async () => {
  server = await startEmbeddedPostgres();
  // The server reads its key only if the key belongs to it and nobody else may read it.
  const { uid, gid } = statSync(server.dataDir);
  for (const file of ['server.crt', 'server.key']) {
    const target = join(server.dataDir, file);
    writeFileSync(target, readFileSync(join(fixtures, file)), { mode: 0o600 });
    chownSync(target, uid, gid);
  }
  await setTls(true);
}, 120_000);

afterAll(async () => {
  await server?.stop();
});

describe('database connections with TLS', () => {
  it('sslmode=require: the connection is encrypted, and a COPY read through the tap is byte for byte what the server sent', async () => {
    const sql = connectDatabase(urlWith('require'), { max: 1, connectTimeout: 5 });
    try {
      expect(await usesTls(sql)).toBe(true);
      const copy = await openCopyOut(sql, COPY);
      const chunks: Buffer[] = [];
      for await (const chunk of copy) chunks.push(chunk as Buffer);
      await copy.copyEnded;
      expect(Buffer.concat(chunks).equals(expectedCsv())).toBe(true);
      expect(copy.rowsCounted()).toBe(ROWS + 1);
      // The connection goes on working after the COPY.
      expect(await sql`SELECT 1 AS one`).toEqual([{ one: 1 }]);
    } finally {
      await sql.end();
    }
  });

  it('sslmode=require: a COPY FROM STDIN whose rows openCopyIn frames onto the TLS socket itself loads them all, and the connection goes on working', async () => {
    const sql = connectDatabase(urlWith('require'), { max: 1, connectTimeout: 5 });
    try {
      const connection = await sql.reserve();
      try {
        expect(await usesTls(connection)).toBe(true);
        await connection`CREATE TEMPORARY TABLE copied (g integer, hash text)`;
        const copy = await openCopyIn(connection, 'COPY copied FROM STDIN (FORMAT csv, HEADER)');
        // Chunks that cut rows in two, one far larger than a TLS record.
        const csv = expectedCsv();
        for (const [from, to] of [[0, 10], [10, 700_000], [700_000, csv.length]] as const) await copy.write(csv.subarray(from, to));
        expect(await copy.end()).toBe(ROWS);
        const [loaded] = await connection<{ rows: number; hashes: string }[]>`SELECT count(*)::int AS rows, md5(string_agg(hash, ',' ORDER BY g)) AS hashes FROM copied`;
        const hashes = Array.from({ length: ROWS }, (_, k) => createHash('md5').update(String(k + 1)).digest('hex')).join(',');
        expect(loaded).toEqual({ rows: ROWS, hashes: createHash('md5').update(hashes).digest('hex') });
      } finally {
        connection.release();
      }
    } finally {
      await sql.end();
    }
  });

  it('sslmode=prefer uses TLS when the server offers it; no sslmode means none', async () => {
    const preferring = connectDatabase(urlWith('prefer'), { max: 1, connectTimeout: 5 });
    const plain = connectDatabase(urlWith(), { max: 1, connectTimeout: 5 });
    try {
      expect(await usesTls(preferring)).toBe(true);
      expect(await usesTls(plain)).toBe(false);
    } finally {
      await Promise.all([preferring.end(), plain.end()]);
    }
  });

  it('sslmode=verify-full refuses a certificate no trusted authority signed', async () => {
    const sql = connectDatabase(urlWith('verify-full'), { max: 1, connectTimeout: 5 });
    try {
      await expect(sql`SELECT 1`).rejects.toThrow(/self[- ]signed certificate/);
    } finally {
      await sql.end();
    }
  });

  it('an unknown sslmode is refused at once, naming it', () => {
    expect(() => connectDatabase(urlWith('always'))).toThrow(/Unknown sslmode "always"/);
  });

  describe('when the server does not do TLS', () => {
    beforeAll(() => setTls(false));
    afterAll(() => setTls(true));

    it('sslmode=require fails with a clear error, and later queries fail the same way rather than wait', async () => {
      const sql = connectDatabase(urlWith('require'), { max: 1, connectTimeout: 5 });
      try {
        await expect(sql`SELECT 1`).rejects.toThrow(/does not accept TLS connections, and sslmode=require asks for one/);
        await expect(sql`SELECT 2`).rejects.toThrow(/does not accept TLS connections/);
      } finally {
        await sql.end();
      }
    });

    it('sslmode=prefer connects without TLS', async () => {
      const sql = connectDatabase(urlWith('prefer'), { max: 1, connectTimeout: 5 });
      try {
        expect(await usesTls(sql)).toBe(false);
      } finally {
        await sql.end();
      }
    });
  });
});
