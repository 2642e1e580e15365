// ISql: a plain client, a reserved connection or a transaction.
import type { ISql, Sql } from 'postgres';
import { inTransaction } from '../clients/transaction';
import { quoteLiteral } from '../definition/definition-statements';
import { quoteIdentifier } from '../export/quote-identifier';

/** A schema built out of sight, and the name it replaces (which may not exist yet). */
export interface SchemaReplacement {
  live: string;
  staging: string;
  /** The name the old schema is moved to, then dropped. */
  retired: string;
}

export interface ReplaceOptions {
  /** How long one attempt waits for readers' locks before it lets go and tries again. */
  lockTimeoutMs?: number;
  attempts?: number;
  onRetry?: (attempt: number, error: Error) => void;
  /** Set on each new schema in the same transaction (COMMENT ON SCHEMA): where it came from. */
  comment?: (replacement: SchemaReplacement) => string;
}

const LOCK_NOT_AVAILABLE = '55P03';

/**
 * Puts every staging schema in place of its live one in ONE transaction, so a reader sees all the
 * old schemas or all the new ones:
 * 1. takes ACCESS EXCLUSIVE on every relation of the live schemas (waiting for the first only). A query resolves each table's
 *    name and then locks it; one that looked an old table up while this transaction holds it
 *    waits, and looks the name up again when the lock is granted (RangeVarGetRelidExtended does),
 *    finding the new table. Without these locks a query naming two schemas could resolve one
 *    before the commit and the other after: old and new in one answer.
 * 2. grants the staging schemas and tables what the live ones grant (readers' roles keep their
 *    access: a reader gets no "permission denied" from the new tables);
 * 3. renames each live schema to its retired name and each staging schema to the live name.
 * A reader is held only while this transaction waits and runs, never for the load: each attempt
 * waits at most `lockTimeoutMs` for the locks (readers holding old tables finish first), and lets
 * go, letting the readers queued behind it run, before trying again.
 */
export async function replaceSchemas(sql: Sql, replacements: SchemaReplacement[], options: ReplaceOptions = {}): Promise<{ attempts: number }> {
  const { lockTimeoutMs = 2000, attempts = 60 } = options;
  for (let attempt = 1; ; attempt += 1) {
    try {
      await inTransaction(sql, async (tx) => {
        await tx.unsafe(`SET LOCAL lock_timeout = ${Math.max(1, Math.round(lockTimeoutMs))}`);
        const live = replacements.map((r) => r.live);
        const relations = await tx<{ name: string }[]>`
          SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS name
          FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = ANY(${live}::text[]) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
          ORDER BY n.nspname, c.relname`;
        // Waits (up to lock_timeout) for the first lock only, holding nothing; the rest NOWAIT. A
        // transaction that waited while holding some could close a cycle with a reader that holds
        // one and waits for another, and the deadlock detector may pick the reader.
        const [first, ...rest] = relations.map((r) => r.name);
        if (first) await tx.unsafe(`LOCK TABLE ${first} IN ACCESS EXCLUSIVE MODE`);
        if (rest.length > 0) await tx.unsafe(`LOCK TABLE ${rest.join(', ')} IN ACCESS EXCLUSIVE MODE NOWAIT`);
        for (const statement of await grantsToCarryOver(tx, replacements)) await tx.unsafe(statement);
        for (const { live: name, staging, retired } of replacements) {
          const [exists] = await tx`SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = ${name}`;
          if (exists) await tx.unsafe(`ALTER SCHEMA ${quoteIdentifier(name)} RENAME TO ${quoteIdentifier(retired)}`);
          await tx.unsafe(`ALTER SCHEMA ${quoteIdentifier(staging)} RENAME TO ${quoteIdentifier(name)}`);
          if (options.comment) await tx.unsafe(`COMMENT ON SCHEMA ${quoteIdentifier(name)} IS ${quoteLiteral(options.comment({ live: name, staging, retired }))}`);
        }
      });
      return { attempts: attempt };
    } catch (error) {
      if ((error as { code?: string }).code !== LOCK_NOT_AVAILABLE || attempt >= attempts) throw error;
      options.onRetry?.(attempt, error as Error);
      // Let the readers that queued behind this attempt through before the next.
      await new Promise((resolve) => setTimeout(resolve, Math.min(1000, 20 * attempt) * Math.random()));
    }
  }
}

/** GRANT statements giving each staging schema, and its tables, what the live one of the same name grants. */
async function grantsToCarryOver(tx: ISql, replacements: SchemaReplacement[]): Promise<string[]> {
  const statements: string[] = [];
  for (const { live, staging } of replacements) {
    const schemaGrants = await tx<{ statement: string }[]>`
      SELECT format('GRANT %s ON SCHEMA %I TO %s%s', a.privilege_type, ${staging}::text,
                    CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END,
                    CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END) AS statement
      FROM pg_catalog.pg_namespace n, aclexplode(n.nspacl) a
      WHERE n.nspname = ${live} AND a.grantee <> n.nspowner`;
    const tableGrants = await tx<{ statement: string }[]>`
      SELECT format('GRANT %s ON TABLE %I.%I TO %s%s', a.privilege_type, ${staging}::text, old.relname,
                    CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END,
                    CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END) AS statement
      FROM pg_catalog.pg_class old
      JOIN pg_catalog.pg_namespace oldn ON oldn.oid = old.relnamespace AND oldn.nspname = ${live}
      JOIN pg_catalog.pg_namespace newn ON newn.nspname = ${staging}
      JOIN pg_catalog.pg_class new ON new.relnamespace = newn.oid AND new.relname = old.relname AND new.relkind = old.relkind,
      aclexplode(old.relacl) a
      WHERE old.relkind IN ('r', 'p', 'v', 'm') AND a.grantee <> old.relowner`;
    statements.push(...schemaGrants.map((row) => row.statement), ...tableGrants.map((row) => row.statement));
  }
  return statements;
}
