import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import { PassThrough, Readable, type Writable } from 'node:stream';
import { request } from 'undici';
import { ServiceError } from '../serviceError.js';

/** A part of an upload larger than PUBLISH_MAX_BYTES: answered 413, nothing kept. */
export class MediaTooLarge extends Error {
  readonly code = 'payload_too_large' as const;
  constructor(readonly maxBytes: number) {
    super(`The video is larger than PUBLISH_MAX_BYTES (${maxBytes} bytes)`);
    this.name = 'MediaTooLarge';
  }
}

/** The media of a publication is gone (MEDIA_DIR not shared between hosts, a file deleted). */
export class MediaMissing extends Error {
  readonly code = 'media_missing' as const;
  constructor(message: string) {
    super(message);
    this.name = 'MediaMissing';
  }
}

/**
 * Files received for publications live in MEDIA_DIR, named by publication id, until the
 * publication ends. Written to `<id>.part` and renamed when complete, so a file named `<id>` is
 * always whole.
 */
export class MediaStore {
  constructor(readonly dir: string) {}

  pathOf(publicationId: string): string {
    return join(this.dir, publicationId);
  }

  /**
   * A file being received for a publication: written as chunks come (waiting for the disk when it
   * is behind), refused with MediaTooLarge as soon as it passes `maxBytes`, renamed to its final
   * name by `finish`, deleted by `abort`.
   */
  async createWriter(publicationId: string, maxBytes: number): Promise<MediaWriter> {
    await mkdir(this.dir, { recursive: true });
    const final = this.pathOf(publicationId);
    const partial = `${final}.part`;
    const file = createWriteStream(partial, { flags: 'wx' });
    let failure: Error | null = null;
    file.on('error', (error) => {
      failure = error;
    });
    let size = 0;
    return {
      get size() {
        return size;
      },
      async write(chunk: Buffer) {
        if (failure) throw failure;
        size += chunk.length;
        if (size > maxBytes) throw new MediaTooLarge(maxBytes);
        if (!file.write(chunk)) await waitForDrain(file);
      },
      async finish() {
        if (failure) throw failure;
        await new Promise<void>((done, fail) =>
          file.end((error?: Error | null) => (error ? fail(error) : done())),
        );
        await rename(partial, final);
        return final;
      },
      async abort() {
        // The file may still be opening: removing it before the stream has closed raced with the
        // open, which then created the file after the removal and left a `.part` behind.
        if (!file.closed) {
          await new Promise<void>((done) => {
            file.once('close', () => done());
            file.destroy();
          });
        }
        await rm(partial, { force: true });
      },
    };
  }

  /** Streams `source` into the store (see createWriter); returns the size. */
  async receive(publicationId: string, source: AsyncIterable<Buffer>, maxBytes: number): Promise<number> {
    const writer = await this.createWriter(publicationId, maxBytes);
    try {
      for await (const chunk of source) await writer.write(chunk);
      await writer.finish();
      return writer.size;
    } catch (error) {
      await writer.abort();
      throw error;
    }
  }

  /** Deletes a file we received, never one outside MEDIA_DIR (a library caller's own file). */
  async discard(path: string): Promise<void> {
    const inside = resolve(path).startsWith(resolve(this.dir) + sep);
    if (inside) await rm(path, { force: true });
  }
}

export interface MediaWriter {
  readonly size: number;
  write(chunk: Buffer): Promise<void>;
  /** Completes the file; returns its path. */
  finish(): Promise<string>;
  abort(): Promise<void>;
}

function waitForDrain(stream: Writable): Promise<void> {
  return new Promise((done, fail) => {
    const onDrain = () => {
      stream.off('error', onError);
      done();
    };
    const onError = (error: Error) => {
      stream.off('drain', onDrain);
      fail(error);
    };
    stream.once('drain', onDrain);
    stream.once('error', onError);
  });
}

