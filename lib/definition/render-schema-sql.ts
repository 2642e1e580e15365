import { tableEntryName } from '../export/archive-entry-name';
import { quoteIdentifier } from '../export/quote-identifier';
import { copyInStatement, postDataWork, preDataStatements, quoteLiteral, sequenceStatements } from './definition-statements';
import type { SchemaDefinition } from './schema-definition';

/** Each schema under its own name: the script builds the schema as it was, not a staging copy. */
const OWN_NAMES = new Map<string, string>();

/**
 * The definition as a script for people and psql (`<schema>/schema.sql`): the same statements a
 * restore runs, in the same order, with every schema under its own name. Run from the unpacked
 * tarball's folder, uncommenting the `\copy` lines, it rebuilds the schema with its rows; the other
 * schemas its path and foreign keys name must exist first (their foreign keys only by the end).
 */
export function renderSchemaSql(definition: SchemaDefinition): string {
  if (definition.unavailable !== undefined) return renderUnavailable(definition, definition.unavailable);
  const lines: string[] = [
    `-- Schema ${quoteIdentifier(definition.schema)}, definition format ${definition.format}, printed by PostgreSQL ${definition.serverVersionNum}.`,
    `-- Texts name objects as found on the search path ${definition.searchPath.map(quoteIdentifier).join(', ')}.`,
    ...definition.extensions.map((use) => `-- Needs extension ${quoteIdentifier(use.name)} in schema ${quoteIdentifier(use.schema)}: ${use.usedBy.join('; ')}.`),
    '',
    `CREATE SCHEMA ${quoteIdentifier(definition.schema)};`,
    '',
    '-- Types, sequences and tables (keys, checks and indexes come after the rows).',
    ...statementsOf(preDataStatements([definition], OWN_NAMES)),
    '',
    '-- The rows: from the unpacked tarball, each table from its CSV.',
  ];
  for (const table of definition.tables) {
    if (table.partitionKey !== null) {
      lines.push(`-- ${quoteIdentifier(table.name)} is partitioned: its rows are its partitions'.`);
      continue;
    }
    // psql's \copy takes the same options as COPY, reading the file on the client's side.
    const copy = copyInStatement(definition, table, OWN_NAMES).replace(/^COPY /, '\\copy ').replace(' FROM STDIN ', ` FROM ${quoteLiteral(tableEntryName(definition.schema, table.name))} `);
    lines.push(`-- ${copy}`);
  }
  lines.push(
    '',
    '-- Keys, checks and indexes.',
    ...statementsOf(postDataWork([definition], OWN_NAMES, 1).flatMap((unit) => unit.statements)),
    '',
    '-- Foreign keys.',
    ...statementsOf(postDataWork([definition], OWN_NAMES, 2).flatMap((unit) => unit.statements)),
    '',
    '-- Where each sequence stood.',
    ...statementsOf(sequenceStatements([definition], OWN_NAMES)),
    '',
  );
  return lines.join('\n');
}

/** A script that says why there is no definition, and stops psql before it does anything. */
function renderUnavailable(definition: SchemaDefinition, why: string): string {
  return [
    `-- Schema ${quoteIdentifier(definition.schema)}, definition format ${definition.format}, printed by PostgreSQL ${definition.serverVersionNum}.`,
    `-- The export could not carry this schema's definition: ${why.replace(/[\r\n]+/g, ' ')}.`,
    "-- The tarball holds every table's rows, as CSV with a header row: create the tables by hand before loading them.",
    "\\echo 'This schema''s definition is not in the export: see the comments at the top of schema.sql'",
    '\\quit',
    '',
  ].join('\n');
}

/** Statements ended with `;`, a path set again only when it changes (every post-data unit starts with one). */
function statementsOf(statements: string[]): string[] {
  const out: string[] = [];
  let path: string | undefined;
  for (const statement of statements) {
    if (statement.startsWith('SET search_path = ')) {
      if (statement === path) continue;
      path = statement;
    }
    out.push(`${statement};`);
  }
  return out;
}
