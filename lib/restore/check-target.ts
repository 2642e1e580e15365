import postgres from 'postgres';
// ISql: a plain client, a reserved connection or a transaction.
import type { ISql } from 'postgres';
import { RestoreCannotRunError, RestoreRefusedError } from './restore-errors';

/** Which server and database a connection reaches: the same identity means the same database, whatever the URL says. */
interface DatabaseIdentity {
  systemIdentifier: string | null;
  database: string;
}

async function identityOf(sql: ISql): Promise<DatabaseIdentity> {
  const [row] = await sql<{ database: string }[]>`SELECT current_database() AS database`;
  let systemIdentifier: string | null = null;
  try {
    // pg_control_system() may be withheld from a role; then host, port and name decide.
    const [control] = await sql<{ id: string }[]>`SELECT system_identifier::text AS id FROM pg_catalog.pg_control_system()`;
    systemIdentifier = control?.id ?? null;
  } catch {
    systemIdentifier = null;
  }
  return { systemIdentifier, database: row!.database };
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '::1', '[::1]', '']);

/** Host, port and database of a connection string, loopback names made one. */
function addressOf(url: string): string {
  const parsed = new URL(url);
  const host = LOOPBACK.has(parsed.hostname) ? 'loopback' : parsed.hostname.toLowerCase();
  return `${host}:${parsed.port || '5432'}/${decodeURIComponent(parsed.pathname.slice(1)) || parsed.username}`;
}

/**
 * Refuses to restore into the database the export reads (`DATABASE_URL`): replacing its schemas
 * would replace the service's own tables. The same server (pg_control_system's identifier, when
 * the role may read it) and database name, or failing that the same host, port and name.
 */
export async function refuseSourceDatabase(target: ISql, targetUrl: string, sourceUrl: string | undefined): Promise<void> {
  if (!sourceUrl) return;
  const refuse = (): never => {
    throw new RestoreRefusedError(
      'The target is the database the export reads (DATABASE_URL): restoring would replace the service\'s own schemas. Restore into the reporting database, or unset DATABASE_URL if this really is another database',
    );
  };
  if (addressOf(sourceUrl) === addressOf(targetUrl)) refuse();
  const source = postgres(sourceUrl, { max: 1, connect_timeout: 3, onnotice: () => {} });
  try {
    const [a, b] = await Promise.all([identityOf(target), identityOf(source)]);
    if (a.database === b.database && a.systemIdentifier !== null && a.systemIdentifier === b.systemIdentifier) refuse();
  } catch (error) {
    if (error instanceof RestoreRefusedError) throw error;
    // The source cannot be reached: the addresses differ, which is all that can be known.
  } finally {
    await source.end({ timeout: 1 });
  }
}

/**
 * Objects outside the replaced schemas that depend on their tables (a view of the reporting team's
 * own, a foreign key): replacing the schemas would leave them on the old tables (then dropped).
 */
export async function refuseOutsideDependents(sql: ISql, schemas: string[]): Promise<void> {
  const rows = await sql<{ dependent: string; on: string }[]>`
    SELECT DISTINCT pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid) AS dependent,
           quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS on
    FROM pg_catalog.pg_depend d
    JOIN pg_catalog.pg_class c ON d.refclassid = 'pg_catalog.pg_class'::regclass AND c.oid = d.refobjid
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace AND n.nspname = ANY(${schemas}::text[])
    LEFT JOIN pg_catalog.pg_rewrite r ON d.classid = 'pg_catalog.pg_rewrite'::regclass AND r.oid = d.objid
    LEFT JOIN pg_catalog.pg_class rc ON rc.oid = r.ev_class
    LEFT JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace
    LEFT JOIN pg_catalog.pg_constraint k ON d.classid = 'pg_catalog.pg_constraint'::regclass AND k.oid = d.objid
    LEFT JOIN pg_catalog.pg_namespace kn ON kn.oid = k.connamespace
    WHERE d.deptype = 'n'
      AND ((r.oid IS NOT NULL AND rc.oid <> c.oid AND NOT rn.nspname = ANY(${schemas}::text[]))
        OR (k.oid IS NOT NULL AND NOT kn.nspname = ANY(${schemas}::text[])))
    ORDER BY 1, 2`;
  if (rows.length === 0) return;
  const list = rows.slice(0, 5).map((row) => `${row.dependent} (on ${row.on})`).join('; ');
  throw new RestoreRefusedError(
    `Objects outside the restored schemas depend on their tables, and would be left on the old ones: ${list}${rows.length > 5 ? ` and ${rows.length - 5} more` : ''}. Drop them before the restore and create them again after`,
  );
}

/**
 * Objects built in the staging schemas that refer to an object of a live schema about to be
 * replaced (a column of a type, a default of a sequence, a key of a table, by a qualified name the
 * staging names could not rebind: a tarball exported with another list of schemas than the one
 * beside it). Put in place, they would point at the old schema, and dropping it would drop them.
 */
export async function refuseStagingBoundToReplaced(sql: ISql, replacements: { live: string; staging: string }[]): Promise<void> {
  const live = replacements.map((r) => r.live);
  const staging = replacements.map((r) => r.staging);
  const rows = await sql<{ dependent: string; on: string }[]>`
    WITH replaced AS (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = ANY(${live}::text[])),
    referenced AS (
      SELECT 'pg_catalog.pg_type'::regclass AS classid, oid FROM pg_catalog.pg_type WHERE typnamespace IN (SELECT oid FROM replaced)
      UNION ALL SELECT 'pg_catalog.pg_class'::regclass, oid FROM pg_catalog.pg_class WHERE relnamespace IN (SELECT oid FROM replaced)
      UNION ALL SELECT 'pg_catalog.pg_proc'::regclass, oid FROM pg_catalog.pg_proc WHERE pronamespace IN (SELECT oid FROM replaced)
    )
    SELECT DISTINCT pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid) AS dependent,
           pg_catalog.pg_describe_object(d.refclassid, d.refobjid, 0) AS on
    FROM pg_catalog.pg_depend d
    JOIN referenced r ON r.classid = d.refclassid AND r.oid = d.refobjid
    CROSS JOIN LATERAL pg_catalog.pg_identify_object(d.classid, d.objid, d.objsubid) o
    WHERE d.deptype = 'n'
      AND COALESCE(o.schema, (SELECT n.nspname FROM pg_catalog.pg_attrdef ad JOIN pg_catalog.pg_class c ON c.oid = ad.adrelid
                              JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                              WHERE d.classid = 'pg_catalog.pg_attrdef'::regclass AND ad.oid = d.objid)) = ANY(${staging}::text[])
    ORDER BY 1, 2`;
  if (rows.length === 0) return;
  const list = rows.slice(0, 3).map((row) => `${row.dependent} refers to ${row.on}`).join('; ');
  throw new RestoreRefusedError(
    `The restored schemas would refer to the ones they replace: ${list}${rows.length > 3 ? ` and ${rows.length - 3} more` : ''}. ` +
      'Their tarballs were exported with different lists of schemas; export these schemas together and restore that export',
  );
}

/** Connects, or says it cannot (exit 2). */
export async function assertReachable(sql: ISql, label: string): Promise<{ serverVersionNum: number }> {
  try {
    const [row] = await sql<{ version: string }[]>`SELECT current_setting('server_version_num') AS version`;
    return { serverVersionNum: Number(row!.version) };
  } catch (error) {
    throw new RestoreCannotRunError(`Cannot connect to the target ${label}: ${(error as Error).message}`);
  }
}
