import { createHash } from 'node:crypto';
import { QuiesceError } from '@quiesce/core';
import type { Pool } from 'pg';

/** The schema quiesce keeps its tables in unless told otherwise. */
export const DEFAULT_SCHEMA = 'quiesce';

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_$]{0,62}$/;

/** Validate a schema name given in options; quoted everywhere it is used. */
export function checkSchemaName(schema: unknown, field = 'schema'): string {
  if (typeof schema !== 'string' || !IDENTIFIER.test(schema)) {
    throw new QuiesceError(
      'INVALID_INPUT',
      `${field}: must be a PostgreSQL identifier (letters, digits, _ or $, at most 63 characters), got ${JSON.stringify(schema)}`,
      { field },
    );
  }
  return schema;
}

export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** The NOTIFY channel of a schema (channels are limited to 63 bytes). */
export function channelFor(schema: string): string {
  const channel = `quiesce:${schema}`;
  return channel.length <= 63
    ? channel
    : `quiesce:${createHash('sha256').update(schema).digest('hex').slice(0, 40)}`;
}

/**
 * The registry's NOTIFY channel, apart from the state's: only a controller confirming a freeze or a
 * thaw listens to it, so acknowledgements never reach every instance.
 */
export function registryChannelFor(schema: string): string {
  const channel = `quiesce:${schema}:instances`;
  return channel.length <= 63
    ? channel
    : `quiesce:${createHash('sha256').update(schema).digest('hex').slice(0, 40)}:instances`;
}

/** NOTIFY payloads are limited to 8000 bytes; a bigger state is announced by version and read. */
const INLINE_STATE_BYTES = 7000;

function ddl(schema: string): string {
  const s = quoteIdent(schema);
  const channel = channelFor(schema).replaceAll("'", "''");
  return `
CREATE SCHEMA IF NOT EXISTS ${s};
CREATE TABLE IF NOT EXISTS ${s}.state (
  key text PRIMARY KEY,
  version bigint NOT NULL CHECK (version >= 0),
  payload jsonb NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS ${s}.instances (
  key text NOT NULL,
  id text NOT NULL,
  acked_version bigint NOT NULL,
  in_flight integer NOT NULL,
  last_seen bigint NOT NULL,
  record jsonb NOT NULL,
  PRIMARY KEY (key, id)
);
CREATE TABLE IF NOT EXISTS ${s}.write_audit (
  window_id text NOT NULL,
  phase text NOT NULL,
  taken_at timestamptz NOT NULL,
  counters jsonb NOT NULL,
  PRIMARY KEY (window_id, phase)
);
CREATE OR REPLACE FUNCTION ${s}.notify_state() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  PERFORM pg_notify('${channel}', json_build_object(
    'kind', 'state', 'key', NEW.key, 'version', NEW.version,
    'state', CASE WHEN octet_length(NEW.payload::text) <= ${INLINE_STATE_BYTES} THEN NEW.payload END)::text);
  RETURN NULL;
END
$fn$;
DROP TRIGGER IF EXISTS state_notify ON ${s}.state;
CREATE TRIGGER state_notify AFTER INSERT OR UPDATE ON ${s}.state
  FOR EACH ROW EXECUTE FUNCTION ${s}.notify_state();
-- v1 announced every registry change on the state channel (every instance heard every
-- acknowledgement); the registry now announces on its own channel, from the upsert, only when asked.
DROP TRIGGER IF EXISTS instances_notify_change ON ${s}.instances;
DROP TRIGGER IF EXISTS instances_notify_ack ON ${s}.instances;
DROP FUNCTION IF EXISTS ${s}.notify_instances();
`;
}

const SCHEMA_VERSION = 2;

/**
 * Create quiesce's schema, tables and notify triggers when they are missing. Runs under an advisory
 * lock so that many instances starting at once do not race on `CREATE ... IF NOT EXISTS`.
 */
export async function ensureSchema(pool: Pool, schema: string): Promise<void> {
  const client = await pool.connect();
  try {
    // Cheap check first: an app whose role may not run DDL works once the tables exist.
    const present = await client.query(
      `SELECT obj_description(to_regnamespace($1)::oid, 'pg_namespace') AS comment,
              to_regclass($2) IS NOT NULL AS has_state, to_regclass($3) IS NOT NULL AS has_audit`,
      [schema, `${quoteIdent(schema)}.state`, `${quoteIdent(schema)}.write_audit`],
    );
    const row = present.rows[0];
    if (row?.has_state && row?.has_audit && row?.comment === `quiesce schema v${SCHEMA_VERSION}`) return;
    await client.query('BEGIN');
    try {
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`quiesce:setup:${schema}`]);
      await client.query(ddl(schema));
      await client.query(`COMMENT ON SCHEMA ${quoteIdent(schema)} IS 'quiesce schema v${SCHEMA_VERSION}'`);
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    }
  } finally {
    client.release();
  }
}
