import { createHash, type Hash, randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Clock } from '../domain/clock.js';
import type { ProviderName } from '../domain/providerName.js';
import type { SimulatorState } from './state.js';
import { type SimResponse, writeResponse } from './wire.js';

/**
 * What the simulated platforms' upload endpoints share: the uploads they received (bytes counted and
 * hashed as they stream in, never buffered), the posts they created (so a test can assert "exactly
 * one post"), and the faults a test scripts against them. The platform rules themselves live in
 * `src/platforms/<name>/uploadSimulator.ts`.
 */

/** Which publishing endpoint a request is for, so that a fault can target one of them. */
export type UploadRouteKind =
  | 'init'
  | 'chunk'
  | 'probe'
  | 'status'
  | 'creator'
  | 'publish'
  | 'limit'
  | 'profile'
  /** Reading a published post (Instagram `GET /<IG_MEDIA_ID>?fields=permalink`). */
  | 'post';

export interface UploadFaultPlan {
  /** Only these endpoints (default: all). */
  routes?: readonly UploadRouteKind[];
  /** Let this many matching requests through before the faults below start. */
  skip?: number;
  /** The next n matching requests answer `status` (default 503) in the platform's error format. */
  failNext?: number;
  status?: number;
  /** The next n matching requests that carry our token are refused as the platform refuses a dead token. */
  unauthorizedNext?: number;
  /**
   * Once: the connection of a byte-carrying request is cut when the upload has received this many
   * bytes in all (the bytes before stay received, as far as the platform keeps partial data).
   */
  cutAfterBytes?: number;
  /** The platform's daily quota or publishing limit is spent (YouTube, Instagram) / too many posts (TikTok). */
  quotaExhausted?: boolean;
  /** A final refusal of the init, by the platform's error code (`uploadLimitExceeded`, `reached_active_user_cap`, …). */
  refuseInit?: string;
  /** Processing never ends (YouTube `processing`, TikTok `PROCESSING_UPLOAD`, Instagram `IN_PROGRESS`). */
  stuckProcessing?: boolean;
}

export type UploadFaultAction =
  | { kind: 'none' }
  | { kind: 'fail'; status: number }
  | { kind: 'unauthorized' };

/** One upload as the platform saw it. */
export interface SimUpload {
  provider: ProviderName;
  /** The platform's handle: YouTube upload_id, TikTok publish_id, Instagram container id. */
  id: string;
  externalAccountId: string;
  totalBytes: number;
  /** Bytes the platform kept, in order. */
  storedBytes: number;
  /** Every byte that arrived in a request body, kept or not (re-sent and cut chunks included). */
  receivedBytes: number;
  /** Byte-carrying requests, cut and refused ones included. */
  byteRequests: number;
  /** SHA-256 (hex) of the kept bytes, once all of them are in; null before. */
  sha256: string | null;
  /** The running hash of the kept bytes. */
  hash: Hash;
  createdAtMs: number;
  /** Free-form per-platform state (chunk plan, processing polls, privacy, …). */
  details: Record<string, unknown>;
}

export interface SimPost {
  provider: ProviderName;
  externalAccountId: string;
  /** YouTube video id, TikTok post id, Instagram media id. */
  postId: string;
  uploadId: string;
  createdAtMs: number;
}

/** Knobs of the simulated upload endpoints, mutable while the simulator runs. */
export interface UploadSimulatorSettings {
  youtube: {
    /** videos.insert calls per Pacific day (YouTube's upload bucket, default 100). */
    dailyUploads: number;
    /** videos.list looks that still see `processing` before the video is processed. */
    processingLooks: number;
  };
  tiktok: {
    /** What creator_info/query offers (a public creator's options by default). */
    privacyLevelOptions: string[];
    /** An unaudited client may post SELF_ONLY only. */
    audited: boolean;
    /** status/fetch looks that still see PROCESSING_UPLOAD after the last chunk. */
    processingLooks: number;
  };
  instagram: {
    /** content_publishing_limit's quota_total (the docs say 100 in one place and 50 in another). */
    quotaTotal: number;
    /** status_code looks that still see IN_PROGRESS after the video was fetched. */
    processingLooks: number;
    /** Published media come without `permalink`, as media flagged for copyright do. */
    copyrightFlagged: boolean;
  };
}

