import type { Sql, TransactionSql } from 'postgres';

/**
 * A schema as the catalog describes it, with nothing that differs between two databases where it
 * was built the same way (no OIDs, no sequence positions), so two of them compare with toEqual.
 */
export interface SchemaCatalog {
  types: {
    name: string;
    kind: 'enum' | 'domain' | 'composite';
    labels: string[];
    baseType: string | null;
    notNull: boolean;
    defaultExpression: string | null;
    collation: string | null;
    checks: { name: string; definition: string }[];
    attributes: { name: string; type: string; collation: string | null }[];
  }[];
  tables: {
    name: string;
    kind: 'table' | 'partitioned table';
    partitionKey: string | null;
    partitionOf: { table: string; bound: string } | null;
    columns: {
      name: string;
      type: string;
      notNull: boolean;
      defaultExpression: string | null;
      generated: string | null;
      identity: 'always' | 'by default' | null;
      collation: string | null;
    }[];
    constraints: { name: string; type: string; definition: string; local: boolean; inherited: number; validated: boolean; deferrable: boolean; deferred: boolean }[];
    indexes: { name: string; definition: string; constraint: string | null; partitionOf: string | null; valid: boolean }[];
  }[];
  sequences: {
    name: string;
    dataType: string;
    start: string;
    increment: string;
    min: string;
    max: string;
    cache: string;
    cycle: boolean;
    ownedBy: string | null;
    identity: boolean;
  }[];
}

/** What stands for the schema's own name inside texts that name it (pg_get_indexdef always does). */
export const SCHEMA_PLACEHOLDER = '<schema>';

/**
 * Describes `schema` from the catalog, for a round-trip test to compare a restored schema with its
 * source.
 *
 * Runs under `search_path` = `searchPath` (the schema alone unless told), set for its own
 * transaction only: every text the catalog functions print (format_type, pg_get_expr,
 * pg_get_constraintdef) then names the schema's own objects unqualified, and objects of other
 * schemas by their real name, which is the same on both sides once a restore has renamed its
 * staging schemas. pg_get_indexdef qualifies the indexed table whatever the path (checked on PG15),
 * so the schema's own name there is replaced with SCHEMA_PLACEHOLDER.
 */
export async function describeSchema(sql: Sql, schema: string, searchPath: string[] = [schema]): Promise<SchemaCatalog> {
  return (await sql.begin(async (tx) => describeInTransaction(tx, schema, searchPath))) as SchemaCatalog;
}