/** Size of a local file, or MediaMissing. */
export async function fileSize(path: string): Promise<number> {
  try {
    const info = await stat(path);
    if (!info.isFile()) throw new MediaMissing(`${path} is not a file`);
    return info.size;
  } catch (error) {
    if (error instanceof MediaMissing) throw error;
    throw new MediaMissing(
      `The media file is not there (${(error as NodeJS.ErrnoException).code ?? 'unreadable'})`,
    );
  }
}

/** Bytes [start, end) of a local file. */
export function openFileRange(path: string, start: number, end: number): Readable {
  if (end <= start) return Readable.from([]);
  return createReadStream(path, { start, end: end - 1, highWaterMark: 1024 * 1024 });
}

export interface SourceUrlInfo {
  size: number | null;
  contentType: string | null;
}

const SOURCE_TIMEOUT_MS = 30_000;

/**
 * What a caller's source URL holds: its size (from a one-byte range request's Content-Range, or
 * Content-Length) and type. The size is needed before any upload (YouTube's X-Upload-Content-Length,
 * TikTok's chunk plan) and for PUBLISH_MAX_BYTES. The URL itself never appears in an error.
 */
export async function probeSourceUrl(url: string): Promise<SourceUrlInfo> {
  let answer: Awaited<ReturnType<typeof request>>;
  try {
    answer = await request(url, {
      method: 'GET',
      headers: { range: 'bytes=0-0' },
      headersTimeout: SOURCE_TIMEOUT_MS,
      bodyTimeout: SOURCE_TIMEOUT_MS,
    });
  } catch {
    throw new ServiceError('invalid_request', 'source_url could not be reached');
  }
  discard(answer.body);
  if (answer.statusCode >= 400) {
    throw new ServiceError('invalid_request', `source_url answered HTTP ${answer.statusCode}`);
  }
  const header = (name: string) => {
    const value = answer.headers[name];
    return Array.isArray(value) ? value[0] : value;
  };
  const contentType = header('content-type') ?? null;
  const range = /\/(\d+)\s*$/.exec(header('content-range') ?? '');
  if (answer.statusCode === 206 && range) return { size: Number(range[1]), contentType };
  const length = header('content-length');
  if (answer.statusCode === 200 && length !== undefined && /^\d+$/.test(length)) {
    return { size: Number(length), contentType };
  }
  return { size: null, contentType };
}

/**
 * Bytes [start, end) of a source URL, streamed (never buffered whole): a Range request, or, from a
 * server that ignores Range, the whole body with the bytes before `start` skipped.
 */
export function openSourceRange(url: string, start: number, end: number, signal?: AbortSignal): Readable {
  const out = new PassThrough({ highWaterMark: 1024 * 1024 });
  if (end <= start) {
    out.end();
    return out;
  }
  void (async () => {
    const answer = await request(url, {
      method: 'GET',
      headers: { range: `bytes=${start}-${end - 1}` },
      headersTimeout: SOURCE_TIMEOUT_MS,
      bodyTimeout: SOURCE_TIMEOUT_MS,
      signal,
    });
    if (answer.statusCode !== 200 && answer.statusCode !== 206) {
      discard(answer.body);
      throw new MediaMissing(`source_url answered HTTP ${answer.statusCode}`);
    }
    let skip = answer.statusCode === 200 ? start : 0;
    let left = end - start;
    for await (const chunk of answer.body as AsyncIterable<Buffer>) {
      let piece = chunk;
      if (skip > 0) {
        const dropped = Math.min(skip, piece.length);
        piece = piece.subarray(dropped);
        skip -= dropped;
      }
      if (piece.length === 0) continue;
      if (piece.length > left) piece = piece.subarray(0, left);
      left -= piece.length;
      if (!out.write(piece)) await waitForDrain(out);
      if (left === 0) break;
    }
    discard(answer.body);
    if (left > 0) throw new MediaMissing('source_url ended before the expected size');
    out.end();
  })().catch((error: unknown) => out.destroy(error instanceof Error ? error : new Error(String(error))));
  return out;
}

/** Drops the rest of an answer's body; its abort error has nobody to tell. */
function discard(body: Readable): void {
  body.on('error', () => {});
  body.destroy();
}
