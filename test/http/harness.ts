import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { Clock } from '../../src/domain/clock.js';
import type { Logger } from '../../src/domain/logger.js';
import type { ProviderName } from '../../src/domain/providerName.js';
import { buildApp } from '../../src/http/app.js';
import type { SocialOAuth, SocialOAuthOptions } from '../../src/service/socialOAuth.js';
import type { ProviderSimulator } from '../../src/simulator/simulator.js';
import type { Consent } from '../../src/simulator/state.js';
import { openTestApp } from '../support/app.js';
import type { TestDatabase } from '../support/databases.js';
import { simulatorEnv, startTestSimulator } from '../support/simulator.js';

/** Where connect flows send the browser back in tests: an allowed origin nobody serves. */
export const RETURN_ORIGIN = 'https://publisher.example';

/**
 * A free port, found by binding port 0 and letting go. The redirect URIs registered with the
 * simulator must name the service's port before the service starts, so it cannot be 0.
 */
export async function reservePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface TestService {
  app: FastifyInstance;
  oauth: SocialOAuth;
  simulator: ProviderSimulator;
  baseUrl: string;
  apiKey: string;
  /** A JSON API call with the API key. */
  api(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<ApiResponse>;
  close(): Promise<void>;
}

export interface ApiResponse {
  status: number;
  headers: Headers;
  // biome-ignore lint/suspicious/noExplicitAny: tests read whatever the API answered.
  body: any;
  text: string;
}

export async function startTestService(
  database: TestDatabase,
  options: {
    clock?: Clock;
    env?: Record<string, string>;
    simulator?: ProviderSimulator;
    fetch?: typeof fetch;
    logger?: Logger;
    /** Issue 13: publishing clients to publish with. */
    publishers?: SocialOAuthOptions['publishers'];
  } = {},
): Promise<TestService> {
  const simulator = options.simulator ?? (await startTestSimulator());
  const port = await reservePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const oauth = await openTestApp(database, {
    clock: options.clock,
    logger: options.logger,
    publishers: options.publishers,
    env: {
      ...simulatorEnv(simulator, baseUrl),
      HOST: '127.0.0.1',
      PORT: String(port),
      PUBLIC_BASE_URL: baseUrl,
      ALLOWED_RETURN_ORIGINS: RETURN_ORIGIN,
      HTTP_BODY_LIMIT_BYTES: '8192',
      ...options.env,
    },
  });
  const app = await buildApp({
    app: oauth,
    fetch: options.fetch,
    notifierBackoff: { baseMs: 20, maxMs: 100 },
  });
  await app.listen({ host: '127.0.0.1', port });
  const { key } = await app.socialOAuth.apiKeys.create('test suite');

  const api = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const response = await fetch(`${baseUrl}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${key}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...headers,
      },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await response.text();
    let parsed: unknown = null;
    try {
      parsed = text === '' ? null : JSON.parse(text);
    } catch {
      parsed = null;
    }
    return { status: response.status, headers: response.headers, body: parsed, text };
  };

  return {
    app,
    oauth,
    simulator,
    baseUrl,
    apiKey: key,
    api,
    async close() {
      // As `serve` stops (src/http/server.ts): requests still running after a while are cut, so a
      // handler waiting on a platform or a lease cannot hold the suite's teardown open.
      const timer = setTimeout(() => app.server.closeAllConnections(), 5_000);
      timer.unref();
      try {
        await app.close();
      } finally {
        clearTimeout(timer);
      }
      await oauth.close();
      if (!options.simulator) await simulator.close();
    },
  };
}

export interface BrowseResult {
  /** The first location outside the service and the simulator (return_to), if the chain got there. */
  exit: URL | null;
  /** The last response inside (an error page, say). */
  status: number;
  text: string;
  /** Every URL visited, in order. */
  visited: string[];
}

/**
 * Follows redirects as a browser would, through the service and the simulator, and stops at the
 * first location elsewhere (return_to). Carries cookies for the service's origin.
 */
export async function browse(
  service: TestService,
  start: string,
  options: { cookie?: string; init?: RequestInit } = {},
): Promise<BrowseResult> {
  const inside = (url: URL) =>
    url.origin === service.baseUrl || url.origin === new URL(service.simulator.url).origin;
  let url = new URL(start);
  let init: RequestInit | undefined = options.init;
  const visited: string[] = [];
  for (let hop = 0; hop < 10; hop++) {
    visited.push(url.toString());
    const headers = new Headers(init?.headers);
    if (options.cookie && url.origin === service.baseUrl) headers.set('cookie', options.cookie);
    const response = await fetch(url, { ...init, headers, redirect: 'manual' });
    const location = response.headers.get('location');
    if (response.status >= 300 && response.status < 400 && location) {
      await response.arrayBuffer();
      const next = new URL(location, url);
      if (!inside(next)) return { exit: next, status: response.status, text: '', visited };
      url = next;
      init = undefined;
      continue;
    }
    return { exit: null, status: response.status, text: await response.text(), visited };
  }
  throw new Error(`too many redirects from ${start}`);
}

/** Runs a connect flow to its end, as the user's browser would; returns where it landed. */
export async function connectThroughBrowser(
  service: TestService,
  input: {
    provider: ProviderName;
    ownerId: string;
    consent?: Consent;
  },
): Promise<BrowseResult & { sessionUrl: string }> {
  if (input.consent) service.simulator.queueConsent(input.provider, input.consent);
  const created = await service.api('POST', '/v1/connect-sessions', {
    provider: input.provider,
    owner_id: input.ownerId,
    return_to: `${RETURN_ORIGIN}/done?flow=1`,
  });
  if (created.status !== 201) throw new Error(`connect session: ${created.status} ${created.text}`);
  return { ...(await browse(service, created.body.url)), sessionUrl: created.body.url };
}

/** A local receiver for outgoing notifications. */
export async function startWebhookReceiver(options: { failFirst?: number } = {}) {
  const received: Array<{ headers: IncomingHttpHeaders; body: string }> = [];
  let failures = options.failFirst ?? 0;
  const server = createServer(async (request, response) => {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    if (failures > 0) {
      failures--;
      response.writeHead(503).end();
      return;
    }
    received.push({ headers: request.headers, body: Buffer.concat(chunks).toString('utf8') });
    response.writeHead(204).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks`,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export async function eventually<T>(check: () => T | Promise<T>, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }
}
