// ISql: a reserved connection or a transaction (the export's snapshot-imported one).
import type { ISql } from 'postgres';
import { quoteIdentifier } from '../export/quote-identifier';
import { DEFINITION_FORMAT } from './schema-definition';
import type {
  ColumnDefinition,
  ExtensionUse,
  ForeignKeyDefinition,
  SchemaDefinition,
  SequenceDefinition,
  TableDefinition,
  TypeDefinition,
} from './schema-definition';

/** The export's role may not read where a sequence of the schema stands (SELECT on it): the definition is then unavailable. */
export class UnreadableSequencesError extends Error {
  override readonly name = 'UnreadableSequencesError';
}

/** The schema holds something a definition cannot carry yet; exporting it as if whole would lose it. */
export class UnsupportedDefinitionError extends Error {
  override readonly name = 'UnsupportedDefinitionError';
}

/**
 * Reads `schema`'s definition from the catalog, in the caller's transaction (so at the moment of
 * its snapshot). Sets `search_path` to `searchPath` for the texts the catalog prints (see
 * schema-definition.ts), and the date and number styles, locally to the transaction, and puts
 * the previous values back before it returns. Every name is a bound parameter, except the sequences' own names in the one statement
 * that reads their position (a relation cannot be a parameter), quoted there.
 */
export async function readSchemaDefinition(sql: ISql, schema: string, searchPath: string[]): Promise<SchemaDefinition> {
  if (searchPath[0] !== schema) throw new Error(`The definition's search path must start with its schema ${quoteIdentifier(schema)}`);
  const [{ version }] = (await sql<{ version: string }[]>`SELECT current_setting('server_version_num') AS version`) as unknown as [{ version: string }];
  // Constants inside the texts (defaults, checks, index predicates) are printed in these styles:
  // the ones pg_dump uses, which any server reads back the same whatever its own settings.
  const settings: [string, string][] = [
    ['search_path', searchPath.map(quoteIdentifier).join(', ')],
    ['DateStyle', 'ISO, YMD'],
    ['IntervalStyle', 'postgres'],
    ['extra_float_digits', '3'],
  ];
  const previous: [string, string][] = [];
  for (const [name, value] of settings) {
    const [row] = await sql<{ before: string }[]>`SELECT current_setting(${name}) AS before, set_config(${name}, ${value}, true)`;
    previous.push([name, row!.before]);
  }
  const uncarried = await whatCannotBeCarried(sql, schema);
  const definition: SchemaDefinition = { format: DEFINITION_FORMAT, schema, serverVersionNum: Number(version), searchPath: [...searchPath], extensions: [], types: [], sequences: [], tables: [] };
  if (uncarried.length > 0) {
    definition.unavailable = `Schema ${quoteIdentifier(schema)} holds what its definition cannot carry: ${uncarried.join('; ')}`;
  } else {
    try {
      // First: it refuses (before any statement could fail) a sequence the role may not read.
      definition.sequences = await readSequences(sql, schema);
      definition.types = await readTypes(sql, schema);
      definition.tables = await readTables(sql, schema);
      definition.extensions = await readExtensionUses(sql, schema);
    } catch (error) {
      if (!(error instanceof UnreadableSequencesError)) throw error;
      // The rows can still be read: only the definition is lost, and it says why.
      definition.unavailable = error.message;
    }
  }
  // Only on success: after a failure the transaction is aborted (a statement there would replace
  // the cause with 25P02), and its rollback undoes the local settings anyway.
  for (const [name, value] of previous) await sql`SELECT set_config(${name}, ${value}, true)`;
  return definition;
}

/**
 * Types, relations and inheritance the contract has no place for: better a definition that says
 * it is missing, and why, than a restore that silently lacks them. Empty when there are none.
 */
async function whatCannotBeCarried(sql: ISql, schema: string): Promise<string[]> {
  const rows = await sql<{ what: string }[]>`
    SELECT format('type %s (typtype %s)', quote_ident(t.typname), t.typtype) AS what
    FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
    WHERE n.nspname = ${schema} AND t.typtype IN ('b', 'r', 'm', 'p') AND NOT (t.typelem <> 0 AND t.typlen = -1)
    UNION ALL
    SELECT format('table %s inherits from %s (not as a partition)', quote_ident(c.relname), h.inhparent::regclass)
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_inherits h ON h.inhrelid = c.oid
    WHERE n.nspname = ${schema} AND c.relkind IN ('r', 'p') AND NOT c.relispartition
    UNION ALL
    SELECT format('partition %s of %s, a table of another schema', quote_ident(c.relname), h.inhparent::regclass)
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_inherits h ON h.inhrelid = c.oid
    JOIN pg_class p ON p.oid = h.inhparent
    WHERE n.nspname = ${schema} AND c.relispartition AND p.relnamespace <> n.oid
  `;
  return rows.map((row) => row.what);
}

