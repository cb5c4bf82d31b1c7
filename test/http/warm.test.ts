import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/domain/clock.js';
import { storeOf } from '../../src/service/storeAccess.js';
import type { ProviderSimulator } from '../../src/simulator/simulator.js';
import { DATABASES, type TestDatabase } from '../support/databases.js';
import { startTestSimulator } from '../support/simulator.js';
import { startTestService, type TestService } from './harness.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

// One database is enough here: the warm-up's storage is the token service's, tested on both.
const factory = DATABASES[0]!;

describe('POST /v1/accounts/:id/warm', () => {
  let database: TestDatabase;
  let simulator: ProviderSimulator;
  let service: TestService;
  const clock = new ManualClock(Date.parse('2026-04-01T06:00:00Z'));

  beforeAll(async () => {
    database = await factory.create();
    simulator = await startTestSimulator({ clock });
    service = await startTestService(database, { clock, simulator, env: { REFRESHER_ENABLED: 'false' } });
  });
  afterAll(async () => {
    await service?.close();
    await simulator?.close();
    await database?.drop();
  });

  async function tiktokAccount() {
    const seeded = simulator.seedAccount('tiktok', { externalAccountId: 'warm-1' });
    return storeOf(service.oauth).accounts.insert(
      {
        ownerId: 'owner-warm',
        provider: 'tiktok',
        externalAccountId: seeded.externalAccountId,
        displayName: seeded.displayName,
        accessToken: seeded.accessToken,
        refreshToken: seeded.refreshToken,
        expiresAt: seeded.accessExpiresAt,
        refreshTokenExpiresAt: seeded.refreshExpiresAt,
        scopes: seeded.scopes,
        tokenIssuedAt: seeded.issuedAt,
      },
      clock.now(),
    );
  }

  it('a post at 09:00 warmed at 06:00 is too early for a 2-hour token; warmed at 07:30 it is ready', async () => {
    const account = await tiktokAccount();
    const postAt = Date.parse('2026-04-01T09:00:00Z');
    const early = await service.api('POST', `/v1/accounts/${account.id}/warm`, {
      at: new Date(postAt).toISOString(),
    });
    expect(early.status).toBe(200);
    expect(early.body).toMatchObject({ status: 'too_early', refreshed: false });
    expect(Date.parse(early.body.ask_after)).toBe(postAt + 5 * MINUTE - 2 * HOUR + MINUTE);
    expect(simulator.totalRefreshCalls('tiktok')).toBe(0);

    clock.set(Date.parse(early.body.ask_after));
    const warmed = await service.api('POST', `/v1/accounts/${account.id}/warm`, {
      at: new Date(postAt).toISOString(),
    });
    expect(warmed.body).toMatchObject({ status: 'ready', refreshed: true, ask_after: null });
    expect(Date.parse(warmed.body.expires_at)).toBeGreaterThan(postAt);

    // At 09:00 the post gets the warmed token without a refresh.
    clock.set(postAt);
    const token = await service.api('POST', `/v1/accounts/${account.id}/token`);
    expect(token.body.refreshed).toBe(false);
    expect(simulator.totalRefreshCalls('tiktok')).toBe(1);
  });

  it('rejects a missing or malformed time', async () => {
    const account = (await storeOf(service.oauth).accounts.list({ limit: 1 }))[0]!;
    expect((await service.api('POST', `/v1/accounts/${account.id}/warm`, {})).status).toBe(400);
    expect((await service.api('POST', `/v1/accounts/${account.id}/warm`, { at: 'tomorrow' })).status).toBe(
      400,
    );
  });
});
