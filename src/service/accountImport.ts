import { z } from 'zod';
import type { Clock } from '../domain/clock.js';
import { isProviderName } from '../platforms/registry.js';
import type { AccountRepository, NewAccount } from '../store/accountRepository.js';
import { isUniqueViolation } from '../store/database.js';
import { LedgerRepository } from '../store/ledgerRepository.js';

/**
 * `accounts import FILE.jsonl`: moving tokens in from an existing system. One JSON object per line.
 * Every line is checked first; if any is bad, the errors are reported by line number and nothing
 * is written. Otherwise all accounts are inserted in one transaction.
 */

/**
 * The dates an imported token can sensibly carry. Earlier or later is a unit or format mistake in
 * the exporting system (`-5` read as 1969, `1e300`), not a token: refused with its line number
 * rather than stored (an expiry in the year 3000 would never be refreshed), or failing the whole
 * import on PostgreSQL's bigint.
 */
export const EARLIEST_IMPORTED_TIME = Date.UTC(2000, 0, 1);
export const LATEST_IMPORTED_TIME = Date.UTC(2100, 0, 1);
/** A token issued in the future would look too young to refresh (Instagram): an hour of skew at most. */
const ISSUED_IN_FUTURE_TOLERANCE_MS = 3600_000;

/**
 * ISO-8601 / RFC 3339: a date, or a date and time with its offset (a time without one would be
 * read in this machine's zone). Date.parse alone is too lenient: it reads "1" as 2001-01-01 and
 * "2026-02-31" as 3 March.
 */
const ISO_DATE =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2}))?$/;
const TIMESTAMP_FORMAT =
  'must be an ISO-8601 date ("2026-03-01" or "2026-03-01T12:00:00Z") or epoch seconds/milliseconds as a number';

function isoToMs(value: string): number | null {
  const text = value.trim().toUpperCase();
  const match = ISO_DATE.exec(text);
  if (!match) return null;
  const [year, month, day, hour, minute, second] = match.slice(1, 7).map((part) => Number(part ?? 0));
  const daysInMonth = new Date(Date.UTC(year!, month!, 0)).getUTCDate();
  if (month! < 1 || month! > 12 || day! < 1 || day! > daysInMonth) return null;
  if (hour! > 23 || minute! > 59 || second! > 59) return null;
  const ms = Date.parse(text);
  return Number.isFinite(ms) ? ms : null;
}

const timestamp = z.union([z.string(), z.number()]).transform((value, ctx) => {
  // Numbers below 1e11 are seconds (1e11 ms is 1973; 1e11 s the year 5138).
  const ms = typeof value === 'number' ? Math.round(value < 1e11 ? value * 1000 : value) : isoToMs(value);
  if (ms === null || !Number.isFinite(ms)) {
    ctx.addIssue({ code: 'custom', message: TIMESTAMP_FORMAT });
    return z.NEVER;
  }
  if (ms < EARLIEST_IMPORTED_TIME || ms >= LATEST_IMPORTED_TIME) {
    ctx.addIssue({ code: 'custom', message: 'must be a time between the years 2000 and 2100' });
    return z.NEVER;
  }
  return ms;
});

// PostgreSQL refuses U+0000 in text: a bad line, not a failed transaction at the end.
const NO_NUL = /^[^\u0000]*$/;
const noNulMessage = 'must not contain NUL characters';
const nonEmpty = z.string().trim().min(1, 'must not be empty').max(4096).regex(NO_NUL, noNulMessage);

export const importLineSchema = z
  .object({
    owner_id: nonEmpty.max(200),
    provider: z.string().refine(isProviderName, { message: 'unknown provider (not a registered platform)' }),
    external_account_id: nonEmpty.max(200),
    display_name: z.string().max(500).regex(NO_NUL, noNulMessage).nullish(),
    access_token: nonEmpty,
    refresh_token: nonEmpty.nullish(),
    expires_at: timestamp.nullish(),
    refresh_token_expires_at: timestamp.nullish(),
    token_issued_at: timestamp.nullish(),
    scopes: z.union([z.array(z.string()), z.string()]).nullish(),
  })
  .strict();

export interface ImportLineError {
  line: number;
  message: string;
}

export interface ImportOutcome {
  imported: number;
  errors: ImportLineError[];
}

/** A UTF-8 byte order mark (as Windows editors and Excel write) is not part of line 1's JSON. */
function withoutByteOrderMark(text: string): string {
  return text.startsWith('\uFEFF') ? text.slice(1) : text;
}