async function describeInTransaction(tx: TransactionSql, schema: string, searchPath: string[]): Promise<SchemaCatalog> {
  const path = searchPath.map((name) => `"${name.replaceAll('"', '""')}"`).join(', ');
  await tx`SELECT set_config('search_path', ${path}, true)`;

  const types = await tx<SchemaCatalog['types']>`
    SELECT t.typname AS name,
           CASE t.typtype WHEN 'e' THEN 'enum' WHEN 'd' THEN 'domain' ELSE 'composite' END AS kind,
           COALESCE((SELECT array_agg(e.enumlabel ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid), '{}') AS labels,
           CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) END AS "baseType",
           t.typnotnull AS "notNull",
           t.typdefault AS "defaultExpression",
           (SELECT co.collname FROM pg_collation co WHERE co.oid = t.typcollation AND t.typtype = 'd'
              AND t.typcollation <> (SELECT b.typcollation FROM pg_type b WHERE b.oid = t.typbasetype)) AS collation,
           COALESCE((SELECT json_agg(json_build_object('name', k.conname, 'definition', pg_get_constraintdef(k.oid)) ORDER BY k.conname COLLATE "C")
                     FROM pg_constraint k WHERE k.contypid = t.oid), '[]') AS checks,
           COALESCE((SELECT json_agg(json_build_object('name', a.attname, 'type', format_type(a.atttypid, a.atttypmod),
                       'collation', (SELECT co.collname FROM pg_collation co JOIN pg_type at ON at.oid = a.atttypid
                                     WHERE co.oid = a.attcollation AND a.attcollation <> at.typcollation)) ORDER BY a.attnum)
                     FROM pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped), '[]') AS attributes
    FROM pg_type t
    JOIN pg_namespace n ON n.oid = t.typnamespace
    WHERE n.nspname = ${schema}
      AND (t.typtype IN ('e', 'd') OR (t.typtype = 'c' AND (SELECT c.relkind FROM pg_class c WHERE c.oid = t.typrelid) = 'c'))
    ORDER BY t.typname COLLATE "C"
  `;

  const tables = await tx<SchemaCatalog['tables']>`
    SELECT c.relname AS name,
           CASE c.relkind WHEN 'p' THEN 'partitioned table' ELSE 'table' END AS kind,
           CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END AS "partitionKey",
           (SELECT json_build_object('table', pc.relname, 'bound', pg_get_expr(c.relpartbound, c.oid))
            FROM pg_inherits h JOIN pg_class pc ON pc.oid = h.inhparent
            WHERE h.inhrelid = c.oid AND c.relispartition) AS "partitionOf",
           COALESCE((SELECT json_agg(json_build_object(
                       'name', a.attname,
                       'type', format_type(a.atttypid, a.atttypmod),
                       'notNull', a.attnotnull,
                       'defaultExpression', CASE WHEN a.attgenerated = '' THEN pg_get_expr(d.adbin, d.adrelid) END,
                       'generated', CASE WHEN a.attgenerated <> '' THEN pg_get_expr(d.adbin, d.adrelid) END,
                       'identity', CASE a.attidentity WHEN 'a' THEN 'always' WHEN 'd' THEN 'by default' END,
                       'collation', (SELECT co.collname FROM pg_collation co JOIN pg_type at ON at.oid = a.atttypid
                                     WHERE co.oid = a.attcollation AND a.attcollation <> at.typcollation)) ORDER BY a.attnum)
                     FROM pg_attribute a
                     LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                     WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '[]') AS columns,
           COALESCE((SELECT json_agg(json_build_object(
                       'name', k.conname, 'type', k.contype, 'definition', pg_get_constraintdef(k.oid),
                       'local', k.conislocal, 'inherited', k.coninhcount, 'validated', k.convalidated,
                       'deferrable', k.condeferrable, 'deferred', k.condeferred) ORDER BY k.conname COLLATE "C")
                     FROM pg_constraint k WHERE k.conrelid = c.oid), '[]') AS constraints,
           COALESCE((SELECT json_agg(json_build_object(
                       'name', ic.relname,
                       'definition', replace(pg_get_indexdef(i.indexrelid), ' ' || quote_ident(n.nspname) || '.', ' ' || ${SCHEMA_PLACEHOLDER} || '.'),
                       'constraint', (SELECT k.conname FROM pg_constraint k WHERE k.conindid = i.indexrelid AND k.conrelid = c.oid AND k.contype IN ('p', 'u', 'x')),
                       'partitionOf', (SELECT pi.relname FROM pg_inherits h JOIN pg_class pi ON pi.oid = h.inhparent WHERE h.inhrelid = i.indexrelid),
                       'valid', i.indisvalid) ORDER BY ic.relname COLLATE "C")
                     FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
                     WHERE i.indrelid = c.oid), '[]') AS indexes
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = ${schema} AND c.relkind IN ('r', 'p')
    ORDER BY c.relname COLLATE "C"
  `;

  const sequences = await tx<SchemaCatalog['sequences']>`
    SELECT c.relname AS name,
           format_type(s.seqtypid, NULL) AS "dataType",
           s.seqstart::text AS start, s.seqincrement::text AS increment, s.seqmin::text AS min, s.seqmax::text AS max,
           s.seqcache::text AS cache, s.seqcycle AS cycle,
           (SELECT quote_ident(tc.relname) || '.' || quote_ident(a.attname)
            FROM pg_depend d JOIN pg_class tc ON tc.oid = d.refobjid
            JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
            WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.refclassid = 'pg_class'::regclass
              AND d.deptype IN ('a', 'i')) AS "ownedBy",
           EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'i') AS identity
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_sequence s ON s.seqrelid = c.oid
    WHERE n.nspname = ${schema} AND c.relkind = 'S'
    ORDER BY c.relname COLLATE "C"
  `;

  return { types: [...types], tables: [...tables], sequences: [...sequences] };
}
