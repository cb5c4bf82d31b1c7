import type { AccountListing, SocialAccount } from '../domain/account.js';
import { ACCOUNT_STATUSES, toAccountListing } from '../domain/account.js';
import { OAUTH_EVENT_TYPES, type OAuthEvent } from '../domain/ledger.js';
import { grantEndsAt } from '../domain/refreshPolicy.js';
import { capabilitiesOf } from '../platforms/capabilities.js';
import { PROVIDER_NAMES } from '../platforms/registry.js';

/**
 * The API's shapes, snake_case like its requests. Response schemas double as a filter: Fastify
 * serializes only the listed properties, so a token can never ride along in an account.
 */
const isoOrNull = { type: ['string', 'null'], format: 'date-time' } as const;

// The registry's live list (never copied), so a platform registered before the app is built is accepted.
export const providerSchema = { type: 'string', enum: PROVIDER_NAMES } as const;
export const ownerIdSchema = { type: 'string', minLength: 1, maxLength: 200 } as const;

/** A link for a user to open (connect or status page) and when it stops working. */
export const linkSchema = {
  type: 'object',
  required: ['url', 'expires_at'],
  properties: { url: { type: 'string' }, expires_at: { type: 'string', format: 'date-time' } },
} as const;

export const accountSchema = {
  type: 'object',
  required: ['id', 'owner_id', 'provider', 'external_account_id', 'status', 'scopes'],
  properties: {
    id: { type: 'string' },
    owner_id: { type: 'string' },
    provider: providerSchema,
    external_account_id: { type: 'string' },
    display_name: { type: ['string', 'null'] },
    status: { type: 'string', enum: [...ACCOUNT_STATUSES] },
    expires_at: { ...isoOrNull, description: 'When the access token expires.' },
    refresh_token_expires_at: {
      ...isoOrNull,
      description:
        "When the refresh token expires, where the platform says (TikTok's refresh_expires_in, Google's refresh_token_expires_in).",
    },
    grant_ends_at: {
      ...isoOrNull,
      description:
        'When the connection ends whatever is refreshed: a Google app in "Testing" status gets refresh tokens that die after 7 days. ' +
        'The user must reconnect before then. null when keeping the account alive is possible.',
    },
    scopes: { type: 'array', items: { type: 'string' } },
    missing_scopes: {
      type: 'array',
      items: { type: 'string' },
      description:
        'Required scopes (<PROVIDER>_REQUIRED_SCOPES) the account does not hold: it cannot publish until reconnected with every permission granted.',
    },
    has_refresh_token: { type: 'boolean' },
    last_refresh_at: isoOrNull,
    last_error: { type: ['string', 'null'] },
    created_at: { type: 'string', format: 'date-time' },
    updated_at: { type: 'string', format: 'date-time' },
  },
} as const;

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** `missingScopes`: what the account lacks of the required scopes (RequiredScopes.missingScopes). */
export function toApiAccount(from: SocialAccount | AccountListing, missingScopes: string[]) {
  const account = toAccountListing(from);
  const capabilities = capabilitiesOf(account.provider);
  const grantEnd = grantEndsAt(
    {
      hasCredential: capabilities.refreshesAccessTokenItself
        ? account.hasAccessToken
        : account.hasRefreshToken,
      refreshTokenExpiresAt: account.refreshTokenExpiresAt,
    },
    capabilities,
  );
  return {
    id: account.id,
    owner_id: account.ownerId,
    provider: account.provider,
    external_account_id: account.externalAccountId,
    display_name: account.displayName,
    status: account.status,
    expires_at: iso(account.expiresAt),
    refresh_token_expires_at: iso(account.refreshTokenExpiresAt),
    grant_ends_at: iso(grantEnd),
    scopes: account.scopes,
    missing_scopes: missingScopes,
    has_refresh_token: account.hasRefreshToken,
    last_refresh_at: iso(account.lastRefreshAt),
    last_error: account.lastError,
    created_at: new Date(account.createdAt).toISOString(),
    updated_at: new Date(account.updatedAt).toISOString(),
  };
}

export const eventSchema = {
  type: 'object',
  required: ['id', 'seq', 'account_id', 'type', 'created_at'],
  properties: {
    id: { type: 'string' },
    seq: { type: 'integer' },
    account_id: { type: 'string' },
    type: { type: 'string', enum: [...OAUTH_EVENT_TYPES] },
    reason: { type: ['string', 'null'] },
    provider_error_code: { type: ['string', 'null'] },
    detail: { type: ['object', 'null'], additionalProperties: true },
    created_at: { type: 'string', format: 'date-time' },
  },
} as const;

export function toApiEvent(event: OAuthEvent) {
  return {
    id: event.id,
    seq: event.seq,
    account_id: event.accountId,
    type: event.type,
    reason: event.reason,
    provider_error_code: event.providerErrorCode,
    detail: event.detail,
    created_at: new Date(event.createdAt).toISOString(),
  };
}

export const accountIdParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', minLength: 1, maxLength: 100 } },
} as const;