export function defaultUploadSettings(): UploadSimulatorSettings {
  return {
    youtube: { dailyUploads: 100, processingLooks: 1 },
    tiktok: {
      privacyLevelOptions: [
        'PUBLIC_TO_EVERYONE',
        'MUTUAL_FOLLOW_FRIENDS',
        'FOLLOWER_OF_CREATOR',
        'SELF_ONLY',
      ],
      audited: false,
      processingLooks: 1,
    },
    instagram: { quotaTotal: 100, processingLooks: 1, copyrightFlagged: false },
  };
}

export class UploadSimulatorState {
  readonly settings: UploadSimulatorSettings = defaultUploadSettings();
  private readonly plans = new Map<ProviderName, UploadFaultPlan>();
  private readonly uploadsById = new Map<string, SimUpload>();
  private readonly postList: SimPost[] = [];
  /** Per-token request times for the platforms' per-minute limits. */
  private readonly windows = new Map<string, number[]>();
  /** Requests refused for going over a per-minute limit (TikTok's rate_limit_exceeded). */
  rateLimitRefusals = 0;

  constructor(readonly clock: Clock) {}

  // Faults ----------------------------------------------------------------------------------------

  setFaults(provider: ProviderName, plan: UploadFaultPlan): void {
    this.plans.set(provider, { ...plan });
  }

  clearFaults(provider?: ProviderName): void {
    if (provider === undefined) this.plans.clear();
    else this.plans.delete(provider);
  }

  faults(provider: ProviderName): Readonly<UploadFaultPlan> {
    return this.plans.get(provider) ?? {};
  }

  /** Decides the fate of one request (spending a counted fault); `carriesToken` for auth refusals. */
  next(provider: ProviderName, route: UploadRouteKind, carriesToken: boolean): UploadFaultAction {
    const plan = this.plans.get(provider);
    if (plan === undefined || (plan.routes !== undefined && !plan.routes.includes(route))) {
      return { kind: 'none' };
    }
    const armed = (plan.failNext ?? 0) > 0 || ((plan.unauthorizedNext ?? 0) > 0 && carriesToken);
    if (armed && (plan.skip ?? 0) > 0) {
      plan.skip = (plan.skip ?? 0) - 1;
      return { kind: 'none' };
    }
    if ((plan.unauthorizedNext ?? 0) > 0 && carriesToken) {
      plan.unauthorizedNext = (plan.unauthorizedNext ?? 0) - 1;
      return { kind: 'unauthorized' };
    }
    if ((plan.failNext ?? 0) > 0) {
      plan.failNext = (plan.failNext ?? 0) - 1;
      return { kind: 'fail', status: plan.status ?? 503 };
    }
    return { kind: 'none' };
  }

  /** The byte offset (of the whole upload) at which the connection is cut, once; null = none. */
  takeCut(provider: ProviderName, upload: SimUpload, requestEnd: number): number | null {
    const plan = this.plans.get(provider);
    const at = plan?.cutAfterBytes;
    if (plan === undefined || at === undefined) return null;
    if (at < upload.storedBytes || at >= requestEnd) return null;
    plan.cutAfterBytes = undefined;
    return at;
  }

  // Uploads and posts -----------------------------------------------------------------------------

  createUpload(
    provider: ProviderName,
    externalAccountId: string,
    totalBytes: number,
    details: Record<string, unknown>,
    id = randomBytes(16).toString('base64url'),
  ): SimUpload {
    const upload: SimUpload = {
      provider,
      id,
      externalAccountId,
      totalBytes,
      storedBytes: 0,
      receivedBytes: 0,
      byteRequests: 0,
      sha256: null,
      hash: createHash('sha256'),
      createdAtMs: this.clock.now(),
      details,
    };
    this.uploadsById.set(uploadKey(provider, id), upload);
    return upload;
  }

  upload(provider: ProviderName, id: string | null): SimUpload | undefined {
    return id === null ? undefined : this.uploadsById.get(uploadKey(provider, id));
  }

  uploads(provider?: ProviderName): SimUpload[] {
    return [...this.uploadsById.values()].filter((u) => provider === undefined || u.provider === provider);
  }

  recordPost(post: Omit<SimPost, 'createdAtMs'>): SimPost {
    const recorded = { ...post, createdAtMs: this.clock.now() };
    this.postList.push(recorded);
    return recorded;
  }

  posts(provider?: ProviderName, externalAccountId?: string): SimPost[] {
    return this.postList.filter(
      (post) =>
        (provider === undefined || post.provider === provider) &&
        (externalAccountId === undefined || post.externalAccountId === externalAccountId),
    );
  }

