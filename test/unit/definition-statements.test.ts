import { describe, expect, it } from 'vitest';
import {
  copyInStatement,
  manifestColumns,
  postDataWork,
  preDataStatements,
  quoteLiteral,
  searchPathStatement,
  sequenceStatements,
} from '../../lib/definition/definition-statements';
import { DEFINITION_FORMAT } from '../../lib/definition/schema-definition';
import type { ColumnDefinition, SchemaDefinition, SequenceDefinition, TableDefinition } from '../../lib/definition/schema-definition';

const column = (name: string, type: string, more: Partial<ColumnDefinition> = {}): ColumnDefinition => ({
  name,
  type,
  notNull: false,
  defaultExpression: null,
  generatedExpression: null,
  identity: null,
  collation: null,
  ...more,
});

const table = (name: string, more: Partial<TableDefinition> = {}): TableDefinition => ({
  name,
  partitionKey: null,
  partitionOf: null,
  columns: [],
  csvColumns: [],
  constraints: [],
  indexes: [],
  foreignKeys: [],
  ...more,
});

const sequence = (name: string, more: Partial<SequenceDefinition> = {}): SequenceDefinition => ({
  name,
  dataType: 'bigint',
  start: '1',
  increment: '1',
  min: '1',
  max: '9223372036854775807',
  cache: '1',
  cycle: false,
  lastValue: '1',
  isCalled: false,
  ownedBy: null,
  identity: false,
  ...more,
});

const rights: SchemaDefinition = {
  format: DEFINITION_FORMAT,
  schema: 'Water Rights',
  serverVersionNum: 150020,
  searchPath: ['Water Rights', 'crm', 'shared'],
  extensions: [],
  types: [
    { kind: 'enum', name: 'status', labels: ['draft', "it's"] },
    {
      kind: 'domain',
      name: 'qty',
      baseType: 'numeric(12,2)',
      notNull: true,
      defaultExpression: '0',
      collation: null,
      checks: [
        { name: 'qty_positive', definition: 'CHECK ((VALUE >= (0)::numeric))' },
        { name: 'qty_small', definition: 'CHECK ((VALUE < (10)::numeric)) NOT VALID' },
      ],
    },
    { kind: 'composite', name: 'Grid Ref', attributes: [{ name: 'label', type: 'text', collation: '"C"' }, { name: 'e', type: 'integer', collation: null }] },
  ],
  sequences: [
    sequence('ref_seq', { increment: '5', cache: '3', cycle: true, lastValue: '125', isCalled: true }),
    sequence('Licences_id_seq', { dataType: 'integer', identity: true, ownedBy: { table: 'Licences', column: 'id' }, lastValue: '40', isCalled: true }),
    sequence('readings_id_seq', { ownedBy: { table: 'readings', column: 'id' } }),
  ],
  tables: [
    table('Licences', {
      columns: [
        column('id', 'integer', { notNull: true, identity: { generation: 'always', sequence: 'Licences_id_seq' } }),
        column('ref', 'text', { notNull: true, defaultExpression: "('L-'::text || nextval('ref_seq'::regclass))" }),
        column('Sort Key', 'text', { collation: '"C"' }),
        column('lower_ref', 'text', { generatedExpression: 'lower(ref)' }),
        column('customer_id', 'integer'),
      ],
      csvColumns: ['id', 'ref', 'Sort Key', 'customer_id'],
      constraints: [
        { name: 'Licences_pkey', kind: 'primary key', definition: 'PRIMARY KEY (id)' },
        { name: 'ref_short', kind: 'check', definition: 'CHECK ((length(ref) < 20)) NOT VALID' },
      ],
      indexes: [{ name: 'licences_lower', unique: true, afterTable: 'USING btree (lower(ref)) WHERE (ref IS NOT NULL)' }],
      foreignKeys: [
        { name: 'to_crm', columns: ['customer_id'], references: { schema: 'crm', table: 'customers', columns: ['id'] }, options: 'ON DELETE SET NULL', notValid: false },
        { name: 'to_shared', columns: ['customer_id'], references: { schema: 'shared', table: 'people', columns: ['Person Id'] }, options: '', notValid: true },
      ],
    }),
    table('readings', {
      partitionKey: 'RANGE (read_on)',
      columns: [column('id', 'bigint', { notNull: true, defaultExpression: "nextval('readings_id_seq'::regclass)" }), column('read_on', 'date', { notNull: true })],
      constraints: [
        { name: 'readings_pkey', kind: 'primary key', definition: 'PRIMARY KEY (id, read_on)' },
        { name: 'readings_positive', kind: 'check', definition: 'CHECK ((id > 0))' },
      ],
      indexes: [{ name: 'readings_on', unique: false, afterTable: 'USING btree (read_on)' }],
    }),
    table('readings_2025', {
      partitionOf: { table: 'readings', bound: "FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')" },
      columns: [column('read_on', 'date', { notNull: true }), column('id', 'bigint', { notNull: true, defaultExpression: "nextval('readings_id_seq'::regclass)" })],
      csvColumns: ['read_on', 'id'],
      constraints: [
        { name: 'r2025_small', kind: 'check', definition: 'CHECK ((id < 1000))' },
        { name: 'r2025_unique', kind: 'unique', definition: 'UNIQUE (read_on)' },
      ],
      indexes: [{ name: 'r2025_id', unique: false, afterTable: 'USING hash (id)' }],
    }),
  ],
};

