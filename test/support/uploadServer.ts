import { createHash, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A tiny resumable-upload platform for the publication service's tests, until the real platform
 * clients and the simulator's upload endpoints are merged. It models what every platform's upload
 * has in common (a session created with our token, bytes PUT in order to the session without a
 * token, the confirmed offset asked for after an interruption, a publish that makes the post) and
 * counts what matters: sessions started and posts made.
 *
 * - POST /sessions (Bearer) {total} -> 201 {session_id}
 * - GET /sessions/:id -> {offset, total}
 * - PUT /sessions/:id with Content-Range: bytes F-L/TOTAL -> {offset}; F must be the confirmed offset
 * - POST /sessions/:id/publish (Bearer) -> {post_id}; a second publish of one session answers the same post
 *
 * Tokens are checked against `isValidToken` (the provider simulator: the real issuer); scripted
 * refusals answer 401 to the next authenticated requests whatever the token.
 */
export interface UploadServer {
  readonly url: string;
  /** Sessions started (inits). */
  readonly inits: number;
  /** Posts made (publishes of distinct sessions). */
  readonly posts: number;
  /** Bytes received in PUT bodies, resends included. */
  readonly bytesReceived: number;
  /** Authenticated requests refused with 401. */
  readonly refusals: number;
  /** The SHA-256 (hex) of each published session's bytes. */
  postedHashes(): string[];
  /** The next `count` authenticated requests get 401. */
  refuseNext(count: number): void;
  /** The next PUT is cut (socket destroyed) after this many body bytes, once. */
  cutNextPutAfter(bytes: number): void;
  /** Each PUT waits this long before answering (a slow link). */
  putDelayMs: number;
  /** The next `count` PUTs answer 503 before reading. */
  failNextPuts(count: number): void;
  close(): Promise<void>;
}

interface Session {
  id: string;
  total: number;
  offset: number;
  hash: ReturnType<typeof createHash>;
  postId: string | null;
  digest: string | null;
}

export async function startUploadServer(isValidToken: (token: string) => boolean): Promise<UploadServer> {
  const sessions = new Map<string, Session>();
  let inits = 0;
  let posts = 0;
  let bytesReceived = 0;
  let refusals = 0;
  let refuse = 0;
  let cutAfter: number | null = null;
  let failPuts = 0;
  const hashes: string[] = [];

  const send = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const authorized = (req: IncomingMessage, res: ServerResponse): boolean => {
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (refuse > 0 || token === undefined || !isValidToken(token)) {
      if (refuse > 0) refuse--;
      refusals++;
      send(res, 401, { error: { code: 'access_token_invalid' } });
      return false;
    }
    return true;
  };
  const readJson = async (req: IncomingMessage): Promise<Record<string, unknown>> => {
    let text = '';
    for await (const chunk of req) text += chunk;
    return text === '' ? {} : (JSON.parse(text) as Record<string, unknown>);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const match = /^\/sessions(?:\/([^/]+))?(\/publish)?$/.exec(path);
    if (!match) return send(res, 404, { error: 'no route' });
    const [, id, publish] = match;
    if (req.method === 'POST' && id === undefined) {
      if (!authorized(req, res)) return;
      const body = await readJson(req);
      const session: Session = {
        id: randomUUID(),
        total: Number(body.total),
        offset: 0,
        hash: createHash('sha256'),
        postId: null,
        digest: null,
      };
      sessions.set(session.id, session);
      inits++;
      return send(res, 201, { session_id: session.id });
    }
    const session = id === undefined ? undefined : sessions.get(id);
    if (!session) return send(res, 404, { error: 'no session' });
    if (req.method === 'GET') return send(res, 200, { offset: session.offset, total: session.total });
    if (req.method === 'POST' && publish) {
      if (!authorized(req, res)) return;
      if (session.offset !== session.total) return send(res, 409, { error: 'upload not complete' });
      if (session.postId === null) {
        session.postId = `post_${randomUUID().slice(0, 8)}`;
        session.digest = session.hash.digest('hex');
        hashes.push(session.digest);
        posts++;
      }
      return send(res, 200, { post_id: session.postId });
    }
    if (req.method === 'PUT') {
      if (failPuts > 0) {
        failPuts--;
        req.resume();
        return send(res, 503, { error: 'backend_error' });
      }
      const range = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(req.headers['content-range'] ?? '');
      if (!range || Number(range[1]) !== session.offset) {
        req.resume();
        return send(res, 416, { error: 'wrong offset', offset: session.offset });
      }
      const cut = cutAfter;
      cutAfter = null;
      let seen = 0;
      for await (const chunk of req as AsyncIterable<Buffer>) {
        let piece = chunk;
        if (cut !== null && seen + piece.length > cut) piece = piece.subarray(0, cut - seen);
        seen += piece.length;
        bytesReceived += piece.length;
        // Stored as it arrives: a cut connection keeps what reached us, like a real session.
        session.hash.update(piece);
        session.offset += piece.length;
        if (cut !== null && seen >= cut) {
          req.socket.destroy();
          return;
        }
      }
      if (server.putDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, server.putDelayMs));
      return send(res, 200, { offset: session.offset });
    }
    return send(res, 405, { error: 'method' });
  };

  const http: Server = createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const { port } = http.address() as AddressInfo;
  const server: UploadServer = {
    url: `http://127.0.0.1:${port}`,
    get inits() {
      return inits;
    },
    get posts() {
      return posts;
    },
    get bytesReceived() {
      return bytesReceived;
    },
    get refusals() {
      return refusals;
    },
    postedHashes: () => [...hashes],
    refuseNext(count) {
      refuse = count;
    },
    cutNextPutAfter(bytes) {
      cutAfter = bytes;
    },
    putDelayMs: 0,
    failNextPuts(count) {
      failPuts = count;
    },
    close: () =>
      new Promise<void>((resolve) => {
        http.closeAllConnections();
        http.close(() => resolve());
      }),
  };
  return server;
}