  /**
   * A per-token "n per minute" limit (TikTok's init 6/min, status 30/min): records the call and says
   * whether it is over the limit. Refused calls count too, as they do on a real sliding window.
   */
  overLimit(key: string, limit: number, windowMs = 60_000): boolean {
    const now = this.clock.now();
    const recent = (this.windows.get(key) ?? []).filter((at) => now - at < windowMs);
    recent.push(now);
    this.windows.set(key, recent);
    const over = recent.length > limit;
    if (over) this.rateLimitRefusals += 1;
    return over;
  }

  reset(): void {
    this.uploadsById.clear();
    this.postList.length = 0;
    this.windows.clear();
    this.rateLimitRefusals = 0;
  }
}

/** One HTTP exchange handed to a platform's upload routes, before its body is read. */
export interface UploadExchange {
  incoming: IncomingMessage;
  outgoing: ServerResponse;
  method: string;
  /** Path below the platform prefix. */
  path: string;
  query: URLSearchParams;
  /** `http://host:port/<provider>`, for URLs the platform hands out (session URI, upload_url). */
  publicBase: string;
}

export interface UploadContext {
  state: SimulatorState;
  uploads: UploadSimulatorState;
}

/** A platform's upload endpoints: claimed before the OAuth routes, with the raw request. */
export interface UploadRoutes {
  readonly provider: ProviderName;
  matches(method: string, path: string): boolean;
  handle(exchange: UploadExchange, context: UploadContext): Promise<void>;
}

/** A small body (JSON metadata, a form), read whole: these are a few hundred bytes. */
export async function readSmallBody(incoming: IncomingMessage, limit = 1024 * 1024): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of incoming) {
    size += (chunk as Buffer).length;
    if (size <= limit) chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export function parseJsonBody(text: string): unknown {
  try {
    return text.trim() === '' ? undefined : JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Drains a body the platform refuses, so the connection can be reused for the next request. */
export async function drain(incoming: IncomingMessage): Promise<number> {
  let size = 0;
  for await (const chunk of incoming) size += (chunk as Buffer).length;
  return size;
}

export function respond(outgoing: ServerResponse, response: SimResponse): void {
  writeResponse(outgoing, response);
}

export interface StreamedBody {
  /** Bytes that arrived. */
  received: number;
  /** The connection was cut by an injected fault (or the client went away) before the body ended. */
  cut: boolean;
}

/**
 * Streams a body into `sink` chunk by chunk (nothing held), cutting the connection after `cutAt`
 * bytes of this body when a fault says so: the bytes before the cut reach the sink, the socket is
 * destroyed, and the client sees a reset mid-upload.
 */
export function streamBody(
  incoming: IncomingMessage,
  sink: (chunk: Buffer) => void,
  cutAt: number | null,
): Promise<StreamedBody> {
  return new Promise((resolve) => {
    let received = 0;
    let done = false;
    const finish = (cut: boolean) => {
      if (done) return;
      done = true;
      resolve({ received, cut });
    };
    incoming.on('data', (chunk: Buffer) => {
      if (done) return;
      if (cutAt !== null && received + chunk.length >= cutAt) {
        const keep = cutAt - received;
        if (keep > 0) sink(chunk.subarray(0, keep));
        received += keep;
        incoming.socket.destroy();
        finish(true);
        return;
      }
      sink(chunk);
      received += chunk.length;
    });
    incoming.on('end', () => finish(false));
    incoming.on('aborted', () => finish(true));
    incoming.on('close', () => finish(!incoming.complete));
    incoming.on('error', () => finish(true));
  });
}

// `Content-Range: bytes F-L/T`, or YouTube's probe `bytes */T`, as the platforms send them.
export type ContentRange =
  | { kind: 'range'; first: number; last: number; total: number }
  | { kind: 'probe'; total: number };

export function parseContentRange(header: string | string[] | undefined): ContentRange | null {
  if (typeof header !== 'string') return null;
  const probe = /^bytes \*\/(\d+)$/.exec(header.trim());
  if (probe) return { kind: 'probe', total: Number(probe[1]) };
  const range = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(header.trim());
  if (!range) return null;
  const [first, last, total] = [Number(range[1]), Number(range[2]), Number(range[3])];
  if (last < first || last >= total) return null;
  return { kind: 'range', first, last, total };
}

function uploadKey(provider: ProviderName, id: string): string {
  return `${provider}\u0000${id}`;
}
