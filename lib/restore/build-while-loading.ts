import type { PostDataUnit } from '../definition/definition-statements';
import type { SchemaDefinition } from '../definition/schema-definition';
import type { HeldConnection } from '../clients/transaction';
import type { LoadedTable, WorkBetweenLoads } from './load-tarballs';

const keyOf = (schema: string, table: string): string => `${schema}\u0000${table}`;
/** A unit as such: the same table's units of the two phases are told apart by their statements. */
const unitKey = (unit: PostDataUnit): string => unit.statements.join('\u0000');

/**
 * The first post-data phase (keys, checks, indexes: postDataWork phase 1) of tables already
 * loaded, for a reader that has no tarball of its own left (load-tarballs.ts), as pg_restore
 * builds a table's indexes as soon as its data is in: otherwise the last tables load with the
 * other connections idle, or inflating a tarball again for one small table.
 *
 * Only plain tables' units (a partitioned family waits for all its members; a domain's checks for
 * every table). Each is built in a transaction: a unit that fails here (rows that break a key,
 * a tarball that will fail its check) is rolled back and left to the phase after the load, so
 * the restore refuses for the same reason, with the same message, as when nothing is built early.
 *
 * `build` runs a unit's statements on a connection (restore-schemas.ts: its settings, then the
 * statements). The units built here are to be left out of that phase (`isBuilt`).
 */
export class BuildWhileLoading implements WorkBetweenLoads {
  private readonly waiting = new Map<string, PostDataUnit>();
  private readonly ready: { unit: PostDataUnit; bytes: number }[] = [];
  private readonly built = new Set<string>();

  constructor(
    units: PostDataUnit[],
    definitions: SchemaDefinition[],
    private readonly build: (connection: HeldConnection, unit: PostDataUnit) => Promise<void>,
  ) {
    const plain = new Set(
      definitions.flatMap((definition) =>
        definition.tables.filter((table) => table.partitionKey === null && table.partitionOf === null).map((table) => keyOf(definition.schema, table.name)),
      ),
    );
    for (const unit of units) {
      if (unit.kind === 'table' && plain.has(keyOf(unit.schema, unit.table))) this.waiting.set(keyOf(unit.schema, unit.table), unit);
    }
  }

  tableLoaded(table: LoadedTable): void {
    const key = keyOf(table.schema, table.table);
    const unit = this.waiting.get(key);
    if (!unit) return;
    this.waiting.delete(key);
    this.ready.push({ unit, bytes: table.bytes });
  }

  take(): ((connection: HeldConnection) => Promise<void>) | undefined {
    if (this.ready.length === 0) return undefined;
    // Largest first, as the phase after the load orders its units.
    this.ready.sort((a, b) => b.bytes - a.bytes);
    const { unit } = this.ready.shift()!;
    return async (held) => {
      const { connection } = held;
      // A write to a connection the server has ended crashes postgres.js (clients/transaction.ts).
      if (held.isClosed()) return;
      try {
        await connection.unsafe('BEGIN');
        await this.build(held, unit);
        await connection.unsafe('COMMIT');
        this.built.add(unitKey(unit));
      } catch {
        // Left for the phase after the load, which says why it fails (or builds it, if only this connection failed).
        if (!held.isClosed()) await connection.unsafe('ROLLBACK').catch(() => {});
      }
    };
  }

  isBuilt(unit: PostDataUnit): boolean {
    return this.built.has(unitKey(unit));
  }
}
