import { describe, expect, it } from 'vitest';
import { boundaryOf, MultipartError, type PartHeaders, readMultipart } from './multipart.js';

const BOUNDARY = '----formdata-test-7MA4YWxkTrZu0gW';

function body(parts: Array<{ headers: string; content: Buffer | string }>): Buffer {
  const pieces: Buffer[] = [Buffer.from('preamble to ignore\r\n')];
  for (const part of parts) {
    pieces.push(
      Buffer.from(`--${BOUNDARY}\r\n${part.headers}\r\n\r\n`),
      Buffer.from(part.content),
      Buffer.from('\r\n'),
    );
  }
  pieces.push(Buffer.from(`--${BOUNDARY}--\r\nepilogue`));
  return Buffer.concat(pieces);
}

async function* chunked(data: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let at = 0; at < data.length; at += size) yield data.subarray(at, at + size);
}

async function read(data: Buffer, chunkSize: number) {
  const parts: Array<PartHeaders & { content: Buffer }> = [];
  await readMultipart(chunked(data, chunkSize), BOUNDARY, (headers) => {
    const chunks: Buffer[] = [];
    return {
      write: (chunk) => void chunks.push(Buffer.from(chunk)),
      end: () => void parts.push({ ...headers, content: Buffer.concat(chunks) }),
    };
  });
  return parts;
}

describe('the streaming multipart reader', () => {
  // A file whose bytes contain near-delimiters: CRLF--, the boundary without its dashes.
  const file = Buffer.concat([
    Buffer.from('\r\n--'),
    Buffer.from(BOUNDARY.slice(0, 10)),
    Buffer.alloc(300, 7),
    Buffer.from(`\r\n-${BOUNDARY}`),
  ]);
  const data = body([
    { headers: 'Content-Disposition: form-data; name="metadata"', content: '{"title":"Hi"}' },
    {
      headers:
        'Content-Disposition: form-data; name="file"; filename="clip \\"1\\".mp4"\r\nContent-Type: video/mp4',
      content: file,
    },
  ]);

  it('reads the same parts whatever the chunk boundaries (every chunk size from 1 byte)', async () => {
    for (const size of [1, 2, 3, 5, 7, 13, 31, 64, 100, data.length]) {
      const parts = await read(data, size);
      expect(parts.map((p) => p.name)).toEqual(['metadata', 'file']);
      expect(parts[0]!.content.toString()).toBe('{"title":"Hi"}');
      expect(parts[1]!.content.equals(file)).toBe(true);
      expect(parts[1]!.filename).toBe('clip "1".mp4');
      expect(parts[1]!.contentType).toBe('video/mp4');
    }
  });

  it('refuses a body cut before the closing boundary', async () => {
    await expect(read(data.subarray(0, data.length - 20), 16)).rejects.toBeInstanceOf(MultipartError);
  });

  it('refuses a part without a name', async () => {
    const bad = body([{ headers: 'Content-Disposition: form-data', content: 'x' }]);
    await expect(read(bad, 8)).rejects.toThrow(/no name/);
  });

  it('finds the boundary in a Content-Type, quoted or not', () => {
    expect(boundaryOf(`multipart/form-data; boundary=${BOUNDARY}`)).toBe(BOUNDARY);
    expect(boundaryOf('multipart/form-data; boundary="a b"')).toBe('a b');
    expect(boundaryOf('application/json')).toBeNull();
  });
});
