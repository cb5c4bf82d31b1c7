import type { FastifyPluginAsync } from 'fastify';
import { ACCOUNT_STATUSES, type AccountStatus } from '../../domain/account.js';
import { AccountNotFound } from '../../domain/errors.js';
import type { ProviderName } from '../../domain/providerName.js';
import { usableAccessToken } from '../../service/usableToken.js';
import { warmAccessToken } from '../../service/warmUp.js';
import type { HttpContext } from '../context.js';
import { errorResponses, HttpError } from '../errorCatalog.js';
import { refreshFailure } from '../refreshOutcome.js';
import { accountIdParams, accountSchema, ownerIdSchema, providerSchema, toApiAccount } from '../schemas.js';
import { apiKeyAuth } from '../security.js';

interface ListQuery {
  owner_id?: string;
  status?: AccountStatus;
  provider?: ProviderName;
  limit?: number;
  cursor?: string;
}

/** The accounts API: read state, get a valid token, refresh, revoke, delete. Never a token except /token. */
export const accountsRoutes: FastifyPluginAsync<{ context: HttpContext }> = async (fastify, { context }) => {
  const requireApiKey = apiKeyAuth(context.apiKeys);
  const { oauth, clock, metrics } = context;

  const findAccount = async (id: string) => {
    const account = await oauth.accounts.findById(id);
    if (!account) throw new AccountNotFound(id);
    return account;
  };

  /** Times calls that went to the platform (the token service reports attempts). */
  const timed = async <T extends { account: { provider: string }; result: { attempts: number } | null }>(
    work: () => Promise<T>,
  ): Promise<T> => {
    const started = performance.now();
    const outcome = await work();
    if (outcome.result && outcome.result.attempts > 0) {
      metrics.refreshDuration.observe(
        { provider: outcome.account.provider },
        (performance.now() - started) / 1000,
      );
    }
    return outcome;
  };

  fastify.get<{ Querystring: ListQuery }>(
    '/v1/accounts',
    {
      onRequest: requireApiKey,
      schema: {
        operationId: 'listAccounts',
        summary: 'List accounts (never their tokens)',
        tags: ['accounts'],
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            owner_id: ownerIdSchema,
            status: { type: 'string', enum: [...ACCOUNT_STATUSES] },
            provider: providerSchema,
            limit: { type: 'integer', minimum: 1, maximum: 500, default: 100 },
            cursor: { type: 'string', maxLength: 100, description: 'next_cursor of the previous page' },
          },
        },
        response: {
          200: {
            type: 'object',
            required: ['accounts', 'next_cursor'],
            properties: {
              accounts: { type: 'array', items: accountSchema },
              next_cursor: { type: ['string', 'null'] },
            },
          },
          ...errorResponses(400, 401),
        },
      },
    },
    async (request) => {
      const limit = request.query.limit ?? 100;
      const page = await oauth.accounts.list({
        ownerId: request.query.owner_id,
        status: request.query.status,
        provider: request.query.provider,
        afterId: request.query.cursor,
        limit,
      });
      return {
        accounts: page.map((account) => toApiAccount(account, oauth.missingScopes(account))),
        next_cursor: page.length === limit ? page.at(-1)!.id : null,
      };
    },
  );

  fastify.get<{ Params: { id: string } }>(
    '/v1/accounts/:id',
    {
      onRequest: requireApiKey,
      schema: {
        operationId: 'getAccount',
        summary: 'An account: status, expiry, scopes, last refresh, last error',
        tags: ['accounts'],
        params: accountIdParams,
        response: { 200: accountSchema, ...errorResponses(401, 404) },
      },
    },
    async (request) => {
      const account = await findAccount(request.params.id);
      return toApiAccount(account, oauth.missingScopes(account));
    },
  );

  fastify.post<{ Params: { id: string }; Body: { valid_at?: string } | undefined }>(
    '/v1/accounts/:id/token',
    {
      onRequest: requireApiKey,
      schema: {
        operationId: 'getValidAccessToken',
        summary: 'A valid access token, refreshed first when expired or close to expiry',
        description:
          'Safe to call from many workers at once: one refresh reaches the platform however many ask. ' +
          '`refresh_error` is set when a refresh failed but the current token is still valid.',
        tags: ['accounts'],
        params: accountIdParams,
        body: {
          type: ['object', 'null'],
          additionalProperties: false,
          properties: {
            valid_at: {
              type: 'string',
              format: 'date-time',
              description: 'The token must still be valid at this time (a scheduled post).',
            },
          },
        },
        response: {
          200: {
            type: 'object',
            required: ['access_token', 'token_type', 'expires_at', 'refreshed'],
            properties: {
              access_token: { type: 'string' },
              token_type: { type: 'string', enum: ['Bearer'] },
              expires_at: { type: ['string', 'null'], format: 'date-time' },
              refreshed: { type: 'boolean' },
              refresh_error: { type: ['string', 'null'] },
            },
          },
          ...errorResponses(400, 401, 404, 409, 429, 500, 502, 503),
        },
      },
    },
    async (request) => {
      const validAt = request.body?.valid_at === undefined ? null : Date.parse(request.body.valid_at);
      if (validAt !== null && Number.isNaN(validAt))
        throw new HttpError('invalid_request', 'valid_at is not a date');
      const answer = await timed(() => usableAccessToken(oauth, request.params.id, { validAt }));
      const { account, result } = answer;
      if (answer.accessToken === null) throw refreshFailure(account, result, clock.now());
      return {
        access_token: answer.accessToken,
        token_type: 'Bearer' as const,
        expires_at: account.expiresAt === null ? null : new Date(account.expiresAt).toISOString(),
        refreshed: answer.refreshed,
        refresh_error: result && !result.success ? result.reason : null,
      };
    },
  );

  // Issue 4: warm-up for a scheduled post (see warmAccessToken). No token in the answer: the post
  // asks /token when it runs, and gets the warmed one without waiting for a refresh.
  fastify.post<{ Params: { id: string }; Body: { at: string } }>(
    '/v1/accounts/:id/warm',
    {
      onRequest: requireApiKey,
      schema: {
        operationId: 'warmAccessToken',
        summary: 'Make sure the access token will still be valid at a given time (a scheduled post)',
        description:
          'Refreshes now only when the current token would not last until `at` and a token refreshed now ' +
          'would. `status: too_early` means a refresh now would expire before `at` too (TikTok: 2 hours): ' +
          'call again after `ask_after`.',
        tags: ['accounts'],
        params: accountIdParams,
        body: {
          type: 'object',
          required: ['at'],
          additionalProperties: false,
          properties: {
            at: { type: 'string', format: 'date-time', description: 'When the token will be used.' },
          },
        },
        response: {
          200: {
            type: 'object',
            required: ['status', 'expires_at', 'refreshed', 'ask_after'],
            properties: {
              status: { type: 'string', enum: ['ready', 'too_early'] },
              expires_at: { type: ['string', 'null'], format: 'date-time' },
              refreshed: { type: 'boolean' },
              ask_after: { type: ['string', 'null'], format: 'date-time' },
            },
          },
          ...errorResponses(400, 401, 404, 409, 429, 500, 502, 503),
        },
      },
    },
    async (request) => {
      const at = Date.parse(request.body.at);
      if (Number.isNaN(at)) throw new HttpError('invalid_request', 'at is not a date');
      const warmed = await timed(() => warmAccessToken(oauth, request.params.id, at));
      if (warmed.status === 'failed') throw refreshFailure(warmed.account, warmed.result, clock.now());
      const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
      return {
        status: warmed.status,
        expires_at: iso(warmed.account.expiresAt),
        refreshed: warmed.refreshed,
        ask_after: iso(warmed.askAfter),
      };
    },
  );

  fastify.post<{ Params: { id: string } }>(
    '/v1/accounts/:id/refresh',
    {
      onRequest: requireApiKey,
      schema: {
        operationId: 'refreshAccount',
        summary: 'Refresh through the platform now, whatever the expiry',
        tags: ['accounts'],
        params: accountIdParams,
        response: {
          200: { type: 'object', required: ['account'], properties: { account: accountSchema } },
          ...errorResponses(401, 404, 409, 429, 500, 502, 503),
        },
      },
    },
    async (request) => {
      const { account, result } = await timed(() => oauth.tokens.refreshOAuthToken(request.params.id));
      if (!result?.success) throw refreshFailure(account, result, clock.now());
      return { account: toApiAccount(account, oauth.missingScopes(account)) };
    },
  );

  fastify.post<{ Params: { id: string } }>(
    '/v1/accounts/:id/revoke',
    {
      onRequest: requireApiKey,
      schema: {
        operationId: 'revokeAccount',
        summary: 'Revoke at the platform (where it can) and delete the stored tokens',
        description:
          'The account becomes `revoked` and its tokens are deleted even when the platform has no revocation ' +
          'endpoint (Instagram) or refuses: `platform_revoked` says which.',
        tags: ['accounts'],
        params: accountIdParams,
        response: {
          200: {
            type: 'object',
            required: ['account', 'platform_revoked'],
            properties: { account: accountSchema, platform_revoked: { type: ['boolean', 'null'] } },
          },
          ...errorResponses(401, 404),
        },
      },
    },
    async (request) => {
      const outcome = await context.lifecycle.revoke(request.params.id, 'revoked_by_api');
      return {
        account: toApiAccount(outcome.account, oauth.missingScopes(outcome.account)),
        platform_revoked: outcome.platformRevoked,
      };
    },
  );

  fastify.delete<{ Params: { id: string } }>(
    '/v1/accounts/:id',
    {
      onRequest: requireApiKey,
      schema: {
        operationId: 'deleteAccount',
        summary: 'Revoke at the platform (best effort) and delete the account; its ledger stays',
        tags: ['accounts'],
        params: accountIdParams,
        response: { 204: { type: 'null' }, ...errorResponses(401, 404) },
      },
    },
    async (request, reply) => {
      await context.lifecycle.delete(request.params.id);
      return reply.status(204).send();
    },
  );
};
