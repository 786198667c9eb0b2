// The HTTP endpoint of `lifeboat metrics`: GET /metrics answers the
// exposition text; anything else 404 (GET /: a line saying where to look).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { errorMessage } from '../errors';
import type { MetricsCollector } from './collector';
import { CONTENT_TYPE } from './exposition';

export interface MetricsServer {
  server: Server;
  /** host:port actually bound (port 0 asks for any free one). */
  address: string;
  close(): Promise<void>;
}

export async function serveMetrics(collector: MetricsCollector, host: string, port: number): Promise<MetricsServer> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res
        .writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' })
        .end('only GET /metrics\n');
      return;
    }
    if (path === '/metrics') {
      collector.scrape().then(
        (text) => res.writeHead(200, { 'content-type': CONTENT_TYPE }).end(req.method === 'HEAD' ? undefined : text),
        // The collector turns every source's failure into lifeboat_up 0; reaching this is a bug, said as such.
        (err: unknown) =>
          res
            .writeHead(500, { 'content-type': 'text/plain; charset=utf-8' })
            .end(`lifeboat metrics failed: ${errorMessage(err)}\n`),
      );
      return;
    }
    res
      .writeHead(path === '/' ? 200 : 404, { 'content-type': 'text/plain; charset=utf-8' })
      .end(path === '/' ? 'lifeboat metrics: scrape /metrics\n' : `${path} is not here: scrape /metrics\n`);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = server.address() as AddressInfo;
  return {
    server,
    address: `${bound.family === 'IPv6' ? `[${bound.address}]` : bound.address}:${bound.port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