interface TypeRow {
  oid: number;
  name: string;
  typtype: 'e' | 'd' | 'c';
  labels: string[];
  baseType: string | null;
  notNull: boolean;
  defaultExpression: string | null;
  collation: string | null;
  checks: { name: string; definition: string }[];
  attributes: { name: string; type: string; collation: string | null }[];
  /** OIDs of this schema's types it is built on (a domain's base, a composite's attributes, arrays' elements). */
  uses: number[];
}

/**
 * A collation as SQL text when it is not the type's own: by name when the path finds it (pg_catalog
 * is always on it), else qualified.
 */
const collationText = (collation: string, type: string) => `
  (SELECT CASE WHEN pg_collation_is_visible(co.oid) THEN quote_ident(co.collname)
               ELSE quote_ident(cn.nspname) || '.' || quote_ident(co.collname) END
   FROM pg_collation co JOIN pg_namespace cn ON cn.oid = co.collnamespace JOIN pg_type ct ON ct.oid = ${type}
   WHERE co.oid = ${collation} AND ${collation} <> ct.typcollation)`;

/** A type, or the element type of an array: what a use of it depends on. */
const elementOf = (type: string) => `(SELECT CASE WHEN et.typelem <> 0 AND et.typlen = -1 THEN et.typelem ELSE et.oid END FROM pg_type et WHERE et.oid = ${type})`;

async function readTypes(sql: ISql, schema: string): Promise<TypeDefinition[]> {
  const rows = await sql.unsafe<TypeRow[]>(
    `
    SELECT t.oid::int AS oid, t.typname AS name, t.typtype,
           COALESCE((SELECT array_agg(e.enumlabel ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid), '{}') AS labels,
           CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) END AS "baseType",
           t.typnotnull AS "notNull",
           CASE WHEN t.typtype = 'd' THEN pg_get_expr(t.typdefaultbin, 0) END AS "defaultExpression",
           CASE WHEN t.typtype = 'd' THEN ${collationText('t.typcollation', 't.typbasetype')} END AS collation,
           COALESCE((SELECT json_agg(json_build_object('name', k.conname, 'definition', pg_get_constraintdef(k.oid)) ORDER BY k.conname COLLATE "C")
                     FROM pg_constraint k WHERE k.contypid = t.oid AND k.contype = 'c'), '[]') AS checks,
           COALESCE((SELECT json_agg(json_build_object('name', a.attname, 'type', format_type(a.atttypid, a.atttypmod),
                                                       'collation', ${collationText('a.attcollation', 'a.atttypid')}) ORDER BY a.attnum)
                     FROM pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped), '[]') AS attributes,
           ARRAY(SELECT DISTINCT u.oid::int FROM pg_type u
                 WHERE u.typnamespace = t.typnamespace AND u.oid <> t.oid
                   AND (u.oid = ${elementOf('t.typbasetype')}
                        OR u.oid IN (SELECT ${elementOf('a.atttypid')} FROM pg_attribute a
                                     WHERE a.attrelid = t.typrelid AND t.typrelid <> 0 AND a.attnum > 0 AND NOT a.attisdropped))) AS uses
    FROM pg_type t
    JOIN pg_namespace n ON n.oid = t.typnamespace
    WHERE n.nspname = $1
      AND (t.typtype IN ('e', 'd') OR (t.typtype = 'c' AND (SELECT c.relkind FROM pg_class c WHERE c.oid = t.typrelid) = 'c'))
    ORDER BY t.typname COLLATE "C"
    `,
    [schema],
  );
  return inDependencyOrder(rows).map((row): TypeDefinition => {
    if (row.typtype === 'e') return { kind: 'enum', name: row.name, labels: row.labels };
    if (row.typtype === 'c') return { kind: 'composite', name: row.name, attributes: row.attributes };
    return {
      kind: 'domain',
      name: row.name,
      baseType: row.baseType!,
      notNull: row.notNull,
      defaultExpression: row.defaultExpression,
      collation: row.collation,
      checks: row.checks,
    };
  });
}

