-- The sample database's other schemas and tables, loaded after water-tables.sql: a few
-- representative tables of each schema the export takes, and one view, which the export must skip.
CREATE TABLE water.regions (
  region_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  charge_region_id varchar NOT NULL,
  nald_region_id integer NOT NULL,
  name varchar NOT NULL,
  display_name varchar NOT NULL,
  date_created timestamp without time zone NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
  date_updated timestamp without time zone NOT NULL DEFAULT (now() AT TIME ZONE 'UTC')
);
-- Views are not exported; this one is here so the export can show it skips them.
CREATE VIEW water.licence_summary AS
  SELECT l.licence_ref, r.display_name AS region, l.expired_date, l.lapsed_date, l.revoked_date
  FROM water.licences l LEFT JOIN water.regions r ON r.region_id = l.region_id;

CREATE SCHEMA returns;
CREATE TABLE returns.returns (
  return_id varchar PRIMARY KEY,
  regime varchar NOT NULL DEFAULT 'water',
  licence_type varchar NOT NULL DEFAULT 'abstraction',
  licence_ref varchar NOT NULL,
  start_date date NOT NULL,
  end_date date NOT NULL,
  returns_frequency varchar NOT NULL,
  status varchar NOT NULL,
  metadata jsonb,
  received_date date,
  return_requirement varchar,
  due_date date NOT NULL,
  under_query boolean NOT NULL DEFAULT false,
  created_at timestamp without time zone NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
  updated_at timestamp without time zone
);
CREATE TABLE returns.versions (
  version_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  return_id varchar NOT NULL,
  user_id varchar NOT NULL,
  user_type varchar NOT NULL,
  version_number integer NOT NULL,
  metadata jsonb,
  nil_return boolean NOT NULL DEFAULT false,
  current boolean,
  created_at timestamp without time zone NOT NULL DEFAULT (now() AT TIME ZONE 'UTC')
);
CREATE TABLE returns.lines (
  line_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  version_id uuid NOT NULL,
  substance varchar NOT NULL DEFAULT 'water',
  quantity numeric,
  unit varchar NOT NULL DEFAULT 'm³',
  start_date date NOT NULL,
  end_date date NOT NULL,
  time_period varchar NOT NULL,
  reading_type varchar,
  created_at timestamp without time zone NOT NULL DEFAULT (now() AT TIME ZONE 'UTC')
);

CREATE SCHEMA crm;
CREATE TABLE crm.entity (
  entity_id varchar PRIMARY KEY,
  entity_nm varchar NOT NULL,
  entity_type varchar NOT NULL,
  entity_definition jsonb,
  source varchar,
  created_at timestamp without time zone NOT NULL DEFAULT (now() AT TIME ZONE 'UTC')
);
CREATE TABLE crm.document_header (
  document_id varchar PRIMARY KEY,
  regime_entity_id varchar NOT NULL,
  system_id varchar NOT NULL DEFAULT 'permit-repo',
  system_internal_id varchar NOT NULL,
  system_external_id varchar NOT NULL,
  metadata jsonb,
  company_entity_id varchar,
  document_name varchar,
  date_created timestamp without time zone NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
  date_updated timestamp without time zone,
  date_deleted timestamp without time zone
);

CREATE SCHEMA crm_v2;
CREATE TABLE crm_v2.documents (
  document_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  regime varchar NOT NULL DEFAULT 'water',
  document_type varchar NOT NULL DEFAULT 'abstraction_licence',
  document_ref varchar NOT NULL,
  start_date date NOT NULL,
  end_date date,
  external_id varchar,
  date_created timestamp without time zone NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
  date_updated timestamp without time zone NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
  date_deleted timestamp without time zone
);
CREATE TABLE crm_v2.companies (
  company_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name varchar NOT NULL,
  type varchar NOT NULL,
  company_number varchar,
  organisation_type varchar,
  external_id varchar,
  date_created timestamp without time zone NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
  date_updated timestamp without time zone NOT NULL DEFAULT (now() AT TIME ZONE 'UTC')
);
CREATE TABLE crm_v2.addresses (
  address_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  address_1 varchar,
  address_2 varchar,
  address_3 varchar,
  address_4 varchar,
  town varchar,
  county varchar,
  postcode varchar,
  country varchar NOT NULL DEFAULT 'United Kingdom',
  data_source varchar NOT NULL DEFAULT 'nald',
  uprn bigint,
  date_created timestamp without time zone NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
  date_updated timestamp without time zone NOT NULL DEFAULT (now() AT TIME ZONE 'UTC')
);

CREATE SCHEMA idm;
CREATE TABLE idm.users (
  user_id serial PRIMARY KEY,
  user_name varchar NOT NULL UNIQUE,
  password varchar NOT NULL,
  user_data jsonb,
  application varchar NOT NULL,
  role jsonb,
  enabled boolean NOT NULL DEFAULT true,
  last_login timestamp without time zone,
  date_created timestamp without time zone NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
  date_updated timestamp without time zone NOT NULL DEFAULT (now() AT TIME ZONE 'UTC')
);

CREATE SCHEMA permit;
CREATE TABLE permit.licence (
  licence_id serial PRIMARY KEY,
  licence_status_id integer NOT NULL DEFAULT 1,
  licence_type_id integer NOT NULL DEFAULT 8,
  licence_regime_id integer NOT NULL DEFAULT 1,
  licence_search_key varchar,
  is_public_domain smallint,
  licence_start_dt timestamp without time zone,
  licence_end_dt timestamp without time zone,
  licence_ref varchar NOT NULL,
  licence_data_value jsonb,
  metadata jsonb
);
