import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { streamBody } from './uploads.js';
import { json, writeResponse } from './wire.js';

/**
 * Not a platform: the benchmark's baseline (`npm run bench`, upload part). `PUT /_baseline/sink`
 * consumes a body and hashes it exactly as the platforms' upload routes take their bytes
 * (`streamBody` into a SHA-256, nothing held), then answers `{ bytes, sha256 }`. A platform client's
 * upload to the same simulator process is compared with one raw streamed PUT of the same file here.
 */
export const BASELINE_SINK_PATH = '/_baseline/sink';

export async function baselineSink(incoming: IncomingMessage, outgoing: ServerResponse): Promise<void> {
  const hash = createHash('sha256');
  let bytes = 0;
  const streamed = await streamBody(
    incoming,
    (chunk) => {
      hash.update(chunk);
      bytes += chunk.length;
    },
    null,
  );
  if (streamed.cut) return; // the client went away: nobody to answer
  writeResponse(outgoing, json(200, { bytes, sha256: hash.digest('hex') }));
}