/** Name order, except that each type comes after the types of the schema it is built on. */
function inDependencyOrder(rows: TypeRow[]): TypeRow[] {
  const byOid = new Map(rows.map((row) => [row.oid, row]));
  const placed = new Set<number>();
  const ordered: TypeRow[] = [];
  const place = (row: TypeRow, visiting: Set<number>) => {
    if (placed.has(row.oid)) return;
    if (visiting.has(row.oid)) throw new UnsupportedDefinitionError(`Type ${quoteIdentifier(row.name)} is built on itself`);
    visiting.add(row.oid);
    for (const oid of row.uses) {
      const used = byOid.get(oid);
      if (used) place(used, visiting);
    }
    placed.add(row.oid);
    ordered.push(row);
  };
  for (const row of rows) place(row, new Set());
  return ordered;
}

/**
 * The schema's sequences with their options and where each stands. Sequences are not
 * transactional: the position read here is the one now, not the snapshot's, but a sequence never
 * goes back, so it is never behind any row the snapshot shows (at worst a few values ahead, which
 * a restore may skip). That is what a restore needs: no restored row's key is handed out again.
 */
async function readSequences(sql: ISql, schema: string): Promise<SequenceDefinition[]> {
  const rows = await sql<(Omit<SequenceDefinition, 'lastValue' | 'isCalled'> & { ownerSchema: string | null; readable: boolean; role: string })[]>`
    SELECT c.relname AS name,
           format_type(s.seqtypid, NULL) AS "dataType",
           s.seqstart::text AS start, s.seqincrement::text AS increment, s.seqmin::text AS min, s.seqmax::text AS max,
           s.seqcache::text AS cache, s.seqcycle AS cycle,
           owner.schema AS "ownerSchema",
           CASE WHEN owner.table IS NOT NULL THEN json_build_object('table', owner.table, 'column', owner.column) END AS "ownedBy",
           COALESCE(owner.deptype = 'i', false) AS identity,
           has_sequence_privilege(c.oid, 'SELECT') AS readable,
           current_user AS role
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_sequence s ON s.seqrelid = c.oid
    LEFT JOIN LATERAL (
      SELECT tn.nspname AS schema, tc.relname AS table, a.attname AS column, d.deptype
      FROM pg_depend d
      JOIN pg_class tc ON tc.oid = d.refobjid
      JOIN pg_namespace tn ON tn.oid = tc.relnamespace
      JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
      WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
    ) owner ON true
    WHERE n.nspname = ${schema} AND c.relkind = 'S'
    ORDER BY c.relname COLLATE "C"
  `;
  const unreadable = rows.filter((row) => !row.readable).map((row) => `${quoteIdentifier(schema)}.${quoteIdentifier(row.name)}`);
  if (unreadable.length > 0) {
    throw new UnreadableSequencesError(
      `The export's database role ${quoteIdentifier(rows[0]!.role)} cannot read ${unreadable.length === 1 ? 'sequence' : 'sequences'} ${unreadable.join(', ')}: ` +
        `grant it SELECT on ${unreadable.length === 1 ? 'it' : 'them'}, so that the definition carries where each sequence stands and a restore goes on from there`,
    );
  }
  const sequences: SequenceDefinition[] = [];
  for (const { ownerSchema, readable: _readable, role: _role, ...row } of rows) {
    // Spliced, quoted: a relation cannot be a bound parameter.
    const [position] = await sql.unsafe<{ lastValue: string; isCalled: boolean }[]>(
      `SELECT last_value::text AS "lastValue", is_called AS "isCalled" FROM ${quoteIdentifier(schema)}.${quoteIdentifier(row.name)}`,
    );
    // OWNED BY a column of another schema: the contract names columns of this schema only.
    const ownedBy = ownerSchema === schema ? row.ownedBy : null;
    sequences.push({ ...row, ownedBy, lastValue: position!.lastValue, isCalled: position!.isCalled });
  }
  return sequences;
}

interface TableRow {
  name: string;
  partitionKey: string | null;
  partitionOf: { table: string; bound: string } | null;
  columns: ColumnDefinition[];
  constraints: TableDefinition['constraints'];
  indexes: { name: string; unique: boolean; definition: string; prefix: string }[];
  foreignKeys: (Omit<ForeignKeyDefinition, 'options' | 'notValid'> & { definition: string; head: string; validated: boolean })[];
}

