import type { FastifyPluginAsync } from 'fastify';
import { isProviderName, platformLabel } from '../../platforms/registry.js';
import type { StateProblem } from '../../service/connectFlow.js';
import type { HttpContext } from '../context.js';
import { errorResponses, HttpError } from '../errorCatalog.js';
import { sendMessagePage } from '../portal/layout.js';
import { linkSchema, ownerIdSchema, providerSchema } from '../schemas.js';
import { apiKeyAuth } from '../security.js';

const STATE_PAGES: Record<StateProblem, { title: string; text: string }> = {
  unknown: {
    title: 'This connect link is not valid',
    text: 'The link is unknown or damaged. Start connecting again from the app that sent you here.',
  },
  reused: {
    title: 'This connect link was already used',
    text: 'Each connect link works once. Start connecting again from the app that sent you here.',
  },
  expired: {
    title: 'This connect link has expired',
    text: 'Connect links are short-lived for your safety. Start connecting again from the app that sent you here.',
  },
  wrong_provider: {
    title: 'This connect link is not valid here',
    text: 'The answer came back for a different platform than the one the link was made for. Nothing was stored.',
  },
};

/** Connect sessions (API) and the browser side of the flow: the hop to the platform and its callback. */
export const connectRoutes: FastifyPluginAsync<{ context: HttpContext }> = async (fastify, { context }) => {
  const requireApiKey = apiKeyAuth(context.apiKeys);

  fastify.post<{ Body: { provider: string; owner_id: string; return_to?: string } }>(
    '/v1/connect-sessions',
    {
      onRequest: requireApiKey,
      schema: {
        operationId: 'createConnectSession',
        summary: 'Start connecting a platform account for an owner',
        description:
          "Returns a short-lived, single-use `url` to open in the user's browser. After consent the browser is " +
          'sent to `return_to` with `status` (`connected`, `reconnected` or `error`), `provider`, and `account_id` or `error`.',
        tags: ['connect'],
        body: {
          type: 'object',
          required: ['provider', 'owner_id'],
          additionalProperties: false,
          properties: {
            provider: providerSchema,
            owner_id: ownerIdSchema,
            return_to: {
              type: 'string',
              minLength: 1,
              maxLength: 2000,
              description: 'Must be on ALLOWED_RETURN_ORIGINS.',
            },
          },
        },
        response: {
          201: linkSchema,
          ...errorResponses(400, 401),
        },
      },
    },
    async (request, reply) => {
      if (!isProviderName(request.body.provider)) throw new HttpError('invalid_request', 'unknown provider');
      const session = await context.connect.start({
        provider: request.body.provider,
        ownerId: request.body.owner_id,
        returnTo: request.body.return_to ?? null,
      });
      return reply
        .status(201)
        .send({ url: session.url, expires_at: new Date(session.expiresAt).toISOString() });
    },
  );

  fastify.get<{ Params: { state: string } }>(
    '/connect/:state',
    {
      schema: {
        hide: true,
        params: { type: 'object', properties: { state: { type: 'string', maxLength: 200 } } },
      },
    },
    async (request, reply) => {
      const target = await context.connect.consentUrl(request.params.state);
      if (!(target instanceof URL))
        return sendMessagePage(reply, 400, { ...STATE_PAGES[target.problem], tone: 'error' });
      return reply.redirect(target.toString(), 302);
    },
  );

  fastify.get<{ Querystring: { status?: string; error?: string; provider?: string; missing?: string } }>(
    '/connect/done',
    { schema: { hide: true } },
    async (request, reply) => {
      const { status, error, provider, missing } = request.query;
      const platform = provider && isProviderName(provider) ? platformLabel(provider) : 'your account';
      if (status === 'connected' || status === 'reconnected') {
        return sendMessagePage(reply, 200, {
          title: `${platform} is connected`,
          text: 'You can close this window and go back to the app.',
          tone: 'success',
        });
      }
      return sendMessagePage(reply, 200, {
        title: `${platform} was not connected`,
        text: describeConnectError(error, missing),
        tone: 'error',
      });
    },
  );

  fastify.get<{ Params: { provider: string }; Querystring: Record<string, string | undefined> }>(
    '/oauth/:provider/callback',
    {
      schema: {
        hide: true,
        params: { type: 'object', properties: { provider: { type: 'string', maxLength: 32 } } },
        querystring: { type: 'object', additionalProperties: { type: 'string', maxLength: 4096 } },
      },
    },
    async (request, reply) => {
      const { provider } = request.params;
      if (!isProviderName(provider)) throw new HttpError('not_found', 'unknown platform');
      const query = request.query;
      // Instagram says error=access_denied with error_reason=user_denied; the others error=access_denied.
      const outcome = await context.connect.complete({
        provider,
        state: query.state,
        code: query.code,
        error: query.error ?? (query.error_reason ? 'access_denied' : undefined),
      });
      if (outcome.kind === 'invalid_state') {
        context.metrics.connects.inc({ provider, outcome: `state_${outcome.problem}` });
        return sendMessagePage(reply, 400, { ...STATE_PAGES[outcome.problem], tone: 'error' });
      }
      const result = outcome.result;
      context.metrics.connects.inc({
        provider,
        outcome: result.status === 'error' ? result.error : result.status,
      });
      // 303: the browser follows with a GET whatever brought it here.
      return reply.redirect(outcome.location, 303);
    },
  );
};

/** Each platform's label, from its folder (src/platforms/<name>/index.ts). */

export function describeConnectError(error: string | undefined, missing?: string): string {
  switch (error) {
    case 'missing_scopes':
      return (
        `Not every permission was granted${missing ? ` (missing: ${missing.split(',').join(', ')})` : ''}. ` +
        "Nothing was stored. Connect again and leave every permission ticked on the platform's consent page."
      );
    case 'access_denied':
      return "Permission was not given on the platform's consent page. Nothing was stored.";
    case 'account_owned_by_another_owner':
      return 'That platform account is already connected to someone else here. Nothing was stored.';
    case 'provider_error':
      return 'The platform did not answer as expected. Please try again in a moment.';
    case 'provider_not_configured':
      return 'This platform is not set up on this service.';
    default:
      return 'The platform did not complete the authorization. Please start again.';
  }
}
