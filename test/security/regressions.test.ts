import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseImportFile } from '../../src/service/accountImport.js';
import { startTestService, type TestService } from '../http/harness.js';
import { DATABASES, type TestDatabase } from '../support/databases.js';
import { isErrorShape, rawRequest, snapshotState } from './observe.js';

/** Bugs the hostile-input properties found (issue 5), each pinned by name. */
for (const factory of DATABASES) {
  describe(`regressions from hostile input (${factory.kind})`, () => {
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

    it('bug: a NUL character in an id, query or body answered 500 on PostgreSQL', async () => {
      const before = await snapshotState(service.oauth);
      const answers = [
        await service.api('POST', '/v1/connect-sessions', { provider: 'tiktok', owner_id: 'a\u0000b' }),
        await service.api('POST', '/v1/portal-sessions', { owner_id: 'a\u0000b' }),
        await service.api('GET', '/v1/accounts?owner_id=a%00b'),
        await service.api('GET', '/v1/accounts?cursor=a%00b'),
        await service.api('GET', '/v1/accounts/a%00b'),
        await service.api('POST', '/v1/accounts/a%00b/token', {}),
        await service.api('GET', '/v1/events?account_id=a%00b'),
      ];
      for (const answer of answers) {
        expect(answer.status).toBe(400);
        expect(answer.body.error.code).toBe('invalid_request');
      }
      expect(await snapshotState(service.oauth)).toBe(before);
    });

    it("bug: an undecodable URL got Fastify's error shape, no security headers, and its path echoed", async () => {
      const response = await rawRequest(service.baseUrl, {
        method: 'GET',
        path: '/connect/SECRET-STATE%ED%A0%80',
      });
      expect(response.status).toBe(400);
      expect(isErrorShape(response.text)).toBe(true);
      expect(response.text).not.toContain('SECRET-STATE');
      expect(response.headers['x-content-type-options']).toBe('nosniff');
      expect(response.headers['cache-control']).toBe('no-store');
      expect(response.headers['referrer-policy']).toBe('no-referrer');
      expect(response.headers['x-request-id']).toBeTruthy();
    });
  });
}

describe('regressions from hostile input (import)', () => {
  it('bug: an import line with a NUL character passed the checks and failed the transaction on PostgreSQL', () => {
    const line = {
      owner_id: 'o\u0000',
      provider: 'tiktok',
      external_account_id: 'x',
      display_name: 'n\u0000',
      access_token: 'act.1234567890',
      expires_at: 1_900_000_000,
    };
    const { accounts, errors } = parseImportFile(JSON.stringify(line));
    expect(accounts).toEqual([]);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.message).toContain('owner_id: must not contain NUL characters');
    expect(errors[0]!.message).toContain('display_name: must not contain NUL characters');
  });
});
