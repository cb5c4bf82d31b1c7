import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { ProviderName } from '../../src/domain/providerName.js';
import type {
  PublicationProgress,
  PublishIO,
  ResumableState,
} from '../../src/publishing/platformPublisher.js';

/**
 * A stand-in for the publication service in platform-client tests: state held in memory, tokens
 * issued by the simulator (a "refresh" asks the simulator for a fresh grant), media read from a
 * file on disk. It is test scaffolding, not the service under test.
 */
export class MemoryPublishIO implements PublishIO {
  state: ResumableState | null = null;
  readonly saves: Array<{ state: ResumableState; progress: PublicationProgress | undefined }> = [];
  readonly progress: number[] = [];
  refreshes = 0;
  readonly sleeps: number[] = [];
  private readonly controller = new AbortController();
  readonly signal: AbortSignal = this.controller.signal;

  constructor(
    private readonly media: TestMedia,
    private token: string,
    private readonly issueToken: () => string,
  ) {}

  async accessToken(): Promise<string> {
    return this.token;
  }

  async refreshAfterAuthFailure(): Promise<string> {
    this.refreshes += 1;
    this.token = this.issueToken();
    return this.token;
  }

  openMedia(start: number, end: number): Readable {
    if (end <= start) return Readable.from([]);
    return createReadStream(this.media.path, { start, end: end - 1, highWaterMark: 256 * 1024 });
  }

  async saveState(state: ResumableState, progress?: PublicationProgress): Promise<void> {
    this.state = state;
    this.saves.push({ state, progress });
  }

  onProgress(bytesSent: number): void {
    this.progress.push(bytesSent);
  }

  /** How often the client said the platform has fetched the media (Instagram: FINISHED). */
  releases = 0;
  /** What else a release does in a test (kill the link the platform fetched from, say). */
  onRelease: () => void = () => {};

  /** What the client warned about (the service logs these). */
  readonly warnings: Array<{ message: string; detail: Readonly<Record<string, unknown>> | undefined }> = [];

  warn(message: string, detail?: Readonly<Record<string, unknown>>): void {
    this.warnings.push({ message, detail });
  }

  async releaseMedia(): Promise<void> {
    this.releases += 1;
    this.onRelease();
  }

  async sleep(ms: number): Promise<void> {
    this.sleeps.push(ms);
    // Platform waits (backoff, status polls) are recorded, not waited for.
    await new Promise((resolve) => setImmediate(resolve));
  }

  now(): number {
    return Date.now();
  }

  abort(): void {
    this.controller.abort(new Error('aborted by the test'));
  }

  /** A new "process" after a crash: same durable state, nothing else carried over. */
  restarted(): MemoryPublishIO {
    const next = new MemoryPublishIO(this.media, this.token, this.issueToken);
    next.state = this.state;
    return next;
  }
}

export interface TestMedia {
  path: string;
  size: number;
  sha256: string;
  dispose(): Promise<void>;
}

/** A file of random bytes (not a real video: the simulators check bytes, not codecs). */
export async function makeTestMedia(size: number): Promise<TestMedia> {
  const dir = await mkdtemp(join(tmpdir(), 'social-oauth-media-'));
  const path = join(dir, 'video.mp4');
  const bytes = randomBytes(size);
  await writeFile(path, bytes);
  return {
    path,
    size,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    dispose: () => rm(dir, { recursive: true, force: true }),
  };
}

export function memoryIO(
  simulator: { issueTokens(provider: ProviderName, externalAccountId: string): { accessToken: string } },
  provider: ProviderName,
  externalAccountId: string,
  media: TestMedia,
): MemoryPublishIO {
  const issue = () => simulator.issueTokens(provider, externalAccountId).accessToken;
  return new MemoryPublishIO(media, issue(), issue);
}
