import { afterEach, describe, expect, it, vi } from 'vitest';
import { logger } from '../../lib/logger';
import { DEFAULT_EXPORT_SCHEMAS } from '../../lib/config';
import { seedSampleDatabase } from '../../scripts/sample-database/seed-sample-database';
import { addTimeLimitedWorkflows } from '../../lib/time-limited/add-time-limited-workflows';
import { createTestDatabase } from '../support/database';
import type { TestDatabase } from '../support/database';

let db: TestDatabase | undefined;
afterEach(async () => {
  await db?.drop();
  db = undefined;
  vi.restoreAllMocks();
});

async function tablesBySchema(sql: TestDatabase['sql']) {
  return sql<{ table_schema: string; table_name: string; table_type: string }[]>`
    SELECT table_schema, table_name, table_type FROM information_schema.tables
    WHERE table_schema IN ${sql([...DEFAULT_EXPORT_SCHEMAS])} ORDER BY table_schema, table_name
  `;
}

describe('seedSampleDatabase', () => {
  it('creates the six schemas with tables, rows and one view, quickly', async () => {
    vi.spyOn(logger, 'info').mockImplementation(() => {});
    db = await createTestDatabase('waj_sample');
    const started = performance.now();
    expect(await seedSampleDatabase(db.sql)).toEqual({ seeded: true });
    expect(performance.now() - started).toBeLessThan(2000);

    const tables = await tablesBySchema(db.sql);
    expect(new Set(tables.map((t) => t.table_schema))).toEqual(new Set(DEFAULT_EXPORT_SCHEMAS));
    expect(tables.filter((t) => t.table_type === 'VIEW')).toHaveLength(1);
    expect(tables.filter((t) => t.table_schema === 'water' && t.table_type === 'BASE TABLE').map((t) => t.table_name)).toEqual([
      'charge_elements',
      'charge_purposes',
      'charge_version_workflows',
      'charge_versions',
      'licence_versions',
      'licences',
      'regions',
    ]);
    for (const { table_schema, table_name } of tables.filter((t) => t.table_type === 'BASE TABLE')) {
      const [{ n }] = await db.sql.unsafe<[{ n: number }]>(`SELECT count(*)::int AS n FROM "${table_schema}"."${table_name}"`);
      expect(n, `${table_schema}.${table_name} has rows`).toBeGreaterThan(0);
    }
  });

  it('has licences that qualify for the time-limited job today and others that do not', async () => {
    vi.spyOn(logger, 'info').mockImplementation(() => {});
    db = await createTestDatabase('waj_sample');
    await seedSampleDatabase(db.sql);
    const [{ licences }] = await db.sql<[{ licences: number }]>`SELECT count(*)::int AS licences FROM water.licences`;
    const { count } = await addTimeLimitedWorkflows(db.sql, { days: 50, timeZone: 'Europe/London' });
    expect(count).toBeGreaterThan(0);
    expect(count).toBeLessThan(licences - 1);
  });

  it('does nothing when the schemas exist (a second seed, or any one of the six already there)', async () => {
    vi.spyOn(logger, 'info').mockImplementation(() => {});
    db = await createTestDatabase('waj_sample');
    await seedSampleDatabase(db.sql);
    const before = await tablesBySchema(db.sql);
    expect(await seedSampleDatabase(db.sql)).toEqual({ seeded: false });
    expect(await tablesBySchema(db.sql)).toEqual(before);

    await db.drop();
    db = await createTestDatabase('waj_sample');
    await db.sql`CREATE SCHEMA crm_v2`;
    await db.sql`CREATE TABLE crm_v2.real_data (id int)`;
    expect(await seedSampleDatabase(db.sql)).toEqual({ seeded: false });
    expect((await tablesBySchema(db.sql)).map((t) => `${t.table_schema}.${t.table_name}`)).toEqual(['crm_v2.real_data']);
  });

  it('two seeds at once: one seeds, the other does nothing', async () => {
    vi.spyOn(logger, 'info').mockImplementation(() => {});
    db = await createTestDatabase('waj_sample');
    const results = await Promise.all([seedSampleDatabase(db.sql), seedSampleDatabase(db.sql)]);
    expect(results.map((r) => r.seeded).sort()).toEqual([false, true]);
  });
});
