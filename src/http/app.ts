import { randomUUID } from 'node:crypto';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  LogController,
} from 'fastify';
import { type AppConfig, requireSecureTransportInProduction } from '../config.js';
import type { SocialOAuth } from '../service/socialOAuth.js';
import { createHttpContext, type HttpContext, type HttpContextOptions } from './context.js';
import { HttpError } from './errorCatalog.js';
import { sendError } from './errorReply.js';
import { containsNul } from './nulText.js';
import { type CollectedRoute, collectRoute } from './openapi.js';
import { drainOversizedBody } from './oversizedBody.js';
import { accountsRoutes } from './routes/accounts.js';
import { connectRoutes } from './routes/connect.js';
import { eventsRoutes } from './routes/events.js';
import { healthRoutes } from './routes/health.js';
import { portalRoutes } from './routes/portal.js';
import { mediaLinkRoutes, publicationsRoutes } from './routes/publications.js';
import { webhookRoutes } from './routes/webhooks.js';
import { redactUrl } from './security.js';

export interface BuildAppOptions extends HttpContextOptions {
  /** Its configuration is the app's: the connect flow and portal sessions it built use it too. */
  app: SocialOAuth;
  /** A pino logger for request and error logs; none by default (tests). */
  logger?: FastifyBaseLogger;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The services behind the routes (tests and the CLI reach them here). */
    socialOAuth: HttpContext;
  }
}

/** A request id from the caller is kept when it is short and plain, so it can join their logs. */
const REQUEST_ID_PATTERN = /^[A-Za-z0-9._:-]{1,64}$/;

/**
 * The HTTP service: one Fastify instance per call, nothing global, so tests can run several side by
 * side on ephemeral ports. The caller owns `app` (the SocialOAuth) and closes it after the server.
 */
export async function buildApp(options: BuildAppOptions): Promise<FastifyInstance> {
  const config = options.app.config;
  // loadConfig checks this already; a configuration built by hand is checked here.
  requireSecureTransportInProduction(config);
  const context = createHttpContext(options.app, config, options);
  const routes: CollectedRoute[] = [];

  const fastify = Fastify({
    ...(options.logger ? { loggerInstance: options.logger } : { logger: false }),
    bodyLimit: config.http.bodyLimitBytes,
    // Request lines carry bearer secrets (connect states, portal links, codes): logged redacted below.
    logController: new LogController({ disableRequestLogging: true }),
    genReqId: (request) => {
      const given = request.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID_PATTERN.test(given) ? given : randomUUID();
    },
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    ajv: { customOptions: { coerceTypes: 'array', removeAdditional: false, allErrors: false } },
    // A URL Fastify cannot decode (`%ED%A0%80`) or an over-long parameter: our error shape, not Fastify's.
    // (These skip the onSend hook, so they get the security headers here.)
    frameworkErrors: (error, request, reply) => {
      setSecurityHeaders(reply, config);
      reply.header('x-request-id', request.id);
      return sendError(error, request, reply);
    },
  });
  fastify.decorate('socialOAuth', context);

  fastify.addHook('onRoute', (route) => {
    collectRoute(routes, route);
    // Every /v1 route needs an API key: a route added without the hook must not ship.
    if (route.url.startsWith('/v1/') && !hasHook(route.onRequest, 'requireApiKey')) {
      throw new Error(`route ${route.method} ${route.url} is missing API-key authentication`);
    }
  });

  // HTML forms (portal) and Meta's webhooks post form-encoded bodies.
  fastify.addContentTypeParser(
    'application/x-www-form-urlencoded',
    { parseAs: 'string' },
    (_request, body, done) => {
      done(null, Object.fromEntries(new URLSearchParams(body as string)));
    },
  );

  // PostgreSQL refuses U+0000 in text: such a value can match no row and must never reach a query
  // (it answered 500 before; found by test/security/hostileInput.test.ts).
  fastify.addHook('preValidation', async (request) => {
    if (containsNul(request.params) || containsNul(request.query) || containsNul(request.body)) {
      throw new HttpError('invalid_request', 'Text must not contain NUL characters');
    }
  });

  fastify.addHook('onSend', async (request, reply, payload) => {
    setSecurityHeaders(reply, config);
    reply.header('x-request-id', request.id);
    return payload;
  });

  fastify.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    context.metrics.httpRequests.inc({ method: request.method, route, status: String(reply.statusCode) });
    request.log.info(
      {
        method: request.method,
        url: redactUrl(request.url),
        statusCode: reply.statusCode,
        ms: Math.round(reply.elapsedTime),
      },
      'request completed',
    );
  });

  // Before any error handler (the portal has its own): a 413 its sender can read.
  fastify.addHook('onError', async (request, reply, error) => {
    if ((error as FastifyError).code === 'FST_ERR_CTP_BODY_TOO_LARGE') drainOversizedBody(request, reply);
  });

  fastify.setErrorHandler((error: FastifyError, request, reply) => sendError(error, request, reply));
  fastify.setNotFoundHandler((request, reply) =>
    sendError(
      new HttpError('not_found', `No route for ${request.method} ${redactUrl(request.url)}`),
      request,
      reply,
    ),
  );

  fastify.addHook('onClose', async () => {
    context.detach();
    await context.notifications?.close(config.http.shutdownTimeoutMs);
  });

  await fastify.register(healthRoutes, { context, routes });
  await fastify.register(connectRoutes, { context });
  await fastify.register(accountsRoutes, { context });
  await fastify.register(eventsRoutes, { context });
  await fastify.register(webhookRoutes, { context });
  await fastify.register(portalRoutes, { context });
  await fastify.register(publicationsRoutes, { context });
  await fastify.register(mediaLinkRoutes, { mediaLinks: context.oauth.mediaLinks });
  return fastify;
}

function hasHook(hooks: unknown, name: string): boolean {
  const list = Array.isArray(hooks) ? hooks : hooks ? [hooks] : [];
  return list.some((hook) => typeof hook === 'function' && hook.name === name);
}

function setSecurityHeaders(reply: FastifyReply, config: AppConfig): void {
  reply.header('x-content-type-options', 'nosniff');
  // Our URLs carry states, codes and portal tokens: never leak them to the next site. (Pages relax
  // this to same-origin, whose URLs carry no secret, so that their forms send an Origin header.)
  if (!reply.hasHeader('referrer-policy')) reply.header('referrer-policy', 'no-referrer');
  reply.header('x-frame-options', 'DENY');
  reply.header('cross-origin-opener-policy', 'same-origin');
  reply.header('cross-origin-resource-policy', 'same-origin');
  if (!reply.hasHeader('content-security-policy')) {
    reply.header('content-security-policy', "default-src 'none'; frame-ancestors 'none'; base-uri 'none'");
  }
  // Answers hold tokens and account state: no cache may keep them.
  if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
  if (config.http.publicBaseUrl.startsWith('https://')) {
    reply.header('strict-transport-security', 'max-age=31536000; includeSubDomains');
  }
}
