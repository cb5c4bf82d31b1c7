import { request as httpRequest } from 'node:http';
import type { SocialOAuth } from '../../src/service/socialOAuth.js';
import { storeOf } from '../../src/service/storeAccess.js';

/**
 * What the security suites look at: the whole stored state as one comparable value, raw HTTP
 * exchanges that fetch would refuse to send, and the marks of a leaked stack trace.
 */

/** How many generated inputs each property tries: modest in CI, `FUZZ_RUNS=2000` for a long hunt. */
export const FUZZ_RUNS = Number(process.env.FUZZ_RUNS ?? 40);

const TABLES = [
  ['social_accounts', 'id'],
  ['oauth_events', 'seq'],
  ['connect_sessions', 'id'],
  ['portal_sessions', 'id'],
  ['api_keys', 'id'],
] as const;

/**
 * Every row of every table, ordered, as JSON. `api_keys.last_used_at` is left out: a valid key
 * presented with a rejected body is still a use (written at most once a minute), not a change of state.
 */
export async function snapshotState(oauth: SocialOAuth): Promise<string> {
  const db = storeOf(oauth).database.db;
  const tables: Record<string, unknown[]> = {};
  for (const [table, key] of TABLES) {
    const rows = (await db.selectFrom(table).selectAll().orderBy(key).execute()) as Record<string, unknown>[];
    tables[table] = rows.map((row) => {
      const { last_used_at: _ignored, ...rest } = row;
      return table === 'api_keys' ? rest : row;
    });
  }
  return JSON.stringify(tables);
}

/** The count of ledger rows (the issue asks for it by name). */
export async function ledgerCount(oauth: SocialOAuth): Promise<number> {
  const row = await storeOf(oauth)
    .database.db.selectFrom('oauth_events')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/**
 * One HTTP exchange with the bytes as given: a path with broken percent-encoding, any method,
 * any header value Node lets through, any body.
 */
export function rawRequest(
  baseUrl: string,
  input: { method: string; path: string; headers?: Record<string, string>; body?: string | Buffer },
): Promise<RawResponse> {
  const url = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const outgoing = httpRequest(
      {
        host: url.hostname,
        port: url.port,
        method: input.method,
        path: input.path,
        headers: {
          ...(input.body === undefined ? {} : { 'content-length': String(Buffer.byteLength(input.body)) }),
          ...input.headers,
        },
      },
      (incoming) => {
        const chunks: Buffer[] = [];
        incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
        incoming.on('end', () =>
          resolve({
            status: incoming.statusCode ?? 0,
            headers: incoming.headers,
            text: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        incoming.on('error', reject);
      },
    );
    outgoing.on('error', reject);
    if (input.body !== undefined) outgoing.write(input.body);
    outgoing.end();
  });
}

/** Lines of a V8 stack trace, a source path or a Node internal: none may reach a client. */
const STACK_MARKS = [
  /\n\s+at\s/,
  /\bat\s+\S+\s+\(.*:\d+:\d+\)/,
  /node_modules/,
  /node:internal/,
  /\/src\/\w+/,
];

export function leaksStackTrace(text: string): boolean {
  return STACK_MARKS.some((mark) => mark.test(text));
}

/** `{error: {code, message}}` with string fields, and nothing that looks like Fastify's own shape. */
export function isErrorShape(text: string): boolean {
  try {
    const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown }; statusCode?: unknown };
    return (
      typeof body.error === 'object' &&
      body.error !== null &&
      typeof body.error.code === 'string' &&
      typeof body.error.message === 'string' &&
      body.statusCode === undefined
    );
  } catch {
    return false;
  }
}
