import { describe, expect, it } from 'vitest';
import type { PostDataUnit } from '../../lib/definition/definition-statements';
import type { SchemaDefinition, TableDefinition } from '../../lib/definition/schema-definition';
import { withAnalyze } from '../../lib/restore/stage-schemas';

const table = (name: string, partitioning: Partial<Pick<TableDefinition, 'partitionKey' | 'partitionOf'>> = {}): TableDefinition =>
  // The two fields withAnalyze reads; the rest of a table's definition plays no part here.
  ({ name, partitionKey: null, partitionOf: null, ...partitioning }) as TableDefinition;

const definition: SchemaDefinition = {
  schema: 'Water Rights',
  tables: [
    table('licences'),
    table('Audit Notes'),
    table('readings', { partitionKey: 'RANGE (taken)' }),
    table('readings_2024', { partitionOf: { table: 'readings', bound: "FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')" } }),
  ],
} as SchemaDefinition;
const names = new Map([['Water Rights', 'waj_restore_1_0']]);

const unit = (name: string, kind: PostDataUnit['kind'] = 'table'): PostDataUnit => ({ schema: 'Water Rights', table: name, kind, statements: [`-- keys of ${name}`] });

describe('withAnalyze', () => {
  it('ends each plain table’s unit with its ANALYZE under the staging name, and gives a plain table without one a unit of its own', () => {
    const units = withAnalyze([unit('licences'), unit('readings'), unit('a_domain', 'domain')], [definition], names);
    expect(units).toEqual([
      { schema: 'Water Rights', table: 'licences', kind: 'table', statements: ['-- keys of licences', 'ANALYZE "waj_restore_1_0"."licences"'] },
      // A partitioned family's unit and a domain's are left as they are: analyzed after every build.
      unit('readings'),
      unit('a_domain', 'domain'),
      { schema: 'Water Rights', table: 'Audit Notes', kind: 'table', statements: ['ANALYZE "waj_restore_1_0"."Audit Notes"'] },
    ]);
  });

  it('does not add a unit for a domain of the same name as a table (a domain’s unit is not a table’s)', () => {
    const units = withAnalyze([unit('licences', 'domain')], [{ ...definition, tables: [table('licences')] } as SchemaDefinition], names);
    expect(units.map((u) => [u.kind, u.statements.at(-1)])).toEqual([
      ['domain', '-- keys of licences'],
      ['table', 'ANALYZE "waj_restore_1_0"."licences"'],
    ]);
  });
});
