import { z } from 'zod';
import type { Clock } from '../domain/clock.js';
import { isProviderName } from '../platforms/registry.js';
import type { AccountRepository, NewAccount } from '../store/accountRepository.js';
import { LedgerRepository } from '../store/ledgerRepository.js';

/**
 * `accounts import FILE.jsonl`: moving tokens in from an existing system. One JSON object per line.
 * Every line is checked first; if any is bad, the errors are reported by line number and nothing
 * is written. Otherwise all accounts are inserted in one transaction.
 */
const timestamp = z.union([z.string(), z.number()]).transform((value, ctx) => {
  const ms = typeof value === 'number' ? (value < 1e11 ? value * 1000 : value) : Date.parse(value);
  if (!Number.isFinite(ms)) {
    ctx.addIssue({ code: 'custom', message: 'must be an ISO-8601 date or epoch seconds/milliseconds' });
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

export function parseImportFile(text: string): { accounts: NewAccount[]; errors: ImportLineError[] } {
  const accounts: NewAccount[] = [];
  const errors: ImportLineError[] = [];
  const seen = new Map<string, number>();
  const lines = text.split(/\r?\n/);
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
  const parsed = parseImportFile(text);
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
  await accounts.transaction(async (trxAccounts, trxStore) => {
    const ledger = new LedgerRepository(trxStore);
    for (const account of parsed.accounts) {
      const created = await trxAccounts.insert(account, now);
      await ledger.append({ accountId: created.id, type: 'imported', reason: 'import' }, now);
    }
  });
  return { imported: parsed.accounts.length, errors: [] };
}

/** Line numbers of the non-blank lines, in order. */
function lineNumbers(text: string): number[] {
  const numbers: number[] = [];
  text.split(/\r?\n/).forEach((raw, index) => {
    if (raw.trim() !== '') numbers.push(index + 1);
  });
  return numbers;
}
