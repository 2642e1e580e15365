import { quoteIdentifier } from '../export/quote-identifier';
import type { ColumnDefinition, SchemaDefinition, SchemaNames, SequenceDefinition, TableDefinition } from './schema-definition';

/**
 * The statements that rebuild schemas from their definitions, as text. Pure: nothing here talks to
 * a database. Every object is created qualified with the name its schema is built under
 * (`names`), and every text the catalog printed runs under searchPathStatement, so what it names
 * unqualified binds to the schemas being built.
 */

/** One unit of post-data work: its statements run in order on one connection, apart from other units. */
export interface PostDataUnit {
  /** The source schema. */
  schema: string;
  /** The table (a partitioned family's root, its partitions' work included), or a domain. */
  table: string;
  /** 'domain': a domain's NOT VALID checks, which must wait until the rows are in. */
  kind: 'table' | 'domain';
  statements: string[];
}

/** A string as an SQL literal (standard_conforming_strings on, as it is by default since 9.1). */
export function quoteLiteral(text: string): string {
  if (text.includes('\0')) throw new Error('An SQL literal cannot contain a NUL character');
  return `'${text.replaceAll("'", "''")}'`;
}

const builtName = (schema: string, names: SchemaNames) => names.get(schema) ?? schema;

/** `"schema"."name"`, the schema mapped through `names`. */
/** `schema.name` quoted, the schema replaced by the name it is built under. */
export function qualified(schema: string, name: string, names: SchemaNames): string {
  return `${quoteIdentifier(builtName(schema, names))}.${quoteIdentifier(name)}`;
}

/** The path the definition's texts were printed under, each schema replaced by the name it is built under. */
export function searchPathStatement(definition: SchemaDefinition, names: SchemaNames): string {
  return `SET search_path = ${definition.searchPath.map((schema) => quoteIdentifier(builtName(schema, names))).join(', ')}`;
}

/**
 * Everything before the rows, to run in order on one connection: every schema's types, then
 * sequences, then tables (a partition created as a table of its own, with its own columns, then
 * attached, as pg_dump does: its column order may differ from its parent's), then OWNED BY. No
 * keys, checks or indexes: they are built once the rows are in (postDataWork).
 */
export function preDataStatements(definitions: SchemaDefinition[], names: SchemaNames): string[] {
  const statements: string[] = [];
  let pathOf: SchemaDefinition | undefined;
  const inSchema = (definition: SchemaDefinition, ...add: string[]) => {
    if (add.length === 0) return;
    if (pathOf !== definition) statements.push(searchPathStatement(definition, names));
    pathOf = definition;
    statements.push(...add);
  };

  for (const definition of definitions) {
    for (const type of definition.types) {
      const name = qualified(definition.schema, type.name, names);
      if (type.kind === 'enum') {
        inSchema(definition, `CREATE TYPE ${name} AS ENUM (${type.labels.map(quoteLiteral).join(', ')})`);
      } else if (type.kind === 'composite') {
        const attributes = type.attributes.map((a) => `${quoteIdentifier(a.name)} ${a.type}${a.collation ? ` COLLATE ${a.collation}` : ''}`);
        inSchema(definition, `CREATE TYPE ${name} AS (${attributes.join(', ')})`);
      } else {
        // CREATE DOMAIN cannot take a NOT VALID check: those are added after the rows (postDataWork).
        const checks = type.checks.filter((check) => !isNotValid(check.definition));
        inSchema(
          definition,
          [
            `CREATE DOMAIN ${name} AS ${type.baseType}`,
            type.collation ? ` COLLATE ${type.collation}` : '',
            type.defaultExpression !== null ? ` DEFAULT ${type.defaultExpression}` : '',
            type.notNull ? ' NOT NULL' : '',
            ...checks.map((check) => ` CONSTRAINT ${quoteIdentifier(check.name)} ${check.definition}`),
          ].join(''),
        );
      }
    }
  }

  for (const definition of definitions) {
    for (const sequence of definition.sequences) {
      if (sequence.identity) continue; // created with its column
      inSchema(definition, `CREATE SEQUENCE ${qualified(definition.schema, sequence.name, names)} AS ${sequence.dataType} ${sequenceOptions(sequence)}`);
    }
  }

  for (const definition of definitions) {
    const sequences = new Map(definition.sequences.map((sequence) => [sequence.name, sequence]));
    for (const table of definition.tables) {
      const name = qualified(definition.schema, table.name, names);
      const columns = table.columns.map((column) => columnDefinition(column, definition.schema, sequences, names));
      const create = `CREATE TABLE ${name} (${columns.join(', ')})${table.partitionKey !== null ? ` PARTITION BY ${table.partitionKey}` : ''}`;
      const attach = table.partitionOf
        ? [`ALTER TABLE ${qualified(definition.schema, table.partitionOf.table, names)} ATTACH PARTITION ${name} ${table.partitionOf.bound}`]
        : [];
      inSchema(definition, create, ...attach);
    }
  }

  for (const definition of definitions) {
    for (const sequence of definition.sequences) {
      if (sequence.identity || !sequence.ownedBy) continue;
      const { table, column } = sequence.ownedBy;
      inSchema(
        definition,
        `ALTER SEQUENCE ${qualified(definition.schema, sequence.name, names)} OWNED BY ${qualified(definition.schema, table, names)}.${quoteIdentifier(column)}`,
      );
    }
  }
  return statements;
}

