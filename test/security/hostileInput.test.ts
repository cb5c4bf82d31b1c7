import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signMetaRequest, signTikTokBody } from '../../src/http/webhookSignatures.js';
import { importAccounts, parseImportFile } from '../../src/service/accountImport.js';
import { storeOf } from '../../src/service/storeAccess.js';
import { connectThroughBrowser, RETURN_ORIGIN, startTestService, type TestService } from '../http/harness.js';
import { DATABASES, type TestDatabase } from '../support/databases.js';
import { SIM_CLIENTS } from '../support/simulator.js';
import {
  FUZZ_RUNS,
  isErrorShape,
  leaksStackTrace,
  type RawResponse,
  rawRequest,
  snapshotState,
} from './observe.js';

/**
 * Issue 5, item 4: property-based hostile input over every HTTP route and the import file.
 * For every generated request: no 5xx, no stack trace, the JSON error shape on JSON routes, and
 * when the input is rejected, not one row of any table changed. `FUZZ_RUNS` sets the runs per
 * property (40 by default; the figures in docs/RELIABILITY.md were taken with more).
 */

/** Pieces a hostile path segment is made of: encodings Fastify must refuse or decode safely. */
const PATH_PIECES = [
  '%',
  '%0',
  '%00',
  '%ED%A0%80',
  '%C0%AF',
  '%2F',
  '%2e%2e',
  '..',
  '/',
  '//',
  '?',
  '#',
  ';',
  '%20',
  '+',
  '*',
  '\u00e9',
  '%F0%9F%92%A9',
  "'",
  '"',
  '<x-fuzz>',
  'a'.repeat(120),
  'sok_000000000000_',
  'null',
  '0',
  '-1',
];

const pathSegment = fc
  .array(fc.oneof(fc.constantFrom(...PATH_PIECES), fc.stringMatching(/^[A-Za-z0-9_-]{1,12}$/)), {
    minLength: 1,
    maxLength: 4,
  })
  .map((pieces) => pieces.join('').replace(/[^\x21-\x7e]/g, encodeURIComponent));

/** Strings a field may hold: unicode, NUL, markup, numbers as text, very long, JSON-looking. */
const hostileString = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom(
    '',
    ' ',
    '\u0000',
    'a\u0000b',
    '\ud800',
    '<x-fuzz>',
    '"><x-fuzz>',
    'javascript:alert(1)',
    '//evil.example',
    'https://evil.example/steal',
    `${RETURN_ORIGIN}.evil.example/`,
    `${RETURN_ORIGIN}@evil.example/`,
    'tiktok',
    'instagram',
    'youtube',
    '2026-13-45T99:99:99Z',
    '1e309',
    '__proto__',
    'constructor',
    '{"$ne": null}',
    "' OR 1=1 --",
    'x'.repeat(5000),
  ),
);

const hostileJson: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.dictionary(
    fc.constantFrom(
      'provider',
      'owner_id',
      'return_to',
      'valid_at',
      'at',
      '__proto__',
      'constructor',
      'extra',
      'csrf',
    ),
    fc.oneof(hostileString, fc.jsonValue({ maxDepth: 2 })),
    { maxKeys: 5 },
  ),
);

const CONTENT_TYPES = [
  'application/json',
  'application/json; charset=utf-8',
  'application/json; charset=utf-16',
  'application/x-www-form-urlencoded',
  'text/plain',
  'multipart/form-data; boundary=x',
  'application/xml',
  '',
];

/** A body as bytes: JSON of hostile values, broken JSON, a form, raw text, or nothing. */
const hostileBody = fc.oneof(
  hostileJson.map((value) => JSON.stringify(value) ?? 'null'),
  fc.string({ maxLength: 60 }),
  hostileString,
  fc.constantFrom('{', '[', '{"a":', '\u0000', '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[', 'x'.repeat(9000)),
  fc
    .dictionary(fc.string({ maxLength: 8 }), hostileString, { maxKeys: 4 })
    .map((fields) => new URLSearchParams(fields).toString()),
);

