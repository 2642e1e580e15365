/**
 * What an export tarball carries to rebuild its schema: `<schema>/definition.json`, the tarball's
 * first entry, read from the catalog in the run's snapshot (the same moment as the rows). The
 * restore reads it; `<schema>/schema.sql` (renderSchemaSql) is the same definition for people and
 * psql.
 *
 * Every SQL text here was printed by the catalog's functions (format_type, pg_get_expr,
 * pg_get_indexdef, pg_get_constraintdef) with `search_path` set to `searchPath`, so objects of the
 * exported schemas are named without their schema and bind, when the text is run, to whatever
 * schemas that path names then: the restore runs it with the path of its staging schemas, in the
 * same order (see `searchPath`). Only foreign keys and owned sequences name another object by
 * schema, and they carry that schema as data (never inside SQL text), so the restore can point
 * them at the schema being built.
 *
 * Changed from the first draft where the catalog forced it: an index keeps `unique` and the text
 * after its table (`afterTable`) instead of pg_get_indexdef's whole text, which always qualifies
 * the table.
 */

/** The format of definition.json; a restore refuses a format it does not know. */
export const DEFINITION_FORMAT = 1;

export interface SchemaDefinition {
  format: typeof DEFINITION_FORMAT;
  /** The schema as named in the source database. */
  schema: string;
  /** The server that printed it, `SHOW server_version_num` (e.g. 160004): the oldest target that reads every text. */
  serverVersionNum: number;
  /**
   * The path the SQL texts were printed under: this schema first, then the run's other exported
   * schemas in their configured order. A restore sets the same path, each schema replaced by the
   * name it is being built under (or left as it is when that schema is not part of the restore).
   */
  searchPath: string[];
  /** Extensions whose types or functions the schema's objects use: the target must have them. */
  extensions: ExtensionUse[];
  /** Types the schema defines, in an order that creates each before what uses it. */
  types: TypeDefinition[];
  sequences: SequenceDefinition[];
  /** In the tarball's order (name, byte-wise), partitioned parents before their partitions. */
  tables: TableDefinition[];
  /**
   * Set when the schema holds what a definition has no place for (a base or range type, plain
   * inheritance, a partition of another schema's table), or a sequence the export's role may not
   * read: why. The export still carries every
   * table's rows (the CSVs are the job; the definition is what a restore adds), and every list
   * above is empty; a restore refuses the tarball, saying this.
   */
  unavailable?: string;
}

export interface ExtensionUse {
  name: string;
  /** The schema the extension was installed in, in the source. */
  schema: string;
  /** What in this schema needs it, e.g. `column "Email" of table "people" (citext)`. */
  usedBy: string[];
}

export type TypeDefinition =
  | { kind: 'enum'; name: string; labels: string[] }
  /** `baseType`, `defaultExpression` and each check are SQL text printed under `searchPath`. */
  | { kind: 'domain'; name: string; baseType: string; notNull: boolean; defaultExpression: string | null; collation: string | null; checks: { name: string; definition: string }[] }
  | { kind: 'composite'; name: string; attributes: { name: string; type: string; collation: string | null }[] };

export interface SequenceDefinition {
  name: string;
  /** `bigint`, `integer` or `smallint`. */
  dataType: string;
  start: string;
  increment: string;
  min: string;
  max: string;
  cache: string;
  cycle: boolean;
  /** Where it stands at the snapshot: setval(seq, lastValue, isCalled) puts a restored one there. */
  lastValue: string;
  isCalled: boolean;
  /** OWNED BY: the column of this schema whose serial or identity it is. */
  ownedBy: { table: string; column: string } | null;
  /** An identity column's sequence is created with its column (GENERATED ... AS IDENTITY), not on its own. */
  identity: boolean;
}

export interface ColumnDefinition {
  name: string;
  /** format_type(atttypid, atttypmod), e.g. `character varying(20)`, `licence_status[]`. */
  type: string;
  notNull: boolean;
  /** pg_get_expr of the default; null if none, or for a generated or identity column. */
  defaultExpression: string | null;
  /** `GENERATED ALWAYS AS (<this>) STORED`: the CSV leaves the column out and the restore rebuilds it. */
  generatedExpression: string | null;
  /** GENERATED ALWAYS / BY DEFAULT AS IDENTITY, with its sequence's options; null if not identity. */
  identity: { generation: 'always' | 'by default'; sequence: string } | null;
  /** A collation other than the type's default, as SQL text (e.g. `"C"`); null if the default. */
  collation: string | null;
}

export interface TableDefinition {
  name: string;
  /** `PARTITION BY ...` of a partitioned parent (pg_get_partkeydef); null for an ordinary table. */
  partitionKey: string | null;
  /** A partition: its parent (of this schema) and bound (pg_get_expr of relpartbound). */
  partitionOf: { table: string; bound: string } | null;
  columns: ColumnDefinition[];
  /**
   * The CSV's columns in the CSV's order: what `COPY ... FROM STDIN (FORMAT csv, HEADER)` loads
   * (all but generated ones). Empty for a partitioned parent: its rows are its partitions'.
   */
  csvColumns: string[];
  /**
   * Primary key, unique, check and exclusion constraints, as pg_get_constraintdef prints them;
   * built after the data. Check constraints that are NOT VALID in the source stay so.
   */
  constraints: { name: string; kind: 'primary key' | 'unique' | 'check' | 'exclusion'; definition: string }[];
  /**
   * Indexes that are not a constraint's own nor a partition's copy of its parent's index; built
   * after the data. Not pg_get_indexdef's whole text: it names the table schema-qualified whatever
   * the path (and a partitioned parent's as `ON ONLY`, which would not build the partitions'), so
   * only what it prints after the table is kept (`USING btree (lower(ref)) WHERE ...`, under
   * `searchPath` like every text), and the statement is rebuilt on the table being built.
   */
  indexes: { name: string; unique: boolean; afterTable: string }[];
  /** Built last, once every schema of the restore has its keys. */
  foreignKeys: ForeignKeyDefinition[];
}

export interface ForeignKeyDefinition {
  name: string;
  columns: string[];
  references: { schema: string; table: string; columns: string[] };
  /** The rest of pg_get_constraintdef after the referenced columns: MATCH, ON UPDATE/DELETE, DEFERRABLE... */
  options: string;
  /** NOT VALID in the source. */
  notValid: boolean;
}

/**
 * A source schema name → the name it is built under now (the restore's staging schemas). A schema
 * not in the map is referred to by its own name (it must exist in the target).
 */
export type SchemaNames = ReadonlyMap<string, string>;