function sequenceOptions(sequence: SequenceDefinition): string {
  return (
    `INCREMENT BY ${sequence.increment} MINVALUE ${sequence.min} MAXVALUE ${sequence.max} ` +
    `START WITH ${sequence.start} CACHE ${sequence.cache} ${sequence.cycle ? 'CYCLE' : 'NO CYCLE'}`
  );
}

function columnDefinition(column: ColumnDefinition, schema: string, sequences: Map<string, SequenceDefinition>, names: SchemaNames): string {
  const parts = [quoteIdentifier(column.name), column.type];
  if (column.collation) parts.push(`COLLATE ${column.collation}`);
  if (column.generatedExpression !== null) {
    parts.push(`GENERATED ALWAYS AS (${column.generatedExpression}) STORED`);
  } else if (column.identity) {
    const sequence = sequences.get(column.identity.sequence);
    if (!sequence) throw new Error(`Column ${quoteIdentifier(column.name)}'s identity sequence ${quoteIdentifier(column.identity.sequence)} is not in the definition`);
    // Named, so the sequence keeps its source name (setval and the restored schema refer to it).
    parts.push(
      `GENERATED ${column.identity.generation === 'always' ? 'ALWAYS' : 'BY DEFAULT'} AS IDENTITY ` +
        `(SEQUENCE NAME ${qualified(schema, sequence.name, names)} ${sequenceOptions(sequence)})`,
    );
  } else if (column.defaultExpression !== null) {
    parts.push(`DEFAULT ${column.defaultExpression}`);
  }
  if (column.notNull) parts.push('NOT NULL');
  return parts.join(' ');
}

const isNotValid = (definition: string) => definition.endsWith(' NOT VALID');

/**
 * The work after the rows, in units a restore may run at once on several connections; each unit's
 * statements start with its search path. Phase 1: per table its primary key, unique, check and
 * exclusion constraints, then its indexes; and per domain its NOT VALID checks. Phase 2 (after
 * every unit of phase 1 has ended): per table its foreign keys, pointed at the referenced schema's
 * built name (only those to the schemas `foreignKeysTo` accepts: a restore job's step builds the
 * keys to its own schema, and the run's last step those across its schemas). A partitioned family is one unit, named for its root: a parent's constraints and
 * indexes are built on its partitions too, under locks on them, so a partition's own work waits
 * for its parent's, in the same unit, after it: built before, a partition's index would be taken
 * over by its parent's identical one (CREATE INDEX on a partitioned table attaches a matching
 * index it finds instead of building one). A partition never has a check both its own and
 * inherited: on PG15 a parent's check that merges with a partition's leaves it inherited only
 * (conislocal false), so the reader leaves it out and the parent's rebuilds it.
 *
 * `keysValidatedApart` (the restore): each foreign key added NOT VALID, then validated
 * (foreignKeyStatements), so that keys to one table can be validated at once.
 */
export function postDataWork(
  definitions: SchemaDefinition[],
  names: SchemaNames,
  phase: 1 | 2,
  { foreignKeysTo = () => true, keysValidatedApart = false }: { foreignKeysTo?: (schema: string) => boolean; keysValidatedApart?: boolean } = {},
): PostDataUnit[] {
  const units: PostDataUnit[] = [];
  for (const definition of definitions) {
    const path = searchPathStatement(definition, names);
    if (phase === 1) {
      for (const type of definition.types) {
        if (type.kind !== 'domain') continue;
        const statements = type.checks
          .filter((check) => isNotValid(check.definition))
          .map((check) => `ALTER DOMAIN ${qualified(definition.schema, type.name, names)} ADD CONSTRAINT ${quoteIdentifier(check.name)} ${check.definition}`);
        if (statements.length > 0) units.push({ schema: definition.schema, table: type.name, kind: 'domain', statements: [path, ...statements] });
      }
    }
    for (const family of partitionFamilies(definition.tables)) {
      const statements = family.flatMap((table) =>
        phase === 1
          ? [...constraintStatements(definition.schema, table, names), ...indexStatements(definition.schema, table, names)]
          : foreignKeyStatements(definition.schema, table, names, foreignKeysTo, keysValidatedApart),
      );
      if (statements.length > 0) units.push({ schema: definition.schema, table: family[0]!.name, kind: 'table', statements: [path, ...statements] });
    }
  }
  return units;
}

