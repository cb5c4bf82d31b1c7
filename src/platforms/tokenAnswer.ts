import { ProviderResponseInvalid } from '../domain/errors.js';
import type { ProviderName } from '../domain/providerName.js';
import { type LifetimeNote, settleLifetime } from '../domain/tokenLifetime.js';
import type { ProviderCapabilities, RefreshedTokens } from './provider.js';
import { splitScopes } from './scopes.js';

/** Where a platform's token answer keeps each value (the names differ a little per platform). */
export interface TokenAnswerFields {
  refreshTokenLifetime: string;
  /**
   * The refresh-token lifetime is normally absent (Google sends it only for time-limited grants):
   * absent then means "no known end", not "unreadable".
   */
  refreshTokenLifetimeOptional: boolean;
  externalAccountId: string | null;
}

/**
 * Reads a 2xx token answer field by field, so that one odd field never costs the others: a new
 * refresh token in an answer whose `expires_in` is missing, a string or 10^12 is still the living
 * grant on a rotating platform, and dropping it loses the account (issue 10). Lifetimes go through
 * the platform's documented limits (see src/domain/tokenLifetime.ts), each replacement noted.
 *
 * Throws ProviderResponseInvalid (with the 2xx status) only when the answer carries no usable
 * token at all: that is the answer nobody can act on, and the caller decides what it costs.
 */
export function readTokenAnswer(
  provider: ProviderName,
  capabilities: ProviderCapabilities,
  answer: { status: number; json: unknown },
  fields: TokenAnswerFields,
  label: string,
): RefreshedTokens {
  const body = answer.json;
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new ProviderResponseInvalid(`${label} answered with a body that is not a JSON object`, {
      provider,
      httpStatus: answer.status,
    });
  }
  const record = body as Record<string, unknown>;
  const accessToken = usableToken(record.access_token);
  const refreshToken = usableToken(record.refresh_token);
  if (accessToken === null && refreshToken === null) {
    throw new ProviderResponseInvalid(`${label} answered without a usable token (fields: access_token)`, {
      provider,
      httpStatus: answer.status,
    });
  }
  const notes: LifetimeNote[] = [];
  let expiresInSeconds: number | null = null;
  if (accessToken !== null) {
    const settled = settleLifetime('expires_in', record.expires_in, capabilities.accessTokenLifetime);
    expiresInSeconds = settled.seconds;
    if (settled.note) notes.push(settled.note);
  }
  let refreshTokenExpiresInSeconds: number | null = null;
  const reported = record[fields.refreshTokenLifetime];
  const refreshLimits = capabilities.refreshTokenLifetime;
  if (
    refreshToken !== null &&
    refreshLimits !== null &&
    !(fields.refreshTokenLifetimeOptional && (reported === undefined || reported === null))
  ) {
    const settled = settleLifetime(fields.refreshTokenLifetime, reported, refreshLimits);
    refreshTokenExpiresInSeconds = settled.seconds;
    if (settled.note) notes.push(settled.note);
  }
  const externalId = fields.externalAccountId === null ? undefined : record[fields.externalAccountId];
  return {
    accessToken,
    refreshToken,
    expiresInSeconds,
    refreshTokenExpiresInSeconds,
    // Unreadable scopes say nothing: the stored ones stay.
    scopes: typeof record.scope === 'string' ? splitScopes(record.scope, capabilities.scopeSeparator) : null,
    externalAccountId: typeof externalId === 'string' && externalId !== '' ? externalId : null,
    lifetimeNotes: notes,
  };
}

function usableToken(value: unknown): string | null {
  // A token is an opaque printable string; whitespace or control characters mean a broken answer.
  return typeof value === 'string' && value !== '' && /^[\x21-\x7e]+$/.test(value) ? value : null;
}