const crm: SchemaDefinition = {
  ...rights,
  schema: 'crm',
  searchPath: ['crm', 'Water Rights', 'shared'],
  types: [{ kind: 'enum', name: 'kind', labels: ['email'] }],
  sequences: [],
  tables: [table('customers', { columns: [column('id', 'integer', { notNull: true })], csvColumns: ['id'] })],
};

const names = new Map([
  ['Water Rights', 'waj_restore_x_0'],
  ['crm', 'waj_restore_x_1'],
]);

describe('searchPathStatement', () => {
  it('maps each schema of the path to the name it is built under, and leaves the others as they are', () => {
    expect(searchPathStatement(rights, names)).toBe('SET search_path = "waj_restore_x_0", "waj_restore_x_1", "shared"');
    expect(searchPathStatement(crm, new Map())).toBe('SET search_path = "crm", "Water Rights", "shared"');
  });
});

describe('preDataStatements', () => {
  const statements = preDataStatements([rights, crm], names);
  const pathOfRights = 'SET search_path = "waj_restore_x_0", "waj_restore_x_1", "shared"';
  const pathOfCrm = 'SET search_path = "waj_restore_x_1", "waj_restore_x_0", "shared"';

  it('creates kind by kind across the schemas, setting the path whenever the schema changes', () => {
    expect(statements).toEqual([
      pathOfRights,
      `CREATE TYPE "waj_restore_x_0"."status" AS ENUM ('draft', 'it''s')`,
      'CREATE DOMAIN "waj_restore_x_0"."qty" AS numeric(12,2) DEFAULT 0 NOT NULL CONSTRAINT "qty_positive" CHECK ((VALUE >= (0)::numeric))',
      'CREATE TYPE "waj_restore_x_0"."Grid Ref" AS ("label" text COLLATE "C", "e" integer)',
      pathOfCrm,
      `CREATE TYPE "waj_restore_x_1"."kind" AS ENUM ('email')`,
      pathOfRights,
      'CREATE SEQUENCE "waj_restore_x_0"."ref_seq" AS bigint INCREMENT BY 5 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 3 CYCLE',
      'CREATE SEQUENCE "waj_restore_x_0"."readings_id_seq" AS bigint INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1 NO CYCLE',
      'CREATE TABLE "waj_restore_x_0"."Licences" (' +
        '"id" integer GENERATED ALWAYS AS IDENTITY (SEQUENCE NAME "waj_restore_x_0"."Licences_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1 NO CYCLE) NOT NULL, ' +
        `"ref" text DEFAULT ('L-'::text || nextval('ref_seq'::regclass)) NOT NULL, ` +
        '"Sort Key" text COLLATE "C", ' +
        '"lower_ref" text GENERATED ALWAYS AS (lower(ref)) STORED, ' +
        '"customer_id" integer)',
      `CREATE TABLE "waj_restore_x_0"."readings" ("id" bigint DEFAULT nextval('readings_id_seq'::regclass) NOT NULL, "read_on" date NOT NULL) PARTITION BY RANGE (read_on)`,
      `CREATE TABLE "waj_restore_x_0"."readings_2025" ("read_on" date NOT NULL, "id" bigint DEFAULT nextval('readings_id_seq'::regclass) NOT NULL)`,
      `ALTER TABLE "waj_restore_x_0"."readings" ATTACH PARTITION "waj_restore_x_0"."readings_2025" FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')`,
      pathOfCrm,
      'CREATE TABLE "waj_restore_x_1"."customers" ("id" integer NOT NULL)',
      pathOfRights,
      // The identity's sequence is owned by its column already.
      'ALTER SEQUENCE "waj_restore_x_0"."readings_id_seq" OWNED BY "waj_restore_x_0"."readings"."id"',
    ]);
  });

  it('builds no key, check or index before the rows', () => {
    expect(statements.filter((statement) => /CONSTRAINT "(?!qty_positive)|INDEX|PRIMARY|UNIQUE|FOREIGN/.test(statement))).toEqual([]);
  });
});

describe('postDataWork', () => {
  it('phase 1: a domain unit for its NOT VALID checks; per table its constraints then indexes, a partitioned family as one unit, parents first', () => {
    const path = 'SET search_path = "waj_restore_x_0", "waj_restore_x_1", "shared"';
    expect(postDataWork([rights, crm], names, 1)).toEqual([
      { schema: 'Water Rights', table: 'qty', kind: 'domain', statements: [path, 'ALTER DOMAIN "waj_restore_x_0"."qty" ADD CONSTRAINT "qty_small" CHECK ((VALUE < (10)::numeric)) NOT VALID'] },
      {
        schema: 'Water Rights',
        table: 'Licences',
        kind: 'table',
        statements: [
          path,
          'ALTER TABLE "waj_restore_x_0"."Licences" ADD CONSTRAINT "Licences_pkey" PRIMARY KEY (id)',
          'ALTER TABLE "waj_restore_x_0"."Licences" ADD CONSTRAINT "ref_short" CHECK ((length(ref) < 20)) NOT VALID',
          'CREATE UNIQUE INDEX "licences_lower" ON "waj_restore_x_0"."Licences" USING btree (lower(ref)) WHERE (ref IS NOT NULL)',
        ],
      },
      {
        schema: 'Water Rights',
        table: 'readings',
        kind: 'table',
        statements: [
          path,
          'ALTER TABLE "waj_restore_x_0"."readings" ADD CONSTRAINT "readings_pkey" PRIMARY KEY (id, read_on)',
          'ALTER TABLE "waj_restore_x_0"."readings" ADD CONSTRAINT "readings_positive" CHECK ((id > 0))',
          'CREATE INDEX "readings_on" ON "waj_restore_x_0"."readings" USING btree (read_on)',
          'ALTER TABLE "waj_restore_x_0"."readings_2025" ADD CONSTRAINT "r2025_small" CHECK ((id < 1000))',
          'ALTER TABLE "waj_restore_x_0"."readings_2025" ADD CONSTRAINT "r2025_unique" UNIQUE (read_on)',
          'CREATE INDEX "r2025_id" ON "waj_restore_x_0"."readings_2025" USING hash (id)',
        ],
      },
    ]);
  });

  it('phase 2: foreign keys pointed at the built name of the schema they reference, or its own name when it is not being built; NOT VALID kept', () => {
    expect(postDataWork([rights, crm], names, 2)).toEqual([
      {
        schema: 'Water Rights',
        table: 'Licences',
        kind: 'table',
        statements: [
          'SET search_path = "waj_restore_x_0", "waj_restore_x_1", "shared"',
          'ALTER TABLE "waj_restore_x_0"."Licences" ADD CONSTRAINT "to_crm" FOREIGN KEY ("customer_id") REFERENCES "waj_restore_x_1"."customers" ("id") ON DELETE SET NULL',
          'ALTER TABLE "waj_restore_x_0"."Licences" ADD CONSTRAINT "to_shared" FOREIGN KEY ("customer_id") REFERENCES "shared"."people" ("Person Id") NOT VALID',
        ],
      },
    ]);
  });

  it('phase 2 split as a restore job splits it: a step builds the keys to schemas the run does not restore, its last step those between the run\'s schemas', () => {
    const run = new Set(['Water Rights', 'crm']);
    const byStep = postDataWork([rights], names, 2, { foreignKeysTo: (schema) => schema === 'Water Rights' || !run.has(schema) });
    expect(byStep.flatMap((unit) => unit.statements.slice(1))).toEqual([expect.stringContaining('ADD CONSTRAINT "to_shared"')]);
    const byLast = postDataWork([rights], names, 2, { foreignKeysTo: (schema) => schema !== 'Water Rights' && run.has(schema) });
    expect(byLast.flatMap((unit) => unit.statements.slice(1))).toEqual([expect.stringContaining('ADD CONSTRAINT "to_crm"')]);
    // A table with no key to build leaves no unit at all.
    expect(postDataWork([crm], names, 2, { foreignKeysTo: () => false })).toEqual([]);
  });

  it('phase 2 with keysValidatedApart: each key added NOT VALID, then validated, but one NOT VALID in the source; a partitioned table’s added as they are', () => {
    const partitionedKey = { name: 'readings_by', columns: ['id'], references: { schema: 'crm', table: 'customers', columns: ['id'] }, options: '', notValid: false };
    const withPartitioned = { ...rights, tables: rights.tables.map((t) => (t.name === 'readings' ? { ...t, foreignKeys: [partitionedKey] } : t)) };
    expect(postDataWork([withPartitioned, crm], names, 2, { keysValidatedApart: true }).map((unit) => unit.statements.slice(1))).toEqual([
      [
        'ALTER TABLE "waj_restore_x_0"."Licences" ADD CONSTRAINT "to_crm" FOREIGN KEY ("customer_id") REFERENCES "waj_restore_x_1"."customers" ("id") ON DELETE SET NULL NOT VALID',
        'ALTER TABLE "waj_restore_x_0"."Licences" ADD CONSTRAINT "to_shared" FOREIGN KEY ("customer_id") REFERENCES "shared"."people" ("Person Id") NOT VALID',
        'ALTER TABLE "waj_restore_x_0"."Licences" VALIDATE CONSTRAINT "to_crm"',
      ],
      ['ALTER TABLE "waj_restore_x_0"."readings" ADD CONSTRAINT "readings_by" FOREIGN KEY ("id") REFERENCES "waj_restore_x_1"."customers" ("id")'],
    ]);
  });
});

describe('sequenceStatements', () => {
  it('sets every sequence, identity ones too, where the source stood, named as a regclass literal', () => {
    const odd = { ...crm, schema: `it's "odd"`, sequences: [sequence(`seq's`, { lastValue: '-2', isCalled: true })] };
    expect(sequenceStatements([rights, odd], names)).toEqual([
      `SELECT setval('"waj_restore_x_0"."ref_seq"'::regclass, 125, true)`,
      `SELECT setval('"waj_restore_x_0"."Licences_id_seq"'::regclass, 40, true)`,
      `SELECT setval('"waj_restore_x_0"."readings_id_seq"'::regclass, 1, false)`,
      `SELECT setval('"it''s ""odd"""."seq''s"'::regclass, -2, true)`,
    ]);
  });
});

describe('copyInStatement and manifestColumns', () => {
  it('loads the CSV columns, in their order, into the table being built', () => {
    expect(copyInStatement(rights, rights.tables[0]!, names)).toBe(
      'COPY "waj_restore_x_0"."Licences" ("id", "ref", "Sort Key", "customer_id") FROM STDIN (FORMAT csv, HEADER)',
    );
    expect(copyInStatement(rights, rights.tables[2]!, new Map())).toBe('COPY "Water Rights"."readings_2025" ("read_on", "id") FROM STDIN (FORMAT csv, HEADER)');
  });

  it('refuses a partitioned parent, whose rows are its partitions’', () => {
    expect(() => copyInStatement(rights, rights.tables[1]!, names)).toThrow(/partitioned/);
  });

  it('lists the CSV columns with their types, generated ones left out', () => {
    expect(manifestColumns(rights.tables[0]!)).toEqual([
      { name: 'id', type: 'integer' },
      { name: 'ref', type: 'text' },
      { name: 'Sort Key', type: 'text' },
      { name: 'customer_id', type: 'integer' },
    ]);
  });
});

describe('quoteLiteral', () => {
  it('doubles quotes and refuses NUL', () => {
    expect(quoteLiteral("a'b\\c")).toBe("'a''b\\c'");
    expect(() => quoteLiteral('a\0b')).toThrow(/NUL/);
  });
});