/** Each table with the partitions below it (any depth, parents first); an ordinary table alone. */
function partitionFamilies(tables: TableDefinition[]): TableDefinition[][] {
  const children = new Map<string, TableDefinition[]>();
  const names = new Set(tables.map((table) => table.name));
  for (const table of tables) {
    if (table.partitionOf && names.has(table.partitionOf.table)) {
      children.set(table.partitionOf.table, [...(children.get(table.partitionOf.table) ?? []), table]);
    }
  }
  const withDescendants = (table: TableDefinition): TableDefinition[] => [table, ...(children.get(table.name) ?? []).flatMap(withDescendants)];
  return tables.filter((table) => !table.partitionOf || !names.has(table.partitionOf.table)).map(withDescendants);
}

function constraintStatements(schema: string, table: TableDefinition, names: SchemaNames): string[] {
  return table.constraints.map((constraint) => `ALTER TABLE ${qualified(schema, table.name, names)} ADD CONSTRAINT ${quoteIdentifier(constraint.name)} ${constraint.definition}`);
}

function indexStatements(schema: string, table: TableDefinition, names: SchemaNames): string[] {
  return table.indexes.map(
    (index) => `CREATE ${index.unique ? 'UNIQUE ' : ''}INDEX ${quoteIdentifier(index.name)} ON ${qualified(schema, table.name, names)} ${index.afterTable}`,
  );
}

/**
 * A table's foreign keys to the schemas `to` accepts. `apart`: added NOT VALID, then validated.
 * ADD FOREIGN KEY checks the rows under a SHARE ROW EXCLUSIVE lock on the referenced table, which
 * conflicts with itself, so every key to one table is checked one after another however many
 * connections build them (in npm run bench:restore, the four keys to `licences`). VALIDATE
 * CONSTRAINT takes SHARE UPDATE EXCLUSIVE on the referencing table and ROW SHARE on the referenced
 * one: keys to one table are checked at once. Rebuilding the bench's nine keys on two connections
 * (2026-12-07, three pairs): 4.7, 3.4, 4.0 s → 3.4, 2.4, 2.8 s. The end is the same (a validated
 * key). Not for a partitioned table: PostgreSQL 15 refuses NOT VALID foreign keys on one.
 */
function foreignKeyStatements(schema: string, table: TableDefinition, names: SchemaNames, to: (schema: string) => boolean, apart = false): string[] {
  const name = qualified(schema, table.name, names);
  const addedApart = apart && table.partitionKey === null;
  const keys = table.foreignKeys.filter((key) => to(key.references.schema));
  const adds = keys.map((key) => {
    const columns = key.columns.map(quoteIdentifier).join(', ');
    const referenced = `${qualified(key.references.schema, key.references.table, names)} (${key.references.columns.map(quoteIdentifier).join(', ')})`;
    const rest = [key.options, key.notValid || addedApart ? 'NOT VALID' : ''].filter((part) => part !== '').join(' ');
    return `ALTER TABLE ${name} ADD CONSTRAINT ${quoteIdentifier(key.name)} FOREIGN KEY (${columns}) REFERENCES ${referenced}${rest ? ` ${rest}` : ''}`;
  });
  if (!addedApart) return adds;
  // Keys NOT VALID in the source stay so.
  const validations = keys.filter((key) => !key.notValid).map((key) => `ALTER TABLE ${name} VALIDATE CONSTRAINT ${quoteIdentifier(key.name)}`);
  return [...adds, ...validations];
}

/** setval for every sequence, identity ones included, so the next value handed out is the source's next. */
export function sequenceStatements(definitions: SchemaDefinition[], names: SchemaNames): string[] {
  return definitions.flatMap((definition) =>
    definition.sequences.map(
      (sequence) =>
        `SELECT setval(${quoteLiteral(qualified(definition.schema, sequence.name, names))}::regclass, ${sequence.lastValue}, ${sequence.isCalled})`,
    ),
  );
}

/** The COPY that loads a table's CSV into the table being built. A partitioned parent has no CSV of its own to load: its rows are its partitions'. */
export function copyInStatement(definition: SchemaDefinition, table: TableDefinition, names: SchemaNames, { freeze = false }: { freeze?: boolean } = {}): string {
  const name = qualified(definition.schema, table.name, names);
  if (table.partitionKey !== null) {
    throw new Error(`Table ${quoteIdentifier(table.name)} of ${quoteIdentifier(definition.schema)} is partitioned: its rows are loaded into its partitions`);
  }
  // A table without a column to load (none, or generated ones only) still has its rows counted by the CSV's lines.
  const columns = table.csvColumns.length > 0 ? ` (${table.csvColumns.map(quoteIdentifier).join(', ')})` : '';
  // FREEZE: only for a table created or truncated in the COPY's own transaction (the restore's).
  return `COPY ${name}${columns} FROM STDIN (FORMAT csv, HEADER${freeze ? ', FREEZE' : ''})`;
}

/** The CSV's columns, in its order, with their types as format_type printed them. */
export function manifestColumns(table: TableDefinition): { name: string; type: string }[] {
  const types = new Map(table.columns.map((column) => [column.name, column.type]));
  return table.csvColumns.map((name) => ({ name, type: types.get(name)! }));
}
