// A pass-through proxy in front of an S3 store (MinIO) that can HOLD the
// requests a test names (e.g. every GET of a base backup's data files, every
// PUT of an evidence record): each one waits, unanswered, until the test
// releases it, and the test sees when the first one has arrived. A request
// that is simply not answered yet is what a frozen store looks like, and it
// tells the test for certain that the activity is inside its S3 call.
//
// Requests are forwarded unchanged, Host header included: SigV4 signs the
// host the client addressed (this proxy), and MinIO checks the signature
// against the Host header it receives. The AWS SDK gives up on a request
// after 60 s without an answer (src/repository/s3-client.ts); tests release within
// seconds of what they wait for.
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface S3Hold {
  /** http://127.0.0.1:<port>: the S3_ENDPOINT of the processes whose requests may be held. */
  endpoint: string;
  /** From now on, requests for which `match(method, path)` is true wait until release(name). */
  hold(name: string, match: (method: string, path: string) => boolean): void;
  /** Requests the named hold has caught so far (waiting or already released). */
  held(name: string): number;
  /** Forwards every request the named hold keeps waiting and lets later ones through. */
  release(name: string): void;
  stop(): Promise<void>;
}

interface Hold {
  match: (method: string, path: string) => boolean;
  caught: number;
  waiting: Array<() => void>;
}

export async function startS3Hold(upstream: string): Promise<S3Hold> {
  const up = new URL(upstream);
  const holds = new Map<string, Hold>();

  const forward = (req: IncomingMessage, res: ServerResponse) => {
    const out = httpRequest(
      { host: up.hostname, port: up.port, method: req.method, path: req.url, headers: req.headers },
      (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.pipe(res);
      },
    );
    // The client may be a worker the test killed meanwhile: nobody to answer.
    out.on('error', () => res.destroy());
    res.on('error', () => out.destroy());
    req.pipe(out);
  };

  const server = createServer((req, res) => {
    const path = decodeURIComponent(req.url ?? '');
    const hold = [...holds.values()].find((h) => h.match(req.method ?? 'GET', path));
    if (hold) {
      hold.caught++;
      // Paused until released: a PUT's body stays in the socket meanwhile.
      req.pause();
      hold.waiting.push(() => forward(req, res));
      return;
    }
    forward(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const caught = new Map<string, number>();
  return {
    endpoint: `http://127.0.0.1:${port}`,
    hold(name, match) {
      holds.set(name, { match, caught: 0, waiting: [] });
    },
    held: (name) => holds.get(name)?.caught ?? caught.get(name) ?? 0,
    release(name) {
      const hold = holds.get(name);
      if (!hold) return;
      holds.delete(name);
      caught.set(name, hold.caught);
      for (const go of hold.waiting) go();
    },
    stop: () =>
      new Promise<void>((resolve) => {
        for (const name of [...holds.keys()])
          holds
            .get(name)!
            .waiting.splice(0)
            .forEach((go) => go());
        holds.clear();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