const V1_ROUTES: Array<{ method: string; path: (id: string) => string }> = [
  { method: 'POST', path: () => '/v1/connect-sessions' },
  { method: 'POST', path: () => '/v1/portal-sessions' },
  { method: 'GET', path: () => '/v1/accounts' },
  { method: 'GET', path: () => '/v1/events' },
  { method: 'GET', path: (id) => `/v1/accounts/${id}` },
  { method: 'DELETE', path: (id) => `/v1/accounts/${id}` },
  { method: 'POST', path: (id) => `/v1/accounts/${id}/token` },
  { method: 'POST', path: (id) => `/v1/accounts/${id}/warm` },
  { method: 'POST', path: (id) => `/v1/accounts/${id}/refresh` },
  { method: 'POST', path: (id) => `/v1/accounts/${id}/revoke` },
  { method: 'PUT', path: (id) => `/v1/accounts/${id}` },
  { method: 'PATCH', path: () => '/v1/accounts' },
];

const QUERY_KEYS = [
  'owner_id',
  'status',
  'provider',
  'limit',
  'cursor',
  'account_id',
  'type',
  'x',
  'limit[]',
  '__proto__',
];

const hostileQuery = fc
  .array(fc.tuple(fc.constantFrom(...QUERY_KEYS), hostileString), { maxLength: 4 })
  .map((pairs) => {
    const params = new URLSearchParams();
    for (const [key, value] of pairs) params.append(key, value);
    const text = params.toString();
    return text === '' ? '' : `?${text}`;
  });

/** encodeURIComponent throws on a lone surrogate; a browser would send U+FFFD. */
const safeEncode = (text: string) =>
  encodeURIComponent(
    text.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd'),
  );

function checkResponse(response: RawResponse, options: { json: boolean }): void {
  expect(response.status, response.text.slice(0, 300)).toBeLessThan(500);
  expect(leaksStackTrace(response.text), response.text.slice(0, 300)).toBe(false);
  // Nothing a request sent comes back as live markup. (JSON may quote it: application/json with
  // nosniff and `default-src 'none'` is never rendered.)
  const type = String(response.headers['content-type'] ?? '');
  if (type.startsWith('text/html')) expect(response.text).not.toContain('<x-fuzz');
  else if (response.text.length > 0) expect(type).toMatch(/^(application\/json|text\/css|text\/plain)/);
  expect(response.headers['x-content-type-options']).toBe('nosniff');
  if (options.json && response.status >= 400) {
    expect(isErrorShape(response.text), response.text.slice(0, 300)).toBe(true);
  }
}

