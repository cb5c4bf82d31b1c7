import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { AccountNotFound } from '../../domain/errors.js';
import { ServiceError } from '../../service/serviceError.js';
import { HttpError } from '../errorCatalog.js';
import { portalErrorPage } from './errorPage.js';

/** The errors our own code and the real driver throw, not look-alikes. */
describe('a status-page error keeps the status the catalog gives it', () => {
  it('an account deleted meanwhile is 404, not 400', () => {
    expect(portalErrorPage(new AccountNotFound('acc-gone'))).toMatchObject({
      status: 404,
      title: 'Not found',
    });
  });

  it('an unreachable PostgreSQL is 503 with Retry-After, not 400', async () => {
    const client = new pg.Client({
      connectionString: 'postgres://postgres@127.0.0.1:1/none',
      connectionTimeoutMillis: 2000,
    });
    const error = await client.connect().then(
      () => null,
      (e: unknown) => e,
    );
    expect(portalErrorPage(error)).toMatchObject({ status: 503, headers: { 'retry-after': '5' } });
  });

  it('a platform that is not configured stays 400, an expired link 401 with words for people', () => {
    expect(
      portalErrorPage(new ServiceError('provider_not_configured', 'tiktok is not configured')).status,
    ).toBe(400);
    expect(portalErrorPage(new HttpError('unauthorized', 'no live portal session'))).toMatchObject({
      status: 401,
      title: 'This page has expired',
    });
  });
});
