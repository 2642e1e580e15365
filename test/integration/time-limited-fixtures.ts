/** Builds licences for the time-limited tests: each spec field defaults to "qualifies". */
import { randomUUID } from 'node:crypto';
import type { Sql } from 'postgres';
import { addDays } from '../../lib/calendar-date';

/** Tests run "at" this instant: noon UTC, which is 13:00 BST, so London's date is the same. */
export const NOW = new Date('2026-06-10T12:00:00Z');
export const TODAY = '2026-06-10';
export const SETTINGS = { days: 50, timeZone: 'Europe/London' };

/** date_created of the workflow rows a fixture writes, so tests can tell them from the job's. */
export const FIXTURE_CREATED = '2026-01-05 10:00:00';

export const day = (offset: number) => addDays(TODAY, offset);

export interface ChargeVersionSpec {
  id?: string;
  scheme?: string;
  status?: string;
  startDate?: string;
  endDate?: string | null;
  /** time_limited_end_date of each charge purpose, grouped by charge element. */
  elements?: (string | null)[][];
}

export interface LicenceSpec {
  id?: string;
  expiredDate?: string | null;
  lapsedDate?: string | null;
  revokedDate?: string | null;
  licenceVersions?: { id?: string; status: string; startDate: string }[];
  chargeVersions?: ChargeVersionSpec[];
  workflows?: { status: string; dateDeleted?: string | null; licenceVersionId?: string }[];
}

export interface BuiltLicence {
  licenceId: string;
  licenceVersionIds: string[];
  chargeVersionIds: string[];
}

let refCounter = 0;

export async function addLicence(sql: Sql, spec: LicenceSpec = {}): Promise<BuiltLicence> {
  const licenceId = spec.id ?? randomUUID();
  const licenceRef = `TEST/${String(++refCounter).padStart(6, '0')}/${licenceId.slice(0, 4)}`;
  await sql`
    INSERT INTO water.licences (licence_id, licence_ref, expired_date, lapsed_date, revoked_date)
    VALUES (${licenceId}, ${licenceRef}, ${spec.expiredDate ?? null}, ${spec.lapsedDate ?? null}, ${spec.revokedDate ?? null})
  `;
  const licenceVersionIds: string[] = [];
  for (const lv of spec.licenceVersions ?? [{ status: 'current', startDate: '2019-04-01' }]) {
    const id = lv.id ?? randomUUID();
    licenceVersionIds.push(id);
    await sql`
      INSERT INTO water.licence_versions (licence_version_id, licence_id, status, start_date)
      VALUES (${id}, ${licenceId}, ${lv.status}, ${lv.startDate})
    `;
  }
  const chargeVersionIds: string[] = [];
  for (const cv of spec.chargeVersions ?? [{}]) {
    const id = cv.id ?? randomUUID();
    chargeVersionIds.push(id);
    await sql`
      INSERT INTO water.charge_versions (charge_version_id, licence_id, licence_ref, scheme, status, start_date, end_date)
      VALUES (${id}, ${licenceId}, ${licenceRef}, ${cv.scheme ?? 'sroc'}, ${cv.status ?? 'current'},
              ${cv.startDate ?? '2022-04-01'}, ${cv.endDate ?? null})
    `;
    for (const purposes of cv.elements ?? [[day(10)]]) {
      const elementId = randomUUID();
      await sql`INSERT INTO water.charge_elements (charge_element_id, charge_version_id) VALUES (${elementId}, ${id})`;
      for (const end of purposes) {
        await sql`
          INSERT INTO water.charge_purposes (charge_element_id, time_limited_start_date, time_limited_end_date)
          VALUES (${elementId}, ${end === null ? null : '2015-04-01'}, ${end})
        `;
      }
    }
  }
  for (const wf of spec.workflows ?? []) {
    await sql`
      INSERT INTO water.charge_version_workflows (licence_id, licence_version_id, status, date_created, date_deleted)
      VALUES (${licenceId}, ${wf.licenceVersionId ?? licenceVersionIds[0] ?? null}, ${wf.status}, ${FIXTURE_CREATED}, ${wf.dateDeleted ?? null})
    `;
  }
  return { licenceId, licenceVersionIds, chargeVersionIds };
}

export interface WorkflowRow {
  charge_version_workflow_id: string;
  licence_id: string;
  licence_version_id: string | null;
  status: string;
  data: unknown;
  created_by: unknown;
  approver_comments: string | null;
  date_created: string;
  date_updated: string | null;
  date_deleted: string | null;
}

/** The rows the job added (not the fixtures'); timestamps as text so no zone is applied. */
export async function addedRows(sql: Sql): Promise<WorkflowRow[]> {
  return sql<WorkflowRow[]>`
    SELECT charge_version_workflow_id, licence_id, licence_version_id, status, data, created_by, approver_comments,
           date_created::text AS date_created, date_updated::text AS date_updated, date_deleted::text AS date_deleted
    FROM water.charge_version_workflows
    WHERE date_created <> ${FIXTURE_CREATED}::timestamp
    ORDER BY licence_id
  `;
}

export async function truncateWaterTables(sql: Sql): Promise<void> {
  await sql`
    TRUNCATE water.licences, water.licence_versions, water.charge_versions, water.charge_elements,
             water.charge_purposes, water.charge_version_workflows
  `;
}

/**
 * Adds `count` qualifying licences in a few set-based statements (for the tests that need many
 * rows, e.g. to make two concurrent runs overlap).
 */
export async function addManyQualifyingLicences(sql: Sql, count: number): Promise<void> {
  await sql.begin(async (tx) => {
    await tx`
      CREATE TEMP TABLE many ON COMMIT DROP AS
      SELECT gen_random_uuid() AS licence_id, gen_random_uuid() AS licence_version_id,
             gen_random_uuid() AS charge_version_id, gen_random_uuid() AS charge_element_id, n
      FROM generate_series(1, ${count}::int) AS n
    `;
    await tx`INSERT INTO water.licences (licence_id, licence_ref) SELECT licence_id, 'MANY/' || n FROM many`;
    await tx`
      INSERT INTO water.licence_versions (licence_version_id, licence_id, status, start_date)
      SELECT licence_version_id, licence_id, 'current', DATE '2019-04-01' FROM many
    `;
    await tx`
      INSERT INTO water.charge_versions (charge_version_id, licence_id, licence_ref, scheme, status, start_date)
      SELECT charge_version_id, licence_id, 'MANY/' || n, 'sroc', 'current', DATE '2022-04-01' FROM many
    `;
    await tx`INSERT INTO water.charge_elements (charge_element_id, charge_version_id) SELECT charge_element_id, charge_version_id FROM many`;
    await tx`
      INSERT INTO water.charge_purposes (charge_element_id, time_limited_end_date)
      SELECT charge_element_id, ${TODAY}::date + (n % 50) FROM many
    `;
  });
}
