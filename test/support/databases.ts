import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

/**
 * The databases every storage-touching suite runs over, as Kysely's tests run over its dialects:
 * `for (const database of DATABASES) describe(database.kind, …)`.
 *
 * PostgreSQL is the machine's server (PG_TEST_URL, default postgres://postgres@127.0.0.1:5432/test).
 * Each suite gets a database of its own, dropped afterwards. Where the server is missing, the
 * PostgreSQL suites are skipped locally with a warning, but fail in CI (CI=true).
 */
export const ADMIN_URL = process.env.PG_TEST_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export interface TestDatabase {
  kind: 'sqlite' | 'postgres';
  /** DATABASE_URL for this database, or undefined for SQLite. */
  databaseUrl: string | undefined;
  /** DATA_DIR: the SQLite file (and a generated key) live here. */
  dataDir: string;
  drop(): Promise<void>;
}

export interface DatabaseFactory {
  kind: 'sqlite' | 'postgres';
  create(): Promise<TestDatabase>;
}

async function postgresReachable(): Promise<boolean> {
  const client = new pg.Client({ connectionString: ADMIN_URL, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('select 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

const sqlite: DatabaseFactory = {
  kind: 'sqlite',
  async create() {
    const dataDir = mkdtempSync(join(tmpdir(), 'social-oauth-test-'));
    return {
      kind: 'sqlite',
      databaseUrl: undefined,
      dataDir,
      async drop() {
        rmSync(dataDir, { recursive: true, force: true });
      },
    };
  },
};

const postgres: DatabaseFactory = {
  kind: 'postgres',
  async create() {
    const name = `social_oauth_test_${randomBytes(6).toString('hex')}`;
    const admin = new pg.Client({ connectionString: ADMIN_URL });
    await admin.connect();
    try {
      await admin.query(`create database ${name}`);
    } finally {
      await admin.end();
    }
    const url = new URL(ADMIN_URL);
    url.pathname = `/${name}`;
    const dataDir = mkdtempSync(join(tmpdir(), 'social-oauth-test-'));
    return {
      kind: 'postgres',
      databaseUrl: url.toString(),
      dataDir,
      async drop() {
        rmSync(dataDir, { recursive: true, force: true });
        const client = new pg.Client({ connectionString: ADMIN_URL });
        await client.connect();
        try {
          await client.query(`drop database if exists ${name} with (force)`);
        } finally {
          await client.end();
        }
      },
    };
  },
};

async function available(): Promise<DatabaseFactory[]> {
  if (await postgresReachable()) return [sqlite, postgres];
  if (process.env.CI === 'true') {
    throw new Error(`PostgreSQL is required in CI but ${ADMIN_URL} is not reachable.`);
  }
  console.warn(
    `\n[social-oauth tests] PostgreSQL at ${ADMIN_URL} is not reachable: PostgreSQL suites are SKIPPED.\n`,
  );
  return [sqlite];
}

export const DATABASES: DatabaseFactory[] = await available();
