import type { FastifyReply, FastifyRequest } from 'fastify';

/**
 * How much of an oversized body we read and throw away so that its sender can finish writing and
 * read our 413. Beyond this (declared or sent), or after this long, the connection is closed.
 */
export const OVERSIZED_BODY_DRAIN_BYTES = 16 * 1024 * 1024;
export const OVERSIZED_BODY_DRAIN_MS = 10_000;

/**
 * Called as Fastify answers 413 to a body over the limit. Fastify marks that answer
 * `Connection: close`, and Node then closes the socket as soon as the 413 is written, with the
 * client's unread bytes still in the receive buffer: the kernel answers those with a reset, and a
 * client still sending (fetch, curl: every client that writes its body before reading) sees
 * EPIPE/ECONNRESET instead of the 413. So, within a bound, the rest of the body is read and
 * discarded and the connection stays open for the client to read the answer (and reuse); a body
 * declared or sent past the bound is cut as before (reading gigabytes to be polite is no defence).
 */
export function drainOversizedBody(request: FastifyRequest, reply: FastifyReply): void {
  const raw = request.raw;
  if (raw.complete) return;
  const declared = Number(raw.headers['content-length']);
  if (Number.isFinite(declared) && declared > OVERSIZED_BODY_DRAIN_BYTES) return;
  reply.removeHeader('connection');
  const socket = raw.socket;
  let drained = 0;
  const cut = () => socket.destroy();
  const timer = setTimeout(cut, OVERSIZED_BODY_DRAIN_MS);
  timer.unref();
  raw.on('data', (chunk: Buffer) => {
    drained += chunk.length;
    if (drained > OVERSIZED_BODY_DRAIN_BYTES) cut();
  });
  raw.once('end', () => clearTimeout(timer));
  raw.once('close', () => clearTimeout(timer));
  raw.resume();
}
