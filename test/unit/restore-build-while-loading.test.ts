import { describe, expect, it } from 'vitest';
import type { HeldConnection } from '../../lib/clients/transaction';
import type { PostDataUnit } from '../../lib/definition/definition-statements';
import type { SchemaDefinition, TableDefinition } from '../../lib/definition/schema-definition';
import { BuildWhileLoading } from '../../lib/restore/build-while-loading';

const table = (name: string, partitioning: Partial<Pick<TableDefinition, 'partitionKey' | 'partitionOf'>> = {}): TableDefinition =>
  // The two fields BuildWhileLoading reads; the rest of a table's definition plays no part here.
  ({ name, partitionKey: null, partitionOf: null, ...partitioning }) as TableDefinition;

const definition: SchemaDefinition = {
  schema: 'water',
  tables: [table('licences'), table('versions'), table('readings', { partitionKey: 'RANGE (taken)' }), table('readings_2024', { partitionOf: { table: 'readings', bound: "FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')" } })],
} as SchemaDefinition;

const unit = (name: string, statements: string[] = [`CREATE INDEX ON ${name} (id)`], kind: PostDataUnit['kind'] = 'table'): PostDataUnit => ({ schema: 'water', table: name, kind, statements });
const loaded = (name: string, bytes: number) => ({ schema: 'water', table: name, rows: 1, bytes, timeTakenMs: 1 });

/** A connection that records what it is sent; `closed`: one the server has ended. */
function fakeConnection(sent: string[], closed = false): HeldConnection {
  // The one method the early builds call on a reserved connection.
  const connection = { unsafe: async (statement: string) => void sent.push(statement) };
  return { connection: connection as unknown as HeldConnection['connection'], isClosed: () => closed };
}

describe('BuildWhileLoading', () => {
  it('offers a plain table’s unit once its rows are in, largest first, and builds it in a transaction', async () => {
    const built: string[] = [];
    const early = new BuildWhileLoading([unit('licences'), unit('versions')], [definition], async (held, u) => {
      built.push(u.table);
      await held.connection.unsafe(u.statements[0]!);
    });
    expect(early.take()).toBeUndefined();
    early.tableLoaded(loaded('versions', 10));
    early.tableLoaded(loaded('licences', 500));

    const sent: string[] = [];
    await early.take()!(fakeConnection(sent));
    expect(built).toEqual(['licences']);
    expect(sent).toEqual(['BEGIN', 'CREATE INDEX ON licences (id)', 'COMMIT']);
    expect(early.isBuilt(unit('licences'))).toBe(true);
    // The same table's foreign keys (phase 2) are another unit: not built here.
    expect(early.isBuilt(unit('licences', ['ALTER TABLE licences ADD CONSTRAINT fk FOREIGN KEY (x) REFERENCES regions (id)']))).toBe(false);
    expect(early.isBuilt(unit('versions'))).toBe(false);
    await early.take()!(fakeConnection([]));
    expect(early.isBuilt(unit('versions'))).toBe(true);
    expect(early.take()).toBeUndefined();
  });

  it('rolls back a unit that fails and leaves it for the phase after the load (which reports why)', async () => {
    const early = new BuildWhileLoading([unit('licences')], [definition], async () => {
      throw new Error('could not create unique index "licences_pkey"');
    });
    early.tableLoaded(loaded('licences', 5));
    const sent: string[] = [];
    await expect(early.take()!(fakeConnection(sent))).resolves.toBeUndefined();
    expect(sent).toEqual(['BEGIN', 'ROLLBACK']);
    expect(early.isBuilt(unit('licences'))).toBe(false);
    expect(early.take()).toBeUndefined();
  });

  it('sends nothing on a connection the server has closed, and leaves the unit for later', async () => {
    let builds = 0;
    const early = new BuildWhileLoading([unit('licences')], [definition], async () => void (builds += 1));
    early.tableLoaded(loaded('licences', 5));
    const sent: string[] = [];
    await early.take()!(fakeConnection(sent, true));
    expect(sent).toEqual([]);
    expect(builds).toBe(0);
    expect(early.isBuilt(unit('licences'))).toBe(false);
  });

  it('leaves partitioned families and domains to the phase after the load', () => {
    const early = new BuildWhileLoading([unit('readings'), unit('readings_2024'), unit('water_level', ['ALTER DOMAIN ...'], 'domain')], [definition], async () => {});
    for (const name of ['readings', 'readings_2024', 'water_level']) early.tableLoaded(loaded(name, 5));
    expect(early.take()).toBeUndefined();
  });
});