async function readTables(sql: ISql, schema: string): Promise<TableDefinition[]> {
  const rows = await sql.unsafe<TableRow[]>(
    `
    SELECT c.relname AS name,
           CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END AS "partitionKey",
           (SELECT json_build_object('table', pc.relname, 'bound', pg_get_expr(c.relpartbound, c.oid))
            FROM pg_inherits h JOIN pg_class pc ON pc.oid = h.inhparent
            WHERE h.inhrelid = c.oid AND c.relispartition) AS "partitionOf",
           COALESCE((SELECT json_agg(json_build_object(
                       'name', a.attname,
                       'type', format_type(a.atttypid, a.atttypmod),
                       'notNull', a.attnotnull,
                       'defaultExpression', CASE WHEN a.attgenerated = '' THEN pg_get_expr(d.adbin, d.adrelid) END,
                       'generatedExpression', CASE WHEN a.attgenerated <> '' THEN pg_get_expr(d.adbin, d.adrelid) END,
                       'identity', CASE WHEN a.attidentity <> '' THEN json_build_object(
                                     'generation', CASE a.attidentity WHEN 'a' THEN 'always' ELSE 'by default' END,
                                     'sequence', (SELECT sc.relname FROM pg_depend dep JOIN pg_class sc ON sc.oid = dep.objid
                                                  WHERE dep.classid = 'pg_class'::regclass AND dep.refclassid = 'pg_class'::regclass
                                                    AND dep.refobjid = c.oid AND dep.refobjsubid = a.attnum AND dep.deptype = 'i'
                                                    AND sc.relkind = 'S')) END,
                       'collation', ${collationText('a.attcollation', 'a.atttypid')}) ORDER BY a.attnum)
                     FROM pg_attribute a
                     LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                     WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '[]') AS columns,
           -- A partition's copies of its parent's constraints come back when the parent's are built.
           COALESCE((SELECT json_agg(json_build_object(
                       'name', k.conname,
                       'kind', CASE k.contype WHEN 'p' THEN 'primary key' WHEN 'u' THEN 'unique' WHEN 'c' THEN 'check' ELSE 'exclusion' END,
                       'definition', pg_get_constraintdef(k.oid)) ORDER BY k.conname COLLATE "C")
                     FROM pg_constraint k
                     WHERE k.conrelid = c.oid AND k.contype IN ('p', 'u', 'c', 'x') AND k.conislocal AND k.conparentid = 0), '[]') AS constraints,
           -- Nor a constraint's own index, nor a partition's copy of its parent's index.
           COALESCE((SELECT json_agg(json_build_object(
                       'name', ic.relname,
                       'unique', i.indisunique,
                       'definition', pg_get_indexdef(i.indexrelid),
                       'prefix', 'CREATE ' || CASE WHEN i.indisunique THEN 'UNIQUE ' ELSE '' END || 'INDEX ' || quote_ident(ic.relname)
                                 || ' ON ' || CASE WHEN c.relkind = 'p' THEN 'ONLY ' ELSE '' END
                                 || quote_ident(n.nspname) || '.' || quote_ident(c.relname) || ' ') ORDER BY ic.relname COLLATE "C")
                     FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
                     WHERE i.indrelid = c.oid
                       AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid AND k.conrelid = c.oid AND k.contype IN ('p', 'u', 'x'))
                       AND NOT EXISTS (SELECT 1 FROM pg_inherits h WHERE h.inhrelid = i.indexrelid)), '[]') AS indexes,
           COALESCE((SELECT json_agg(json_build_object(
                       'name', k.conname,
                       'columns', (SELECT json_agg(a.attname ORDER BY u.ord) FROM unnest(k.conkey) WITH ORDINALITY u(attnum, ord)
                                   JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.attnum),
                       'references', json_build_object(
                         'schema', rn.nspname, 'table', rc.relname,
                         'columns', (SELECT json_agg(a.attname ORDER BY u.ord) FROM unnest(k.confkey) WITH ORDINALITY u(attnum, ord)
                                     JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.attnum)),
                       'definition', pg_get_constraintdef(k.oid),
                       'head', 'FOREIGN KEY ('
                               || (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY u.ord) FROM unnest(k.conkey) WITH ORDINALITY u(attnum, ord)
                                   JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.attnum)
                               || ') REFERENCES '
                               || CASE WHEN pg_table_is_visible(rc.oid) THEN quote_ident(rc.relname) ELSE quote_ident(rn.nspname) || '.' || quote_ident(rc.relname) END
                               || '('
                               || (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY u.ord) FROM unnest(k.confkey) WITH ORDINALITY u(attnum, ord)
                                   JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.attnum)
                               || ')',
                       'validated', k.convalidated) ORDER BY k.conname COLLATE "C")
                     FROM pg_constraint k
                     JOIN pg_class rc ON rc.oid = k.confrelid
                     JOIN pg_namespace rn ON rn.oid = rc.relnamespace
                     WHERE k.conrelid = c.oid AND k.contype = 'f' AND k.conislocal AND k.conparentid = 0), '[]') AS "foreignKeys"
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')
    ORDER BY c.relname COLLATE "C"
    `,
    [schema],
  );
  const tables = rows.map((row): TableDefinition => ({
    name: row.name,
    partitionKey: row.partitionKey,
    partitionOf: row.partitionOf,
    columns: row.columns,
    // What COPY without a column list writes: every column but the generated ones.
    csvColumns: row.partitionKey === null ? row.columns.filter((column) => column.generatedExpression === null).map((column) => column.name) : [],
    constraints: row.constraints,
    indexes: row.indexes.map((index) => ({ name: index.name, unique: index.unique, afterTable: textAfter(index.definition, index.prefix, `index ${index.name}`) })),
    foreignKeys: row.foreignKeys.map(({ definition, head, validated, ...key }) => {
      let options = textAfter(definition, head, `foreign key ${key.name}`).trim();
      if (!validated) {
        if (!options.endsWith('NOT VALID')) throw new Error(`Foreign key ${quoteIdentifier(key.name)} is not valid yet its definition does not say so: ${definition}`);
        options = options.slice(0, -'NOT VALID'.length).trim();
      }
      return { ...key, options, notValid: !validated };
    }),
  }));
  return parentsBeforePartitions(tables);
}