for (const factory of DATABASES) {
  describe(`hostile input (${factory.kind})`, () => {
    let database: TestDatabase;
    let service: TestService;
    let revokedKey: string;
    const accountIds: string[] = [];
    let otherOwnersAccount: string;
    let portal: { cookie: string; csrf: string };

    beforeAll(async () => {
      database = await factory.create();
      service = await startTestService(database);
      for (const [provider, externalAccountId] of [
        ['tiktok', 'fuzz-tt'],
        ['instagram', '17841400000009001'],
        ['youtube', 'UCfuzz'],
      ] as const) {
        const landed = await connectThroughBrowser(service, {
          provider,
          ownerId: 'fuzz-owner',
          consent: { externalAccountId },
        });
        accountIds.push(landed.exit!.searchParams.get('account_id')!);
      }
      const other = await connectThroughBrowser(service, {
        provider: 'tiktok',
        ownerId: 'someone-else',
        consent: { externalAccountId: 'other-tt' },
      });
      otherOwnersAccount = other.exit!.searchParams.get('account_id')!;
      const revoked = await service.app.socialOAuth.apiKeys.create('revoked');
      await service.app.socialOAuth.apiKeys.revoke(revoked.summary.id);
      revokedKey = revoked.key;
      const created = await service.api('POST', '/v1/portal-sessions', { owner_id: 'fuzz-owner' });
      const opened = await fetch(created.body.url, { redirect: 'manual' });
      const cookie = opened.headers.get('set-cookie')!.split(';')[0]!;
      const html = await (await fetch(`${service.baseUrl}/portal`, { headers: { cookie } })).text();
      portal = { cookie, csrf: /name="csrf" value="([^"]+)"/.exec(html)![1]! };
    });
    afterAll(async () => {
      await service?.close();
      await database?.drop();
    });

    it('/v1 routes: any method, path, query, body, content type and key → 4xx with the error shape, nothing changed', async () => {
      const auth = fc.constantFrom('valid', 'none', 'garbage', 'revoked', 'wrong-secret', 'basic');
      const id = fc.oneof(pathSegment, fc.constantFrom('00000000-0000-0000-0000-000000000000'));
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom(...V1_ROUTES),
          id,
          hostileQuery,
          fc.option(hostileBody, { nil: undefined }),
          fc.constantFrom(...CONTENT_TYPES),
          auth,
          async (route, segment, query, body, contentType, authKind) => {
            const key = service.apiKey;
            const authorization: Record<string, string> = {
              valid: `Bearer ${key}`,
              none: '',
              garbage: 'Bearer sok_zzzz',
              revoked: `Bearer ${revokedKey}`,
              'wrong-secret': `Bearer ${key.slice(0, -4)}AAAA`,
              basic: `Basic ${Buffer.from(key).toString('base64')}`,
            };
            const headers: Record<string, string> = {};
            if (authorization[authKind]) headers.authorization = authorization[authKind]!;
            if (contentType && body !== undefined) headers['content-type'] = contentType;
            const before = await snapshotState(service.oauth);
            const response = await rawRequest(service.baseUrl, {
              method: route.method,
              path: `${route.path(segment)}${query}`,
              headers,
              body,
            });
            checkResponse(response, { json: true });
            // Without a valid key, never an answer (401, or 400/404 for a URL no route takes).
            if (authKind !== 'valid') expect(response.status).toBeGreaterThanOrEqual(400);
            // Only a fresh connect or portal link may be created by an accepted request; the ids
            // generated here name no account, so nothing else can change.
            if (response.status >= 400 || !route.path('x').includes('-sessions')) {
              expect(await snapshotState(service.oauth)).toBe(before);
            }
          },
        ),
        { numRuns: FUZZ_RUNS * 4 },
      );
    });

    it('/v1 account routes on real accounts with hostile bodies: rejected ones change nothing', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom(...accountIds, otherOwnersAccount),
          fc.constantFrom('token', 'warm'),
          hostileBody,
          fc.constantFrom(...CONTENT_TYPES),
          async (accountId, action, body, contentType) => {
            const before = await snapshotState(service.oauth);
            const response = await rawRequest(service.baseUrl, {
              method: 'POST',
              path: `/v1/accounts/${accountId}/${action}`,
              headers: {
                authorization: `Bearer ${service.apiKey}`,
                ...(contentType ? { 'content-type': contentType } : {}),
              },
              body,
            });
            checkResponse(response, { json: true });
            if (response.status >= 400) expect(await snapshotState(service.oauth)).toBe(before);
          },
        ),
        { numRuns: FUZZ_RUNS },
      );
    });

    it('/oauth/:provider/callback and /connect/:state: any parameters → an error page, no state spent, nothing stored', async () => {
      const param = fc.tuple(
        fc.constantFrom(
          'state',
          'code',
          'error',
          'error_reason',
          'error_description',
          'scope',
          'return_to',
          'redirect_uri',
          'iss',
          'x',
        ),
        hostileString,
      );
      await fc.assert(
        fc.asyncProperty(
          fc.oneof(fc.constantFrom('tiktok', 'instagram', 'youtube'), pathSegment),
          fc.array(param, { maxLength: 6 }),
          pathSegment,
          async (provider, pairs, state) => {
            const query = new URLSearchParams(pairs).toString();
            const before = await snapshotState(service.oauth);
            const callback = await rawRequest(service.baseUrl, {
              method: 'GET',
              path: `/oauth/${provider}/callback?${query}`,
            });
            checkResponse(callback, { json: false });
            // No state is known, so no flow can finish: the browser is never sent anywhere.
            expect(callback.status).toBeGreaterThanOrEqual(400);
            expect(callback.headers.location).toBeUndefined();
            const consent = await rawRequest(service.baseUrl, { method: 'GET', path: `/connect/${state}` });
            checkResponse(consent, { json: false });
            expect(consent.status).toBeGreaterThanOrEqual(400);
            const done = await rawRequest(service.baseUrl, { method: 'GET', path: `/connect/done?${query}` });
            checkResponse(done, { json: false });
            expect(await snapshotState(service.oauth)).toBe(before);
          },
        ),
        { numRuns: FUZZ_RUNS * 2 },
      );
    });

    it('Meta signed_request: forged, malformed or validly signed nonsense → never a 5xx, nothing changed', async () => {
      const secret = SIM_CLIENTS.instagram.clientSecret;
      const payload = fc.record(
        {
          algorithm: fc.oneof(fc.constant('HMAC-SHA256'), hostileString),
          user_id: fc.oneof(
            fc.bigInt({ min: 0n, max: 10n ** 20n }).map(String),
            fc.integer({ min: 0, max: 2 ** 31 }),
            fc.double(),
            hostileString,
          ),
          issued_at: fc.oneof(fc.integer(), fc.double(), hostileString),
        },
        { requiredKeys: [] },
      );
      const signedRequest = fc.oneof(
        hostileString,
        payload.map((p) => signMetaRequest(p, secret)),
        payload.map((p) => signMetaRequest(p, 'not-the-app-secret')),
        fc.jsonValue().map((value) => signMetaRequest({ value } as Record<string, unknown>, secret)),
        fc
          .tuple(fc.string({ maxLength: 30 }), fc.string({ maxLength: 30 }))
          .map(([a, b]) => `${Buffer.from(a).toString('base64url')}.${Buffer.from(b).toString('base64url')}`),
      );
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom('/webhooks/instagram/deauthorize', '/webhooks/instagram/data-deletion'),
          signedRequest,
          fc.constantFrom('form', 'json', 'garbage-form', 'none'),
          async (path, signed, encoding) => {
            const body =
              encoding === 'form'
                ? new URLSearchParams({ signed_request: signed }).toString()
                : encoding === 'json'
                  ? JSON.stringify({ signed_request: signed })
                  : encoding === 'garbage-form'
                    ? `signed_request=${signed}&signed_request=${signed}`
                    : undefined;
            const before = await snapshotState(service.oauth);
            const response = await rawRequest(service.baseUrl, {
              method: 'POST',
              path,
              headers:
                encoding === 'none'
                  ? {}
                  : {
                      'content-type':
                        encoding === 'json' ? 'application/json' : 'application/x-www-form-urlencoded',
                    },
              body,
            });
            checkResponse(response, { json: true });
            // Signed or not, no generated user_id is one of ours: nothing may change.
            expect(await snapshotState(service.oauth)).toBe(before);
          },
        ),
        { numRuns: FUZZ_RUNS * 2 },
      );
    });

    it('TikTok webhook: any body and TikTok-Signature → never a 5xx, nothing changed', async () => {
      const secret = SIM_CLIENTS.tiktok.clientSecret;
      const event = fc.record(
        {
          client_key: fc.oneof(fc.constant(SIM_CLIENTS.tiktok.clientId), hostileString),
          event: fc.oneof(fc.constant('authorization.removed'), hostileString),
          create_time: fc.oneof(fc.integer(), fc.double(), hostileString),
          user_openid: fc.oneof(hostileString, fc.constant('')),
          content: fc.oneof(fc.constant('{"reason":1}'), hostileString, fc.jsonValue().map(JSON.stringify)),
        },
        { requiredKeys: [] },
      );
      const rawBody = fc.oneof(
        event.map((e) => JSON.stringify(e)),
        hostileBody,
      );
      await fc.assert(
        fc.asyncProperty(
          rawBody,
          fc.constantFrom('signed', 'other-secret', 'garbage', 'none', 'stale-format'),
          fc.integer({ min: 0, max: 2 ** 40 }),
          hostileString,
          fc.constantFrom('application/json', 'text/plain', 'application/x-www-form-urlencoded'),
          async (body, signing, timestamp, junk, contentType) => {
            const header: Record<string, string | undefined> = {
              signed: signTikTokBody(body, secret, timestamp),
              'other-secret': signTikTokBody(body, 'nope', timestamp),
              garbage: junk.replace(/[^\x20-\x7e]/g, ''),
              none: undefined,
              'stale-format': `s=${signTikTokBody(body, secret, timestamp).split('s=')[1]}`,
            };
            const headers: Record<string, string> = { 'content-type': contentType };
            if (header[signing] !== undefined) headers['tiktok-signature'] = header[signing]!;
            const before = await snapshotState(service.oauth);
            const response = await rawRequest(service.baseUrl, {
              method: 'POST',
              path: '/webhooks/tiktok',
              headers,
              body,
            });
            checkResponse(response, { json: true });
            if (signing !== 'signed' && contentType === 'application/json')
              expect([400, 401, 413]).toContain(response.status);
            expect(await snapshotState(service.oauth)).toBe(before);
          },
        ),
        { numRuns: FUZZ_RUNS * 2 },
      );
    });

    it('portal pages and buttons: a POST is accepted only with the live cookie, its CSRF token, our origin and an own account', async () => {
      const cookieKind = fc.constantFrom('valid', 'none', 'random', 'doubled', 'malformed');
      const csrfKind = fc.constantFrom('valid', 'none', 'random', 'valid-plus', 'array');
      const originKind = fc.constantFrom('absent', 'same', 'evil', 'null', 'random');
      const target = fc.oneof(
        fc.constant({ action: 'connect', id: null as string | null }),
        fc.record({
          action: fc.constantFrom('refresh', 'revoke'),
          id: fc.oneof(fc.constantFrom(accountIds[0]!, otherOwnersAccount), pathSegment),
        }),
      );
      await fc.assert(
        fc.asyncProperty(
          cookieKind,
          csrfKind,
          originKind,
          target,
          hostileString,
          fc.constantFrom('tiktok', 'youtube', 'instagram', 'myspace'),
          fc.constantFrom('application/x-www-form-urlencoded', 'application/json', 'text/plain'),
          async (cookieAs, csrfAs, originAs, { action, id }, junk, provider, contentType) => {
            // Refresh is the only action allowed to succeed on a real account here: a revoke would
            // end the account the other runs work on, so revokes target foreign or unknown ids only.
            if (action === 'revoke' && id === accountIds[0]) return;
            const cookie = {
              valid: portal.cookie,
              none: '',
              random: `social_oauth_portal=${safeEncode(junk)}`,
              doubled: `social_oauth_portal=x; ${portal.cookie}`,
              malformed: `social_oauth_portal=%E0%A4%A`,
            }[cookieAs];
            const fields: Array<[string, string]> = [['provider', provider]];
            if (csrfAs === 'valid') fields.push(['csrf', portal.csrf]);
            if (csrfAs === 'random') fields.push(['csrf', junk]);
            if (csrfAs === 'valid-plus') fields.push(['csrf', `${portal.csrf}=`]);
            if (csrfAs === 'array') fields.push(['csrf', portal.csrf], ['csrf', junk]);
            const origin = {
              absent: undefined,
              same: service.baseUrl,
              evil: 'https://evil.example',
              null: 'null',
              random: junk.replace(/[^\x20-\x7e]/g, '') || 'x',
            }[originAs];
            const headers: Record<string, string> = { 'content-type': contentType };
            if (cookie) headers.cookie = cookie;
            if (origin !== undefined) headers.origin = origin;
            const body =
              contentType === 'application/json'
                ? JSON.stringify(Object.fromEntries(fields))
                : new URLSearchParams(fields).toString();
            const path = action === 'connect' ? '/portal/connect' : `/portal/accounts/${id}/${action}`;
            const before = await snapshotState(service.oauth);
            const response = await rawRequest(service.baseUrl, { method: 'POST', path, headers, body });
            checkResponse(response, { json: false });
            const accepted = response.status === 303;
            const legitimate =
              cookieAs === 'valid' &&
              csrfAs === 'valid' &&
              (originAs === 'absent' || originAs === 'same') &&
              contentType !== 'text/plain' &&
              (action === 'connect' ? provider !== 'myspace' : id === accountIds[0]);
            expect(accepted).toBe(legitimate);
            if (!accepted) expect(await snapshotState(service.oauth)).toBe(before);
          },
        ),
        { numRuns: FUZZ_RUNS * 3 },
      );
      expect((await storeOf(service.oauth).accounts.findById(otherOwnersAccount))?.status).toBe('active');
    });

    it('portal GETs: any link token, cookie and query → a page without reflected markup, nothing changed', async () => {
      await fc.assert(
        fc.asyncProperty(
          pathSegment,
          fc.constantFrom('valid', 'none', 'random'),
          hostileQuery,
          fc.array(fc.tuple(fc.constantFrom('notice', 'status', 'error', 'provider'), hostileString), {
            maxLength: 4,
          }),
          hostileString,
          async (token, cookieAs, query, banner, junk) => {
            const before = await snapshotState(service.oauth);
            const link = await rawRequest(service.baseUrl, { method: 'GET', path: `/portal/s/${token}` });
            checkResponse(link, { json: false });
            expect(link.status).toBeGreaterThanOrEqual(400);
            expect(link.headers['set-cookie']).toBeUndefined();
            const cookie =
              cookieAs === 'valid'
                ? portal.cookie
                : cookieAs === 'random'
                  ? `social_oauth_portal=${safeEncode(junk)}`
                  : undefined;
            const page = await rawRequest(service.baseUrl, {
              method: 'GET',
              path: `/portal${query}${query ? '&' : '?'}${new URLSearchParams(banner).toString()}`,
              headers: cookie ? { cookie } : {},
            });
            checkResponse(page, { json: false });
            if (cookieAs !== 'valid') expect(page.status).toBeGreaterThanOrEqual(400);
            expect(await snapshotState(service.oauth)).toBe(before);
          },
        ),
        { numRuns: FUZZ_RUNS * 2 },
      );
    });

    it('the service is still healthy after all of it', async () => {
      const health = await service.api('GET', '/health');
      expect(health.status).toBe(200);
    });
  });
}

