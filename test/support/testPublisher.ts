import { request } from 'undici';
import { ReauthorizationRequired, TransientProviderError } from '../../src/domain/errors.js';
import type { ProviderName } from '../../src/domain/providerName.js';
import type {
  PlatformIdentity,
  PlatformPublisher,
  PublishIO,
  PublishOutcome,
  PublishRequest,
  ResumableState,
} from '../../src/publishing/platformPublisher.js';

/**
 * A PlatformPublisher for the service's tests, speaking the test upload server's protocol
 * (test/support/uploadServer.ts) over real HTTP. It keeps the contract the real clients keep: the
 * session is saved before a byte is sent, a resumed run probes the confirmed offset and never
 * starts a second session, a 401 gets one forced refresh and one retry.
 */
export class TestPublisher implements PlatformPublisher {
  constructor(
    readonly provider: ProviderName,
    private readonly baseUrl: string,
    private readonly chunkBytes = 256 * 1024,
  ) {}

  async authenticate(accessToken: string, grantedScopes: readonly string[]): Promise<PlatformIdentity> {
    return {
      provider: this.provider,
      externalAccountId: accessToken.slice(0, 4),
      displayName: null,
      grantedScopes: [...grantedScopes],
      canPublish: true,
      missingScopes: [],
      reason: null,
    };
  }

  async publish(
    request: PublishRequest,
    state: ResumableState | null,
    io: PublishIO,
  ): Promise<PublishOutcome> {
    let sessionId = typeof state?.sessionId === 'string' ? state.sessionId : null;
    if (sessionId === null) {
      const created = await this.authed(io, 'POST', '/sessions', { total: request.totalBytes });
      sessionId = String(created.session_id);
      // Durable before any byte goes: a crash from here on resumes this session.
      await io.saveState({ sessionId }, { status: 'uploading', platformRef: sessionId });
    }
    for (let tries = 1; ; tries++) {
      try {
        await this.upload(sessionId, request.totalBytes, io);
        break;
      } catch (error) {
        if (!(error instanceof TransientProviderError) || tries >= 5 || io.signal.aborted) throw error;
        await io.sleep(20 * tries);
      }
    }
    const posted = await this.authed(io, 'POST', `/sessions/${sessionId}/publish`, {});
    return { status: 'published', platformPostId: String(posted.post_id), platformRef: sessionId, url: null };
  }

  async checkProcessing(): Promise<PublishOutcome> {
    return { status: 'published', platformPostId: null, platformRef: null, url: null };
  }

  /** From the offset the server confirms (never our own count) to the end. */
  private async upload(sessionId: string, total: number, io: PublishIO): Promise<void> {
    let offset = Number((await this.call('GET', `/sessions/${sessionId}`, null, io)).offset);
    io.onProgress(offset);
    while (offset < total) {
      const end = Math.min(offset + this.chunkBytes, total);
      const answer = await this.call('PUT', `/sessions/${sessionId}`, null, io, {
        body: io.openMedia(offset, end),
        headers: {
          'content-range': `bytes ${offset}-${end - 1}/${total}`,
          'content-length': String(end - offset),
        },
      });
      offset = Number(answer.offset);
      io.onProgress(offset);
    }
  }

  private async authed(
    io: PublishIO,
    method: 'POST',
    path: string,
    body: unknown,
  ): Promise<Record<string, unknown>> {
    let token = await io.accessToken();
    for (let refreshed = false; ; refreshed = true) {
      try {
        return await this.call(method, path, token, io, { body: JSON.stringify(body) });
      } catch (error) {
        if (!(error instanceof Unauthorized)) throw error;
        if (refreshed) {
          throw new ReauthorizationRequired('the platform refused the refreshed token', {
            provider: this.provider,
            providerErrorCode: 'access_token_invalid',
            httpStatus: 401,
          });
        }
        token = await io.refreshAfterAuthFailure();
      }
    }
  }

  private async call(
    method: 'GET' | 'POST' | 'PUT',
    path: string,
    token: string | null,
    io: PublishIO,
    extra: { body?: string | NodeJS.ReadableStream; headers?: Record<string, string> } = {},
  ): Promise<Record<string, unknown>> {
    let answer: Awaited<ReturnType<typeof request>>;
    try {
      answer = await request(`${this.baseUrl}${path}`, {
        method,
        headers: {
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          ...(extra.body !== undefined && typeof extra.body === 'string'
            ? { 'content-type': 'application/json' }
            : {}),
          ...extra.headers,
        },
        body: extra.body as string | undefined,
        signal: io.signal,
      });
    } catch (error) {
      if (io.signal.aborted) throw error;
      throw new TransientProviderError('network error', {
        provider: this.provider,
        providerErrorCode: 'network_error',
        cause: error,
      });
    }
    const text = await answer.body.text().catch(() => '');
    if (answer.statusCode === 401) throw new Unauthorized();
    if (answer.statusCode >= 500 || answer.statusCode === 416) {
      throw new TransientProviderError(`HTTP ${answer.statusCode}`, {
        provider: this.provider,
        httpStatus: answer.statusCode,
      });
    }
    if (answer.statusCode >= 400) throw new Error(`HTTP ${answer.statusCode}: ${text}`);
    return JSON.parse(text) as Record<string, unknown>;
  }
}

class Unauthorized extends Error {}
