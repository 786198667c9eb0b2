// A gate in front of an S3 store (MinIO) that can HOLD BACK one object: every
// GET of it waits, unanswered, until the test releases it; everything else
// passes straight through. A replay that needs a held WAL segment stops
// before it, so a test can observe (or break something during) a replay that
// is certain to be still running, instead of hoping the machine is slow.
//
// Why not a missing segment: `lifeboat archive-get` answers 1 for an object
// the store does not have, and PostgreSQL takes that as the end of the archive
// and ends recovery. A request that is simply not answered yet is what a
// frozen store looks like, and archive-get waits for it.
//
// Limits of the hold, from src/repository/s3-client.ts and src/wal/get.ts: the SDK
// gives up on a request after 60 s without an answer and tries again (3
// attempts, and archive-get 4 rounds of those), so a hold lasts about 12
// minutes before archive-get fails; every retry is held again. Tests release
// within seconds of what they wait for.
//
// Requests are forwarded unchanged (the Host header too): SigV4 signs the host
// the client addressed, which is this gate, and MinIO checks the signature
// against the Host header it receives.
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface S3Gate {
  /** http://127.0.0.1:<port>, to put where the store's endpoint goes (S3_ENDPOINT). */
  endpoint: string;
  /** Holds back every GET whose path ends with `/wal/<segment>` or `/wal/<segment>.zst` from now until releaseHeldSegment(). */
  holdBackSegment(segment: string): void;
  /** GETs of the held segment that arrived so far (answered or waiting). */
  heldRequests(): number;
  /** Answers every waiting GET of the held segment from the store, and lets later ones through. */
  releaseHeldSegment(): void;
  stop(): Promise<void>;
}

export async function startS3Gate(upstream: string): Promise<S3Gate> {
  const up = new URL(upstream);
  let held: string | undefined;
  let arrived = 0;
  let waiting: Array<() => void> = [];

  const forward = (req: IncomingMessage, res: ServerResponse) => {
    const out = httpRequest(
      { host: up.hostname, port: up.port, method: req.method, path: req.url, headers: req.headers },
      (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.pipe(res);
      },
    );
    out.on('error', (err) => {
      // The store went away under the request (killed): the client sees a reset, as it would without the gate.
      res.destroy(err);
    });
    if (req.readableEnded) out.end();
    else req.pipe(out);
  };

  const isHeld = (req: IncomingMessage): boolean => {
    if (held === undefined || req.method !== 'GET') return false;
    const pathname = decodeURIComponent((req.url ?? '').split('?')[0] ?? '');
    return pathname.endsWith(`/wal/${held}`) || pathname.endsWith(`/wal/${held}.zst`);
  };

  const server = createServer((req, res) => {
    if (!isHeld(req)) return forward(req, res);
    arrived++;
    // Held: no answer until release. A client that gives up meanwhile (its
    // 60 s timeout) is dropped; its retry arrives here and waits again.
    let gone = false;
    res.on('close', () => (gone = true));
    waiting.push(() => {
      if (!gone) forward(req, res);
    });
  });
  // Held requests must not be closed by the server's own timeouts.
  server.requestTimeout = 0;
  server.headersTimeout = 0;
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;

  return {
    endpoint: `http://127.0.0.1:${port}`,
    holdBackSegment(segment) {
      held = segment;
      arrived = 0;
    },
    heldRequests: () => arrived,
    releaseHeldSegment() {
      held = undefined;
      const go = waiting;
      waiting = [];
      for (const f of go) f();
    },
    async stop() {
      held = undefined;
      waiting = [];
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
