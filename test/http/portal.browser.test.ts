import { existsSync, mkdirSync } from 'node:fs';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storeOf } from '../../src/service/storeAccess.js';
import { DATABASES, type TestDatabase } from '../support/databases.js';
import { connectThroughBrowser, startTestService, type TestService } from './harness.js';

const CHROMIUM = '/usr/bin/chromium';
// CI installs Debian's chromium (.ci/run); a machine without it skips, CI must not.
const runnable = existsSync(CHROMIUM) || process.env.CI === 'true';

describe.skipIf(!runnable)('status page in headless Chromium', () => {
  let database: TestDatabase;
  let service: TestService;
  let browser: Browser;

  beforeAll(async () => {
    database = await DATABASES[0]!.create();
    service = await startTestService(database);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    });
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await service?.close();
    await database?.drop();
  });

  it('connects a TikTok account from the page, through the platform consent redirect', async () => {
    // An owner who already has a healthy YouTube channel and an Instagram account that needs a reconnect.
    await connectThroughBrowser(service, {
      provider: 'youtube',
      ownerId: 'creator-42',
      consent: { externalAccountId: 'UCbrowser', displayName: 'Cooking with Ana' },
    });
    const instagram = await connectThroughBrowser(service, {
      provider: 'instagram',
      ownerId: 'creator-42',
      consent: { externalAccountId: '17841400000004242', displayName: 'ana.cooks' },
    });
    const instagramId = instagram.exit!.searchParams.get('account_id')!;
    await storeOf(service.oauth).accounts.setStatus(
      instagramId,
      'needs_reauth',
      'reauthorization_required: 190/460 password changed',
      Date.now(),
    );

    const link = await service.api('POST', '/v1/portal-sessions', { owner_id: 'creator-42' });
    service.simulator.queueConsent('tiktok', {
      externalAccountId: 'tiktok-ana',
      displayName: 'Ana on TikTok',
    });

    const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    await page.goto(link.body.url);
    expect(new URL(page.url()).pathname).toBe('/portal');
    await expect(page.getByRole('heading', { name: 'Connected accounts' }).isVisible()).resolves.toBe(true);

    await page.getByRole('button', { name: 'Connect TikTok' }).click();
    await page.waitForURL(
      (url) => url.pathname === '/portal' && url.searchParams.get('status') === 'connected',
    );

    const banner = page.locator('.banner');
    expect(await banner.textContent()).toContain('TikTok account connected.');
    const row = page.locator('[data-provider="tiktok"] .account');
    expect(await row.getAttribute('data-status')).toBe('active');
    expect(await row.textContent()).toContain('Ana on TikTok');
    expect(await page.locator('[data-provider="instagram"] .account').getAttribute('data-status')).toBe(
      'needs_reauth',
    );

    mkdirSync('test-results', { recursive: true });
    await page.screenshot({ path: 'test-results/portal.png', fullPage: true });

    const stored = await storeOf(service.oauth).accounts.findByExternalId('tiktok', 'tiktok-ana');
    expect(stored?.ownerId).toBe('creator-42');
    expect(stored?.status).toBe('active');
  }, 60_000);
});