/** A well-formed import line; the property below breaks one field at a time. */
const goodLine = fc.record({
  owner_id: fc.stringMatching(/^[a-z0-9-]{1,20}$/),
  provider: fc.constantFrom('tiktok', 'instagram', 'youtube'),
  external_account_id: fc.uuid(),
  display_name: fc.option(fc.string({ maxLength: 30 }), { nil: null }),
  access_token: fc.stringMatching(/^[A-Za-z0-9._-]{20,60}$/),
  refresh_token: fc.option(fc.stringMatching(/^[A-Za-z0-9._-]{20,60}$/), { nil: null }),
  expires_at: fc.integer({ min: 1_700_000_000, max: 2_000_000_000 }),
  scopes: fc.array(fc.constantFrom('video.upload', 'user.info.basic'), { maxLength: 2 }),
});

const IMPORT_FIELDS = [
  'owner_id',
  'provider',
  'external_account_id',
  'display_name',
  'access_token',
  'refresh_token',
  'expires_at',
  'refresh_token_expires_at',
  'token_issued_at',
  'scopes',
  'unknown_field',
] as const;

describe('import file parser (pure)', () => {
  it('never throws on any text, and reports only line numbers that exist', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 400 }),
          fc.string({ unit: 'binary', maxLength: 400 }),
          fc
            .array(
              fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v) ?? ''),
              { maxLength: 8 },
            )
            .map((l) => l.join('\n')),
        ),
        (text) => {
          const { accounts, errors } = parseImportFile(text);
          const lines = text.split(/\r?\n/).length;
          for (const error of errors) {
            expect(error.line).toBeGreaterThanOrEqual(1);
            expect(error.line).toBeLessThanOrEqual(lines);
            expect(typeof error.message).toBe('string');
          }
          expect(accounts.length + errors.length).toBeLessThanOrEqual(lines);
        },
      ),
      { numRuns: FUZZ_RUNS * 10 },
    );
  });

  it('a line with one broken field is reported by its number, and its tokens are never echoed', () => {
    fc.assert(
      fc.property(
        fc.array(goodLine, { minLength: 1, maxLength: 5 }),
        fc.nat(),
        fc.constantFrom(...IMPORT_FIELDS),
        fc.oneof(hostileString, fc.jsonValue({ maxDepth: 2 })),
        (lines, pick, field, value) => {
          const broken = pick % lines.length;
          const rows: Record<string, unknown>[] = lines.map((line, index) => ({
            ...line,
            external_account_id: `${line.external_account_id}-${index}`,
          }));
          rows[broken]![field] = value;
          const text = rows.map((row) => JSON.stringify(row)).join('\n');
          const { accounts, errors } = parseImportFile(text);
          const secrets = rows.flatMap((row) => [row.access_token, row.refresh_token]);
          for (const error of errors) {
            expect(error.line).toBe(broken + 1);
            for (const secret of secrets) {
              if (typeof secret === 'string' && secret.length >= 8)
                expect(error.message).not.toContain(secret);
            }
          }
          // Either the broken value happened to be valid, or exactly that line is refused.
          expect(accounts.length + errors.length).toBe(lines.length);
        },
      ),
      { numRuns: FUZZ_RUNS * 10 },
    );
  });
});

