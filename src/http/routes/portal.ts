import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { constantTimeEqual } from '../../crypto/opaqueToken.js';
import type { AccountListing, SocialAccount } from '../../domain/account.js';
import type { ProviderName } from '../../domain/providerName.js';
import { isProviderName } from '../../platforms/registry.js';
import type { PortalSession } from '../../service/portalSessions.js';
import type { HttpContext } from '../context.js';
import { readCookie, serializeCookie } from '../cookies.js';
import { errorResponses, HttpError } from '../errorCatalog.js';
import { sendError } from '../errorReply.js';
import { portalErrorPage } from '../portal/errorPage.js';
import { STYLESHEET_PATH, sendMessagePage, sendPage } from '../portal/layout.js';
import { bannerFor, statusPageBody } from '../portal/statusPage.js';
import { PORTAL_CSS } from '../portal/styles.js';
import { linkSchema, ownerIdSchema } from '../schemas.js';
import { apiKeyAuth } from '../security.js';

const COOKIE_NAME = 'social_oauth_portal';

interface PortalVisit {
  session: PortalSession;
  token: string;
}

/**
 * The status page: a publishing backend asks for a short-lived link for one owner; the person
 * opening it sees that owner's accounts and nobody else's. The link's token becomes an HttpOnly
 * cookie (the URL with the token is left at once); every button is a POST with a CSRF token derived
 * from the cookie, and every account action checks the account belongs to the session's owner.
 */