export function parseImportFile(
  text: string,
  now: number = Date.now(),
): { accounts: NewAccount[]; errors: ImportLineError[] } {
  const accounts: NewAccount[] = [];
  const errors: ImportLineError[] = [];
  const seen = new Map<string, number>();
  const lines = withoutByteOrderMark(text).split(/\r?\n/);
  lines.forEach((raw, index) => {
    const line = index + 1;
    if (raw.trim() === '') return;
    let json: unknown;
    try {
      json = JSON.parse(raw);
    } catch {
      errors.push({ line, message: 'not valid JSON' });
      return;
    }
    const parsed = importLineSchema.safeParse(json);
    if (!parsed.success) {
      // Field names and rules only: a value (possibly a token) is never echoed back.
      const message = parsed.error.issues
        .map((issue) => `${issue.path.join('.') || '(line)'}: ${issue.message}`)
        .join('; ');
      errors.push({ line, message });
      return;
    }
    const row = parsed.data;
    if (row.token_issued_at != null && row.token_issued_at > now + ISSUED_IN_FUTURE_TOLERANCE_MS) {
      errors.push({ line, message: 'token_issued_at: must not be in the future' });
      return;
    }
    const key = `${row.provider}/${row.external_account_id}`;
    const earlier = seen.get(key);
    if (earlier !== undefined) {
      errors.push({ line, message: `duplicate of line ${earlier} (${key})` });
      return;
    }
    seen.set(key, line);
    const scopes =
      row.scopes == null
        ? []
        : Array.isArray(row.scopes)
          ? row.scopes
          : row.scopes.split(/[\s,]+/).filter(Boolean);
    accounts.push({
      ownerId: row.owner_id,
      provider: row.provider,
      externalAccountId: row.external_account_id,
      displayName: row.display_name ?? null,
      accessToken: row.access_token,
      refreshToken: row.refresh_token ?? null,
      expiresAt: row.expires_at ?? null,
      refreshTokenExpiresAt: row.refresh_token_expires_at ?? null,
      scopes,
      // Unknown issue time stays unknown: assuming "now" would make an Instagram token with less
      // than 24 hours left look too young to refresh until it died.
      tokenIssuedAt: row.token_issued_at ?? null,
    });
  });
  return { accounts, errors };
}

export async function importAccounts(
  accounts: AccountRepository,
  text: string,
  clock: Clock,
): Promise<ImportOutcome> {
  const now = clock.now();
  const parsed = parseImportFile(text, now);
  if (parsed.errors.length > 0) return { imported: 0, errors: parsed.errors };
  // Accounts already stored are reported like bad lines, before anything is written.
  const lineOf = lineNumbers(text);
  const errors: ImportLineError[] = [];
  for (const [index, account] of parsed.accounts.entries()) {
    if (await accounts.findByExternalId(account.provider, account.externalAccountId)) {
      errors.push({
        line: lineOf[index]!,
        message: `${account.provider}/${account.externalAccountId} is already connected`,
      });
    }
  }
  if (errors.length > 0) return { imported: 0, errors };
  try {
    await accounts.transaction(async (trxAccounts, trxStore) => {
      const ledger = new LedgerRepository(trxStore);
      for (const account of parsed.accounts) {
        const created = await trxAccounts.insert(account, now);
        await ledger.append({ accountId: created.id, type: 'imported', reason: 'import' }, now);
      }
    });
  } catch (error) {
    if (!isUniqueViolation(error)) throw error;
    // Another import of the same accounts (or a connect) committed between our check and our
    // transaction, which rolled back whole: report the accounts it stored, by line.
    for (const [index, account] of parsed.accounts.entries()) {
      if (await accounts.findByExternalId(account.provider, account.externalAccountId)) {
        errors.push({
          line: lineOf[index]!,
          message: `${account.provider}/${account.externalAccountId} was connected by another import or connect while this one ran`,
        });
      }
    }
    if (errors.length === 0) throw error;
    return { imported: 0, errors };
  }
  return { imported: parsed.accounts.length, errors: [] };
}

/** Line numbers of the non-blank lines, in order. */
function lineNumbers(text: string): number[] {
  const numbers: number[] = [];
  withoutByteOrderMark(text)
    .split(/\r?\n/)
    .forEach((raw, index) => {
      if (raw.trim() !== '') numbers.push(index + 1);
    });
  return numbers;
}
