/**
 * A streaming multipart/form-data reader (RFC 7578 over RFC 2046 §5.1): parts are handed over as
 * their bytes arrive, so a video of gigabytes passes through a buffer of one network chunk plus the
 * boundary. No multipart library is among our dependencies (see README, "Publishing"); this one
 * reads what the publications endpoint needs: named parts, a filename, a Content-Type.
 */

export class MultipartError extends Error {
  readonly code = 'invalid_multipart' as const;
  constructor(message: string) {
    super(message);
    this.name = 'MultipartError';
  }
}

export interface PartHeaders {
  name: string;
  filename: string | null;
  contentType: string | null;
}

/** What a part's consumer does with its bytes; it may wait (backpressure) before the next chunk. */
export interface PartSink {
  write(chunk: Buffer): void | Promise<void>;
  end(): void | Promise<void>;
}

const HEADER_LIMIT = 16 * 1024;
const CRLF = Buffer.from('\r\n');
const HEADER_END = Buffer.from('\r\n\r\n');

/** The boundary of a multipart/form-data Content-Type, or null. */
export function boundaryOf(contentType: string | undefined): string | null {
  if (!contentType || !/^multipart\/form-data\b/i.test(contentType)) return null;
  const match = /;\s*boundary=(?:"([^"]{1,70})"|([^\s;]{1,70}))/i.exec(contentType);
  return match ? (match[1] ?? match[2] ?? null) : null;
}

/**
 * Reads `body` part by part: `onPart` is told each part's headers and returns where its bytes go.
 * Resolves when the closing delimiter has been read; rejects on a malformed body or a sink error.
 */
export async function readMultipart(
  body: AsyncIterable<Buffer>,
  boundary: string,
  onPart: (headers: PartHeaders) => PartSink | Promise<PartSink>,
): Promise<void> {
  // Every delimiter, the first included, is read as CRLF--boundary: the body is read as if it began with CRLF.
  const delimiter = Buffer.from(`\r\n--${boundary}`);
  let buffer: Buffer = CRLF;
  let state: 'preamble' | 'afterDelimiter' | 'headers' | 'body' | 'done' = 'preamble';
  let sink: PartSink | null = null;

  const step = async (): Promise<boolean> => {
    switch (state) {
      case 'preamble': {
        const at = buffer.indexOf(delimiter);
        if (at < 0) {
          buffer = buffer.subarray(Math.max(0, buffer.length - delimiter.length + 1));
          return false;
        }
        buffer = buffer.subarray(at + delimiter.length);
        state = 'afterDelimiter';
        return true;
      }
      case 'afterDelimiter': {
        if (buffer.length < 2) return false;
        if (buffer[0] === 0x2d && buffer[1] === 0x2d) {
          state = 'done';
          return false;
        }
        // Transport padding (spaces, tabs) may follow a delimiter before its CRLF.
        const lineEnd = buffer.indexOf(CRLF);
        if (lineEnd < 0) {
          if (buffer.length > 256) throw new MultipartError('malformed delimiter line');
          return false;
        }
        if (buffer.subarray(0, lineEnd).toString('latin1').trim() !== '') {
          throw new MultipartError('malformed delimiter line');
        }
        buffer = buffer.subarray(lineEnd + 2);
        state = 'headers';
        return true;
      }
      case 'headers': {
        const end = buffer.indexOf(HEADER_END);
        // A part without headers starts right away with CRLF.
        const emptyHeaders = buffer.length >= 2 && buffer[0] === 0x0d && buffer[1] === 0x0a;
        if (end < 0 && !emptyHeaders) {
          if (buffer.length > HEADER_LIMIT) throw new MultipartError('part headers are too large');
          return false;
        }
        const headerText = emptyHeaders ? '' : buffer.subarray(0, end).toString('utf8');
        buffer = buffer.subarray(emptyHeaders ? 2 : end + 4);
        sink = await onPart(parsePartHeaders(headerText));
        state = 'body';
        return true;
      }
      case 'body': {
        const at = buffer.indexOf(delimiter);
        if (at >= 0) {
          if (at > 0) await sink!.write(buffer.subarray(0, at));
          await sink!.end();
          sink = null;
          buffer = buffer.subarray(at + delimiter.length);
          state = 'afterDelimiter';
          return true;
        }
        // Keep what could be the start of a delimiter split across chunks.
        const safe = buffer.length - (delimiter.length - 1);
        if (safe > 0) {
          await sink!.write(buffer.subarray(0, safe));
          buffer = buffer.subarray(safe);
        }
        return false;
      }
      case 'done':
        return false;
    }
  };

  for await (const chunk of body) {
    // (Cast: TypeScript does not see `step` move the state.) After the closing delimiter the
    // epilogue is read and dropped: leaving the loop would destroy a request stream, and its socket.
    if ((state as string) === 'done') continue;
    buffer = buffer.length === 0 ? chunk : Buffer.concat([buffer, chunk]);
    while (await step()) {}
  }
  if ((state as string) !== 'done') throw new MultipartError('the body ended before the closing boundary');
}

function parsePartHeaders(text: string): PartHeaders {
  let name: string | null = null;
  let filename: string | null = null;
  let contentType: string | null = null;
  for (const line of text.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const key = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (key === 'content-disposition') {
      if (!/^form-data\b/i.test(value)) throw new MultipartError('a part is not form-data');
      name = parameter(value, 'name');
      filename = parameter(value, 'filename');
    } else if (key === 'content-type') {
      contentType = value;
    }
  }
  if (name === null) throw new MultipartError('a part has no name');
  return { name, filename, contentType };
}

function parameter(value: string, key: string): string | null {
  const match = new RegExp(`;\\s*${key}=(?:"((?:[^"\\\\]|\\\\.)*)"|([^;\\s]*))`, 'i').exec(value);
  if (!match) return null;
  return match[1] !== undefined ? match[1].replace(/\\(.)/g, '$1') : (match[2] ?? null);
}
