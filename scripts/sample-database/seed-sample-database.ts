import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Sql, TransactionSql } from 'postgres';
import { addDays, calendarDateIn } from '../../lib/calendar-date';
import { DEFAULT_EXPORT_SCHEMAS } from '../../lib/config';
import { logger } from '../../lib/logger';
import { readWaterTablesDdl } from './water-tables';

/** The DDL of every sample table but the six `water` ones the time-limited job uses (water-tables.sql). */
const SAMPLE_SCHEMAS_DDL_PATH = resolve(import.meta.dirname, 'sample-schemas.sql');

/** Serialises two seeders started at once on one database (any constant nothing else uses). */
const SEED_LOCK_KEY = 0x5345454453414dn;

/**
 * Seeds a small sample of the service's database for local runs: the six schemas with a few
 * representative tables each (the `water` ones exactly as the time-limited job reads them) and
 * one view, which the export must skip. Time-limited dates are relative to the day of seeding,
 * so some licences qualify for the time-limited job that day and others fail one rule each.
 *
 * Does nothing (seeded: false) if any of the six schemas already exists: it never touches a
 * database that holds real data. All in one transaction, so a failure leaves nothing behind.
 */
export async function seedSampleDatabase(sql: Sql, now: Date = new Date()): Promise<{ seeded: boolean }> {
  const seeded = await sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(${SEED_LOCK_KEY.toString()}::bigint)`;
    const existing = await tx<{ nspname: string }[]>`
      SELECT nspname FROM pg_namespace WHERE nspname IN ${tx([...DEFAULT_EXPORT_SCHEMAS])}
    `;
    if (existing.length > 0) return false;
    await createSchemas(tx);
    await insertSampleRows(tx, calendarDateIn('Europe/London', now));
    return true;
  });
  if (seeded) logger.info('Sample database seeded', { schemas: [...DEFAULT_EXPORT_SCHEMAS] });
  return { seeded };
}

async function createSchemas(tx: TransactionSql): Promise<void> {
  await tx.unsafe(readWaterTablesDdl());
  await tx.unsafe(readFileSync(SAMPLE_SCHEMAS_DDL_PATH, 'utf8'));
}

const REGIONS = [
  { charge: 'A', nald: 1, name: 'Anglian', prefix: (n: number) => `AN/033/00${pad(n % 90, 2)}/0${pad(n, 2)}` },
  { charge: 'B', nald: 2, name: 'Midlands', prefix: (n: number) => `MD/054/00${pad(n % 90, 2)}/0${pad(n, 2)}` },
  { charge: 'Y', nald: 3, name: 'North East', prefix: (n: number) => `2/27/22/0${pad(n, 3)}` },
  { charge: 'N', nald: 4, name: 'North West', prefix: (n: number) => `2672006${pad(n, 3)}` },
  { charge: 'E', nald: 5, name: 'South West', prefix: (n: number) => `SW/15/1/${pad(n, 3)}/R${pad(n, 2)}` },
  { charge: 'S', nald: 6, name: 'Southern', prefix: (n: number) => `11/42/18.6.2/${pad(n, 3)}` },
  { charge: 'T', nald: 7, name: 'Thames', prefix: (n: number) => `TH/039/0044/0${pad(n, 2)}` },
  { charge: 'W', nald: 8, name: 'EA Wales', prefix: (n: number) => `WA/055/0017/0${pad(n, 2)}` },
];

const PURPOSES = [
  'Spray Irrigation - Direct',
  'Spray Irrigation - Storage',
  'General Farming & Domestic',
  'Make-Up or Top Up Water',
  'Evaporative Cooling',
  'Potable Water Supply - Direct',
  'Trickle Irrigation - Direct',
  'Heat Pump',
];

const HOLDERS = [
  ['Burton Fields Farms Ltd', 'limitedCompany', '02487311'],
  ['R & J Ashworth (Partnership)', 'partnership', null],
  ['Mrs Eleanor Whitlock', 'individual', null],
  ['Severn Vale Growers Ltd', 'limitedCompany', '06637250'],
  ['Hallam Golf Club', 'registeredCharity', null],
  ['Penrose Estate Trustees', 'partnership', null],
  ['Greenacre Nurseries LLP', 'limitedLiabilityPartnership', 'OC391822'],
  ['Mr Thomas Cadwallader', 'individual', null],
] as const;

const TOWNS = [
  ['Kings Lynn', 'Norfolk', 'PE31 6RT'],
  ['Evesham', 'Worcestershire', 'WR11 4TS'],
  ['Malton', 'North Yorkshire', 'YO17 6UX'],
  ['Ormskirk', 'Lancashire', 'L40 1SZ'],
  ['Launceston', 'Cornwall', 'PL15 8QD'],
  ['Petersfield', 'Hampshire', 'GU32 1EN'],
  ['Wallingford', 'Oxfordshire', 'OX10 9BX'],
  ['Crickhowell', 'Powys', 'NP8 1AR'],
] as const;

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

/**
 * What each sample licence is, cycling over ten cases. Qualifying cases have a time-limited
 * purpose ending within 50 days (or already ended); the others fail exactly one rule.
 */
type Case =
  | 'qualifies'
  | 'qualifies-past-end'
  | 'qualifies-two-purposes'
  | 'ends-later'
  | 'not-time-limited'
  | 'alcs'
  | 'expired'
  | 'live-workflow'
  | 'revoked'
  | 'lapsed';
const CASES: Case[] = [
  'qualifies',
  'not-time-limited',
  'qualifies-past-end',
  'ends-later',
  'alcs',
  'qualifies-two-purposes',
  'expired',
  'live-workflow',
  'qualifies',
  'revoked',
  'not-time-limited',
  'lapsed',
];

const LICENCE_COUNT = 48;

async function insertSampleRows(tx: TransactionSql, today: string): Promise<void> {
  const regions = REGIONS.map((r) => ({
    region_id: randomUUID(),
    charge_region_id: r.charge,
    nald_region_id: r.nald,
    name: r.name,
    display_name: r.name,
  }));
  await tx`INSERT INTO water.regions ${tx(regions)}`;

  const licences = [];
  const licenceVersions = [];
  const chargeVersions = [];
  const chargeElements = [];
  const chargePurposes: Record<string, string | number | null>[] = [];
  const workflows = [];
  const returns = [];
  const versions = [];
  const lines = [];
  const entities = [];
  const documentHeaders = [];
  const documents = [];
  const permits = [];

  for (let i = 0; i < LICENCE_COUNT; i++) {
    const region = REGIONS[i % REGIONS.length]!;
    const regionRow = regions[i % regions.length]!;
    const holder = HOLDERS[i % HOLDERS.length]!;
    const kase = CASES[i % CASES.length]!;
    const licenceRef = region.prefix(100 + i);
    const licenceId = randomUUID();
    const startDate = `${2004 + (i % 15)}-0${1 + (i % 9)}-${pad(1 + (i % 28), 2)}`;

    licences.push({
      licence_id: licenceId,
      region_id: regionRow.region_id,
      licence_ref: licenceRef,
      is_water_undertaker: i % 11 === 0,
      regions: { historicalAreaCode: `AREA${1 + (i % 5)}`, regionalChargeArea: region.name, standardUnitChargeCode: region.charge },
      start_date: startDate,
      expired_date: kase === 'expired' ? addDays(today, -120) : i % 4 === 0 ? addDays(today, 3650) : null,
      lapsed_date: kase === 'lapsed' ? addDays(today, -400) : null,
      revoked_date: kase === 'revoked' ? addDays(today, -30) : null,
    });

    // A superseded version from before, and the current one.
    licenceVersions.push(
      { licence_version_id: randomUUID(), licence_id: licenceId, issue: 1, increment: 0, status: 'superseded', start_date: startDate, end_date: '2019-03-31', external_id: `${region.nald}:${1000 + i}:1:0` },
      { licence_version_id: randomUUID(), licence_id: licenceId, issue: 2, increment: 0, status: 'current', start_date: '2019-04-01', end_date: null, external_id: `${region.nald}:${1000 + i}:2:0` },
    );
    const currentLicenceVersionId = licenceVersions.at(-1)!.licence_version_id;

    // The pre-SROC (ALCS) charge version ended when SROC began; the live one starts 2022-04-01.
    const alcsId = randomUUID();
    const liveId = randomUUID();
    chargeVersions.push(
      { charge_version_id: alcsId, licence_id: licenceId, licence_ref: licenceRef, scheme: 'alcs', version_number: 1, start_date: '2019-04-01', end_date: '2022-03-31', status: 'current', region_code: region.nald, source: 'nald' },
      { charge_version_id: liveId, licence_id: licenceId, licence_ref: licenceRef, scheme: kase === 'alcs' ? 'alcs' : 'sroc', version_number: 2, start_date: '2022-04-01', end_date: null, status: 'current', region_code: region.nald, source: 'wrls' },
    );

    const timeLimitedEnd: (string | null)[] =
      kase === 'not-time-limited' ? [null]
      : kase === 'ends-later' ? [addDays(today, 200 + i)]
      : kase === 'qualifies-past-end' ? [addDays(today, -15)]
      : kase === 'qualifies-two-purposes' ? [addDays(today, 12), addDays(today, 40)]
      : [addDays(today, 5 + (i % 40))];
    for (const [chargeVersionId, ends] of [[alcsId, [null]], [liveId, timeLimitedEnd]] as const) {
      const elementId = randomUUID();
      chargeElements.push({
        charge_element_id: elementId,
        charge_version_id: chargeVersionId,
        source: i % 3 === 0 ? 'tidal' : 'non-tidal',
        loss: ['high', 'medium', 'low'][i % 3]!,
        description: `${PURPOSES[i % PURPOSES.length]} at ${TOWNS[i % TOWNS.length]![0]}`,
        authorised_annual_quantity: String(1000 + i * 250),
        billable_annual_quantity: i % 2 === 0 ? String(800 + i * 200) : null,
        adjustments: { s126: null, s127: false, s130: false, charge: null, winter: false, aggregate: null },
      });
      ends.forEach((end, p) => {
        chargePurposes.push({
          charge_purpose_id: randomUUID(),
          charge_element_id: elementId,
          abstraction_period_start_day: 1,
          abstraction_period_start_month: 4,
          abstraction_period_end_day: 31,
          abstraction_period_end_month: 10,
          authorised_annual_quantity: String(500 + i * 100 + p * 50),
          loss: ['high', 'medium', 'low'][(i + p) % 3]!,
          description: PURPOSES[(i + p) % PURPOSES.length]!,
          time_limited_start_date: end ? '2015-04-01' : null,
          time_limited_end_date: end,
        });
      });
    }

    if (kase === 'live-workflow') {
      workflows.push({
        licence_id: licenceId,
        licence_version_id: currentLicenceVersionId,
        status: 'review',
        data: { chargeVersion: null, timeLimitedChargeVersionId: liveId },
        created_by: { id: 4, email: 'billing.officer@example.gov.uk' },
        approver_comments: 'Abstraction period looks wrong; please check before approving',
        date_created: `${addDays(today, -20)} 20:15:03.412`,
        date_updated: `${addDays(today, -6)} 09:41:27.905`,
      });
    }

    for (const year of [2023, 2024]) {
      const returnId = `v1:${region.nald}:${licenceRef}:${10021000 + i}:${year}-04-01:${year + 1}-03-31`;
      returns.push({
        return_id: returnId,
        licence_ref: licenceRef,
        start_date: `${year}-04-01`,
        end_date: `${year + 1}-03-31`,
        returns_frequency: 'month',
        status: year === 2023 ? 'completed' : 'due',
        metadata: { purposes: [{ alias: PURPOSES[i % PURPOSES.length] }], isTwoPartTariff: i % 5 === 0, nald: { areaCode: `AREA${1 + (i % 5)}`, formatId: 10021000 + i, regionCode: region.nald } },
        received_date: year === 2023 ? `${year + 1}-04-${pad(3 + (i % 20), 2)}` : null,
        return_requirement: String(10021000 + i),
        due_date: `${year + 1}-04-28`,
      });
      if (year === 2023) {
        const versionId = randomUUID();
        versions.push({ version_id: versionId, return_id: returnId, user_id: 'j.hartley@example.co.uk', user_type: 'external', version_number: 1, metadata: { method: 'abstractionVolumes', units: 'm³', meters: [] }, nil_return: i % 9 === 0, current: true });
        if (i % 9 !== 0) {
          for (let month = 0; month < 12; month++) {
            const first = new Date(Date.UTC(year, 3 + month, 1));
            const last = new Date(Date.UTC(year, 4 + month, 0));
            lines.push({
              version_id: versionId,
              quantity: month >= 3 && month <= 6 ? String(40 + ((i * 7 + month * 13) % 300)) : '0',
              start_date: first.toISOString().slice(0, 10),
              end_date: last.toISOString().slice(0, 10),
              time_period: 'month',
              reading_type: 'measured',
            });
          }
        }
      }
    }

    const companyEntityId = randomUUID();
    entities.push({ entity_id: companyEntityId, entity_nm: holder[0], entity_type: 'company', entity_definition: {}, source: 'nald' });
    documentHeaders.push({
      document_id: randomUUID(),
      regime_entity_id: '0434dc31-a34e-7158-5775-4694af7a60cf',
      system_internal_id: String(1000 + i),
      system_external_id: licenceRef,
      metadata: { Name: holder[0], Town: TOWNS[i % TOWNS.length]![0], County: TOWNS[i % TOWNS.length]![1], Postcode: TOWNS[i % TOWNS.length]![2], IsCurrent: kase !== 'expired' && kase !== 'revoked' && kase !== 'lapsed' },
      company_entity_id: companyEntityId,
      document_name: i % 6 === 0 ? `${TOWNS[i % TOWNS.length]![0]} reservoir` : null,
    });
    documents.push({ document_ref: licenceRef, start_date: startDate, end_date: null, external_id: `${region.nald}:${1000 + i}` });
    permits.push({
      licence_search_key: licenceRef.replace(/\W/g, ''),
      is_public_domain: 1,
      licence_start_dt: `${startDate} 00:00:00`,
      licence_ref: licenceRef,
      licence_data_value: { ID: String(1000 + i), LIC_NO: licenceRef, FGAC_REGION_CODE: String(region.nald), ORIG_EFF_DATE: startDate.split('-').reverse().join('/') },
      metadata: { source: 'nald', importedAt: '2024-11-02T02:14:09.117Z' },
    });
  }

  const companies = HOLDERS.map(([name, type, number], i) => ({
    name,
    type: type === 'individual' ? 'person' : 'organisation',
    company_number: number,
    organisation_type: type === 'individual' ? null : type,
    external_id: `${1 + (i % 8)}:${7000 + i}`,
  }));
  const addresses = TOWNS.map(([town, county, postcode], i) => ({
    address_1: ['Manor Farm', 'The Old Mill', 'Unit 4', 'Hill House', 'Rosewood Cottage', 'Home Farm', 'Riverside Works', 'Ty Gwyn'][i]!,
    address_2: `${10 + i * 7} ${['Church Lane', 'Mill Road', 'Station Road', 'High Street'][i % 4]}`,
    town,
    county,
    postcode,
    uprn: String(100090123400 + i * 7919),
  }));
  const users = ['a.patel', 'c.jones', 'billing.officer', 'k.oconnor', 'l.nguyen', 'm.evans', 'r.williams', 's.ahmed'].map((name, i) => ({
    user_name: `${name}@example.gov.uk`,
    // Not a real hash: the sample needs the shape, not a password anyone can use.
    password: `$2a$10$${'sampleonlynotarealhash'.padEnd(53, String(i))}`,
    user_data: { source: 'sample', firstName: name.split('.')[1] },
    application: i < 5 ? 'water_admin' : 'water_vml',
    role: { scopes: i < 5 ? ['billing', 'charge_version_workflow_reviewer'] : ['external'] },
    enabled: i !== 6,
    last_login: `2025-0${1 + i}-1${i} 08:${pad(10 + i * 5, 2)}:00`,
  }));

  await tx`INSERT INTO water.licences ${tx(licences)}`;
  await tx`INSERT INTO water.licence_versions ${tx(licenceVersions)}`;
  await tx`INSERT INTO water.charge_versions ${tx(chargeVersions)}`;
  await tx`INSERT INTO water.charge_elements ${tx(chargeElements)}`;
  await tx`INSERT INTO water.charge_purposes ${tx(chargePurposes)}`;
  await tx`INSERT INTO water.charge_version_workflows ${tx(workflows)}`;
  await tx`INSERT INTO returns.returns ${tx(returns)}`;
  await tx`INSERT INTO returns.versions ${tx(versions)}`;
  await tx`INSERT INTO returns.lines ${tx(lines)}`;
  await tx`INSERT INTO crm.entity ${tx(entities)}`;
  await tx`INSERT INTO crm.document_header ${tx(documentHeaders)}`;
  await tx`INSERT INTO crm_v2.documents ${tx(documents)}`;
  await tx`INSERT INTO crm_v2.companies ${tx(companies)}`;
  await tx`INSERT INTO crm_v2.addresses ${tx(addresses)}`;
  await tx`INSERT INTO idm.users ${tx(users)}`;
  await tx`INSERT INTO permit.licence ${tx(permits)}`;
}
