import { createHash, randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { Clock } from '../../domain/clock.js';
import type { Publication } from '../../domain/publication.js';
import type { PublicationRepository } from '../../store/publicationRepository.js';
import { fileSize, openFileRange } from './media.js';

/** Instagram fetches the video within minutes; an hour bounds how long a leaked link is worth anything. */
export const MEDIA_LINK_TTL_MS = 60 * 60_000;

export const MEDIA_LINK_PATH = '/media/';

/** What GET /media/:token answers: the bytes asked for, or why not. */
export type MediaLinkAnswer =
  | { kind: 'not_found' }
  | { kind: 'unsatisfiable'; size: number }
  | {
      kind: 'ok';
      status: 200 | 206;
      size: number;
      start: number;
      end: number;
      contentType: string;
      open: () => Readable;
    };

const hashOf = (token: string) => createHash('sha256').update(token).digest('hex');

/**
 * Links that let a platform fetch a file we hold (Instagram Login publishes from a public
 * `video_url` only). A link is `PUBLIC_BASE_URL/media/<token>`: 256 random bits, stored as a hash
 * for lookup and sealed for reuse, alive for an hour at most and until the platform has fetched the
 * video (the container is FINISHED) or the publication has ended.
 */
export class MediaLinks {
  constructor(
    private readonly publications: PublicationRepository,
    private readonly clock: Clock,
    private readonly publicBaseUrl: string,
  ) {}

  /** The publication's live link, or a new one: a resumed publication hands the platform the same URL. */
  async linkFor(publication: Publication): Promise<string> {
    const now = this.clock.now();
    const live = await this.publications.liveMediaLink(publication.id, now);
    if (live !== null && live.expiresAt - now > MEDIA_LINK_TTL_MS / 2) return this.urlOf(live.token);
    const token = randomBytes(32).toString('base64url');
    await this.publications.setMediaLink(publication.id, token, hashOf(token), now + MEDIA_LINK_TTL_MS);
    return this.urlOf(token);
  }

  async release(publicationId: string): Promise<void> {
    await this.publications.clearMediaLink(publicationId);
  }

  /** Serves a link: the whole file, or the one byte range asked for (RFC 9110 §14.2). */
  async answer(token: string, rangeHeader: string | undefined): Promise<MediaLinkAnswer> {
    if (!/^[A-Za-z0-9_-]{43}$/.test(token)) return { kind: 'not_found' };
    const publication = await this.publications.findByMediaLink(hashOf(token), this.clock.now());
    if (publication === null || publication.mediaPath === null) return { kind: 'not_found' };
    let size: number;
    try {
      size = await fileSize(publication.mediaPath);
    } catch {
      return { kind: 'not_found' };
    }
    const path = publication.mediaPath;
    const contentType = publication.request.contentType;
    const range = parseRange(rangeHeader, size);
    if (range === 'unsatisfiable') return { kind: 'unsatisfiable', size };
    const [start, end] = range ?? [0, size];
    return {
      kind: 'ok',
      status: range === null ? 200 : 206,
      size,
      start,
      end,
      contentType,
      open: () => openFileRange(path, start, end),
    };
  }

  private urlOf(token: string): string {
    return `${this.publicBaseUrl}${MEDIA_LINK_PATH}${token}`;
  }
}

/**
 * One `bytes=` range as [start, end), null for none (or one we ignore, as RFC 9110 allows: several
 * ranges, other units), 'unsatisfiable' for a range past the end.
 */
export function parseRange(
  header: string | undefined,
  size: number,
): [number, number] | null | 'unsatisfiable' {
  if (header === undefined) return null;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match || (match[1] === '' && match[2] === '')) return null;
  if (match[1] === '') {
    // A suffix: the last N bytes.
    const length = Number(match[2]);
    if (length === 0) return 'unsatisfiable';
    return [Math.max(0, size - length), size];
  }
  const start = Number(match[1]);
  const last = match[2] === '' ? size - 1 : Math.min(Number(match[2]), size - 1);
  if (start >= size || last < start) return 'unsatisfiable';
  return [start, last + 1];
}
