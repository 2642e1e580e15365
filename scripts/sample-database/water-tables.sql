-- The six `water` tables the time-limited job reads and writes, as ../shared/reference/jobs.md
-- lists them (plus a few of the service's other columns). As in the service: uuid keys with
-- defaults, no foreign keys, every date_* timestamp WITHOUT time zone. Tests and the sample
-- database both load this one file.
CREATE SCHEMA IF NOT EXISTS water;

CREATE TABLE water.licences (
  licence_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  region_id uuid,
  licence_ref varchar NOT NULL,
  is_water_undertaker boolean NOT NULL DEFAULT false,
  regions jsonb,
  start_date date,
  expired_date date,
  lapsed_date date,
  revoked_date date,
  suspend_from_billing boolean NOT NULL DEFAULT false,
  include_in_sroc_supplementary_billing boolean NOT NULL DEFAULT false,
  date_created timestamp without time zone NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
  date_updated timestamp without time zone NOT NULL DEFAULT (now() AT TIME ZONE 'UTC')
);
CREATE UNIQUE INDEX licences_licence_ref_key ON water.licences (licence_ref);

CREATE TABLE water.licence_versions (
  licence_version_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  licence_id uuid NOT NULL,
  issue integer NOT NULL DEFAULT 1,
  increment integer NOT NULL DEFAULT 0,
  status varchar NOT NULL,
  start_date date NOT NULL,
  end_date date,
  external_id varchar,
  date_created timestamp without time zone NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
  date_updated timestamp without time zone NOT NULL DEFAULT (now() AT TIME ZONE 'UTC')
);
CREATE INDEX licence_versions_licence_id_idx ON water.licence_versions (licence_id);

CREATE TABLE water.charge_versions (
  charge_version_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  licence_id uuid NOT NULL,
  licence_ref varchar NOT NULL,
  scheme varchar NOT NULL,
  version_number integer NOT NULL DEFAULT 1,
  start_date date NOT NULL,
  end_date date,
  status varchar NOT NULL,
  region_code integer,
  source varchar NOT NULL DEFAULT 'wrls',
  change_reason_id uuid,
  date_created timestamp without time zone NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
  date_updated timestamp without time zone NOT NULL DEFAULT (now() AT TIME ZONE 'UTC')
);
CREATE INDEX charge_versions_licence_id_idx ON water.charge_versions (licence_id);

CREATE TABLE water.charge_elements (
  charge_element_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  charge_version_id uuid NOT NULL,
  source varchar,
  loss varchar,
  description varchar,
  authorised_annual_quantity numeric,
  billable_annual_quantity numeric,
  adjustments jsonb,
  date_created timestamp without time zone NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
  date_updated timestamp without time zone NOT NULL DEFAULT (now() AT TIME ZONE 'UTC')
);
CREATE INDEX charge_elements_charge_version_id_idx ON water.charge_elements (charge_version_id);

CREATE TABLE water.charge_purposes (
  charge_purpose_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  charge_element_id uuid NOT NULL,
  abstraction_period_start_day smallint,
  abstraction_period_start_month smallint,
  abstraction_period_end_day smallint,
  abstraction_period_end_month smallint,
  authorised_annual_quantity numeric,
  loss varchar,
  description varchar,
  time_limited_start_date date,
  time_limited_end_date date,
  date_created timestamp without time zone NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
  date_updated timestamp without time zone NOT NULL DEFAULT (now() AT TIME ZONE 'UTC')
);
CREATE INDEX charge_purposes_charge_element_id_idx ON water.charge_purposes (charge_element_id);

CREATE TABLE water.charge_version_workflows (
  charge_version_workflow_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  licence_id uuid NOT NULL,
  licence_version_id uuid,
  status varchar NOT NULL,
  data jsonb,
  created_by jsonb,
  approver_comments text,
  date_created timestamp without time zone NOT NULL,
  date_updated timestamp without time zone,
  date_deleted timestamp without time zone
);
CREATE UNIQUE INDEX charge_version_workflows_licence_version_id_unique
  ON water.charge_version_workflows (licence_version_id) WHERE date_deleted IS NULL;
CREATE INDEX charge_version_workflows_licence_id_idx ON water.charge_version_workflows (licence_id);