/** The text after `prefix`, which the catalog must have printed first: else the server prints differently from what this was written against. */
function textAfter(text: string, prefix: string, what: string): string {
  if (!text.startsWith(prefix)) throw new Error(`The catalog printed ${what} as ${JSON.stringify(text)}, expected it to start with ${JSON.stringify(prefix)}`);
  return text.slice(prefix.length);
}

/** Name order, except that a partition waits until its parent is placed. */
function parentsBeforePartitions(tables: TableDefinition[]): TableDefinition[] {
  const names = new Set(tables.map((table) => table.name));
  const ordered: TableDefinition[] = [];
  const waiting = new Map<string, TableDefinition[]>();
  const place = (table: TableDefinition) => {
    ordered.push(table);
    for (const partition of waiting.get(table.name) ?? []) place(partition);
    waiting.delete(table.name);
  };
  for (const table of tables) {
    const parent = table.partitionOf?.table;
    if (parent !== undefined && names.has(parent) && !ordered.some((t) => t.name === parent)) {
      waiting.set(parent, [...(waiting.get(parent) ?? []), table]);
    } else {
      place(table);
    }
  }
  return ordered;
}

/** Every use, by a column, domain or composite attribute of this schema, of a type an extension owns (directly, as an array's element, or as a domain's base). */
async function readExtensionUses(sql: ISql, schema: string): Promise<ExtensionUse[]> {
  const rows = await sql.unsafe<{ extension: string; extensionSchema: string; usedBy: string }[]>(
    `
    WITH uses AS (
      SELECT format('column %s of table %s', quote_ident(a.attname), quote_ident(c.relname)) AS used_by, a.atttypid AS type
      FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
      UNION ALL
      SELECT format('attribute %s of type %s', quote_ident(a.attname), quote_ident(t.typname)), a.atttypid
      FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace JOIN pg_class c ON c.oid = t.typrelid AND c.relkind = 'c'
      JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
      WHERE n.nspname = $1
      UNION ALL
      SELECT format('domain %s', quote_ident(t.typname)), t.typbasetype
      FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
      WHERE n.nspname = $1 AND t.typtype = 'd'
    ), resolved AS (
      SELECT used_by, ${elementOf('type')} AS type FROM uses
    )
    SELECT e.extname AS extension, en.nspname AS "extensionSchema",
           r.used_by || ' (' || format_type(r.type, NULL) || ')' AS "usedBy"
    FROM resolved r
    JOIN pg_depend d ON d.classid = 'pg_type'::regclass AND d.objid = r.type AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
    JOIN pg_extension e ON e.oid = d.refobjid
    JOIN pg_namespace en ON en.oid = e.extnamespace
    ORDER BY e.extname COLLATE "C", r.used_by COLLATE "C"
    `,
    [schema],
  );
  const uses = new Map<string, ExtensionUse>();
  for (const row of rows) {
    const use = uses.get(row.extension) ?? { name: row.extension, schema: row.extensionSchema, usedBy: [] };
    use.usedBy.push(row.usedBy);
    uses.set(row.extension, use);
  }
  return [...uses.values()];
}
