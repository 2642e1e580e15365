// ISql: a plain client or the transaction inside sql.begin.
import type { ISql } from 'postgres';

export interface BaseTable {
  name: string;
  /** A partitioned parent: COPY cannot read it directly, only through a query. */
  partitioned: boolean;
}

/**
 * The schema's base tables per information_schema.tables (`table_type = 'BASE TABLE'`, so no
 * views or foreign tables), in a stable byte-wise order.
 *
 * The schema name is a bound parameter, never spliced into the SQL text. information_schema
 * counts partitioned parents as base tables too (as well as their partitions), so the rule as
 * written exports both; pg_class tells us which is a parent.
 */
export async function listBaseTables(sql: ISql, schema: string): Promise<BaseTable[]> {
  const rows = await sql<{ name: string; partitioned: boolean }[]>`
    SELECT t.table_name AS name, c.relkind = 'p' AS partitioned
    FROM information_schema.tables t
    JOIN pg_catalog.pg_namespace n ON n.nspname = t.table_schema
    JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = t.table_name
    WHERE t.table_schema = ${schema} AND t.table_type = 'BASE TABLE'
    ORDER BY t.table_name COLLATE "C"
  `;
  return rows.map(({ name, partitioned }) => ({ name, partitioned }));
}