for (const factory of DATABASES) {
  describe(`import over ${factory.kind}`, () => {
    let database: TestDatabase;
    let service: TestService;

    beforeAll(async () => {
      database = await factory.create();
      service = await startTestService(database);
    });
    afterAll(async () => {
      await service?.close();
      await database?.drop();
    });

    it('imports a whole file or nothing: a file with any bad line changes no row', async () => {
      let round = 0;
      await fc.assert(
        fc.asyncProperty(
          fc.array(goodLine, { minLength: 1, maxLength: 4 }),
          fc.option(fc.tuple(fc.nat(), fc.constantFrom(...IMPORT_FIELDS), hostileString), { nil: null }),
          async (lines, breakage) => {
            round++;
            const rows: Record<string, unknown>[] = lines.map((line, index) => ({
              ...line,
              external_account_id: `${line.external_account_id}-${round}-${index}`,
            }));
            if (breakage) rows[breakage[0] % rows.length]![breakage[1]] = breakage[2];
            const text = rows.map((row) => JSON.stringify(row)).join('\n');
            const before = await snapshotState(service.oauth);
            const outcome = await importAccounts(storeOf(service.oauth).accounts, text, service.oauth.clock);
            if (outcome.errors.length > 0) {
              expect(outcome.imported).toBe(0);
              expect(await snapshotState(service.oauth)).toBe(before);
            } else {
              expect(outcome.imported).toBe(rows.length);
            }
          },
        ),
        { numRuns: FUZZ_RUNS },
      );
    });
  });
}
