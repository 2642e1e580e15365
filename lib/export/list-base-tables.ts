// ISql: a plain client, a reserved connection or a transaction.
import type { ISql } from 'postgres';
import { quoteIdentifier } from './quote-identifier';

export interface BaseTable {
  name: string;
  /** A partitioned parent: COPY cannot read it directly, only through a query. */
  partitioned: boolean;
}

/** The schema holds tables the connected role may not read: exporting it would leave them out. */
export class UnreadableTablesError extends Error {
  override readonly name = 'UnreadableTablesError';
  constructor(
    readonly schema: string,
    readonly tables: string[],
    role: string,
  ) {
    super(
      `The export's database role ${quoteIdentifier(role)} cannot read ${tables.length === 1 ? 'table' : 'tables'} ` +
        `${tables.map((table) => `${quoteIdentifier(schema)}.${quoteIdentifier(table)}`).join(', ')}: ` +
        `grant it SELECT (and USAGE on the schema), or the schema cannot be exported whole`,
    );
  }
}

/**
 * The schema's base tables per the catalog (pg_class: ordinary tables and partitioned parents,
 * so no views or foreign tables), in a stable byte-wise order. Throws UnreadableTablesError
 * naming every table the connected role cannot SELECT.
 *
 * Not information_schema.tables: it lists only the tables the role holds some privilege on, so a
 * table the export's role cannot read would vanish from the export without a word. The catalog
 * lists every table whoever asks. Partitioned parents and their partitions both count as base
 * tables there too (information_schema calls them all BASE TABLE), so both are exported, as before.
 * The schema name is a bound parameter, never spliced into the SQL text.
 */
export async function listBaseTables(sql: ISql, schema: string): Promise<BaseTable[]> {
  const rows = await sql<{ name: string; partitioned: boolean; readable: boolean; role: string }[]>`
    SELECT c.relname AS name,
           c.relkind = 'p' AS partitioned,
           has_schema_privilege(n.oid, 'USAGE') AND has_table_privilege(c.oid, 'SELECT') AS readable,
           current_user AS role
    FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = ${schema} AND c.relkind IN ('r', 'p')
    ORDER BY c.relname COLLATE "C"
  `;
  const unreadable = rows.filter((row) => !row.readable).map((row) => row.name);
  if (unreadable.length > 0) throw new UnreadableTablesError(schema, unreadable, rows[0]!.role);
  return rows.map(({ name, partitioned }) => ({ name, partitioned }));
}