export const portalRoutes: FastifyPluginAsync<{ context: HttpContext }> = async (fastify, { context }) => {
  const { config, portal, oauth, clock } = context;
  const requireApiKey = apiKeyAuth(context.apiKeys);
  const base = new URL(config.http.publicBaseUrl).pathname.replace(/\/$/, '');
  const cookiePath = `${base}/portal`;
  const secureCookie = config.http.publicBaseUrl.startsWith('https://');
  const configured = new Set(oauth.configuredProviders());

  // People get pages, programs get JSON.
  fastify.setErrorHandler((error, request, reply) => {
    if (request.url.startsWith('/v1/')) return sendError(error, request, reply);
    const page = portalErrorPage(error);
    if (page.status >= 500)
      request.log.error({ err: { message: (error as Error).message } }, 'portal request failed');
    reply.headers(page.headers);
    return sendMessagePage(reply, page.status, { title: page.title, text: page.text, tone: 'error' });
  });

  fastify.post<{ Body: { owner_id: string } }>(
    '/v1/portal-sessions',
    {
      onRequest: requireApiKey,
      schema: {
        operationId: 'createPortalSession',
        summary: "A short-lived link to one owner's status page",
        tags: ['portal'],
        body: {
          type: 'object',
          required: ['owner_id'],
          additionalProperties: false,
          properties: { owner_id: ownerIdSchema },
        },
        response: {
          201: linkSchema,
          ...errorResponses(400, 401),
        },
      },
    },
    async (request, reply) => {
      const session = await portal.create(request.body.owner_id);
      return reply.status(201).send({
        url: `${config.http.publicBaseUrl}/portal/s/${session.token}`,
        expires_at: new Date(session.expiresAt).toISOString(),
      });
    },
  );

  fastify.get(STYLESHEET_PATH, { schema: { hide: true } }, async (_request, reply) =>
    reply.type('text/css; charset=utf-8').header('cache-control', 'public, max-age=3600').send(PORTAL_CSS),
  );

  fastify.get<{ Params: { token: string } }>(
    '/portal/s/:token',
    {
      schema: {
        hide: true,
        params: { type: 'object', properties: { token: { type: 'string', maxLength: 100 } } },
      },
    },
    async (request, reply) => {
      const session = await portal.resolve(request.params.token);
      if (!session) throw new HttpError('unauthorized', 'link expired');
      const maxAgeSeconds = (session.expiresAt - clock.now()) / 1000;
      reply.header(
        'set-cookie',
        serializeCookie(COOKIE_NAME, request.params.token, {
          path: cookiePath,
          maxAgeSeconds,
          secure: secureCookie,
        }),
      );
      // Off the URL that carries the token, so it does not stay in the address bar or history.
      return reply.redirect(`${base}/portal`, 303);
    },
  );

  const visit = async (request: FastifyRequest): Promise<PortalVisit> => {
    const token = readCookie(request.headers.cookie, COOKIE_NAME);
    const session = token ? await portal.resolve(token) : null;
    if (!token || !session) throw new HttpError('unauthorized', 'no live portal session');
    return { session, token };
  };

  /** A state-changing POST: same-origin (when the browser says), with the form's CSRF token. */
  const verifiedVisit = async (
    request: FastifyRequest<{ Body: { csrf?: string } }>,
  ): Promise<PortalVisit> => {
    const current = await visit(request);
    const origin = request.headers.origin;
    if (origin !== undefined && origin !== new URL(config.http.publicBaseUrl).origin) {
      throw new HttpError('forbidden', 'cross-origin form');
    }
    const csrf = request.body?.csrf;
    if (typeof csrf !== 'string' || !constantTimeEqual(csrf, portal.csrfTokenFor(current.token))) {
      throw new HttpError('forbidden', 'missing or stale form token');
    }
    return current;
  };

  /** The account, only if it is this owner's; someone else's looks exactly like a missing one. */
  const ownedAccount = async (current: PortalVisit, accountId: string): Promise<SocialAccount> => {
    const account = await oauth.accounts.findById(accountId);
    if (!account || account.ownerId !== current.session.ownerId)
      throw new HttpError('not_found', 'No such account');
    return account;
  };

  fastify.get<{ Querystring: Record<string, string | undefined> }>(
    '/portal',
    {
      schema: {
        hide: true,
        querystring: { type: 'object', additionalProperties: { type: 'string', maxLength: 200 } },
      },
    },
    async (request, reply) => {
      const current = await visit(request);
      const accounts: AccountListing[] = [];
      let afterId: string | undefined;
      for (;;) {
        const page = await oauth.accounts.list({ ownerId: current.session.ownerId, afterId, limit: 200 });
        accounts.push(...page);
        if (page.length < 200) break;
        afterId = page.at(-1)!.id;
      }
      // Issue 13: each account's last few publications.
      const publications = new Map(
        await Promise.all(
          accounts.map(
            async (account) =>
              [account.id, await oauth.publications.list({ accountId: account.id, limit: 5 })] as const,
          ),
        ),
      );
      return sendPage(
        reply,
        200,
        'Connected accounts',
        statusPageBody({
          ownerId: current.session.ownerId,
          accounts,
          configured,
          csrfToken: portal.csrfTokenFor(current.token),
          base,
          now: clock.now(),
          banner: bannerFor(request.query),
          missingScopesOf: (account) => oauth.missingScopes(account),
          publications,
        }),
      );
    },
  );

  const formBody = {
    type: 'object',
    properties: { csrf: { type: 'string', maxLength: 200 }, provider: { type: 'string', maxLength: 32 } },
  } as const;

  fastify.post<{ Body: { csrf?: string; provider?: string } }>(
    '/portal/connect',
    { schema: { hide: true, body: formBody } },
    async (request, reply) => {
      const current = await verifiedVisit(request);
      const provider = request.body.provider;
      if (!provider || !isProviderName(provider)) throw new HttpError('invalid_request', 'Unknown platform');
      const started = await context.connect.start({
        provider: provider as ProviderName,
        ownerId: current.session.ownerId,
        returnTo: `${config.http.publicBaseUrl}/portal`,
      });
      return reply.redirect(started.url, 303);
    },
  );

  fastify.post<{ Params: { id: string }; Body: { csrf?: string } }>(
    '/portal/accounts/:id/revoke',
    { schema: { hide: true, body: formBody } },
    async (request, reply) => {
      const current = await verifiedVisit(request);
      const account = await ownedAccount(current, request.params.id);
      await context.lifecycle.revoke(account.id, 'revoked_in_portal');
      return reply.redirect(`${base}/portal?notice=revoked`, 303);
    },
  );

  fastify.post<{ Params: { id: string }; Body: { csrf?: string } }>(
    '/portal/accounts/:id/refresh',
    { schema: { hide: true, body: formBody } },
    async (request, reply) => {
      const current = await verifiedVisit(request);
      const account = await ownedAccount(current, request.params.id);
      const { result } = await oauth.tokens.refreshOAuthToken(account.id);
      return reply.redirect(`${base}/portal?notice=${result?.success ? 'refreshed' : 'refresh_failed'}`, 303);
    },
  );
};

export type { FastifyReply };
