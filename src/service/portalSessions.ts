import { hmacSha256, randomOpaqueToken, sha256Hex } from '../crypto/opaqueToken.js';
import type { Clock } from '../domain/clock.js';
import { type Logger, silentLogger } from '../domain/logger.js';
import type { PortalSessionRecord, PortalSessionRepository } from '../store/portalSessionRepository.js';

/** A live portal session: whose page it opens, and until when. */
export type PortalSession = PortalSessionRecord;

/**
 * Short-lived links to one owner's status page. The link's token becomes the page's cookie; the
 * database holds only its SHA-256. The CSRF token of the page's forms is derived from the session
 * token, so it needs no storage and is worthless without the cookie it belongs to.
 */
export class PortalSessions {
  constructor(
    private readonly repository: PortalSessionRepository,
    private readonly clock: Clock,
    private readonly ttlSeconds: number,
    private readonly logger: Logger = silentLogger,
  ) {}

  async create(ownerId: string): Promise<{ token: string; expiresAt: number }> {
    const token = randomOpaqueToken();
    const now = this.clock.now();
    const expiresAt = now + this.ttlSeconds * 1000;
    await this.repository.insert({ id: sha256Hex(token), ownerId, createdAt: now, expiresAt });
    void this.repository.deleteExpiredBefore(now - 86_400_000).catch((error: unknown) => {
      this.logger.warn(
        { err: error instanceof Error ? `${error.name}: ${error.message}` : String(error) },
        'expired portal sessions could not be deleted',
      );
    });
    return { token, expiresAt };
  }

  /** The live session a token opens, or null (unknown or expired). */
  resolve(token: string): Promise<PortalSessionRecord | null> {
    return this.repository.findLive(sha256Hex(token), this.clock.now());
  }

  csrfTokenFor(sessionToken: string): string {
    return hmacSha256(sessionToken, 'social-oauth/portal/csrf', 'base64url');
  }
}
