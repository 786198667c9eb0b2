// What both benches need: a MinIO of their own, pgbench, and a pgbench
// script that makes WAL fast enough to measure with.
import { execFileSync, spawn } from 'node:child_process';
import { openSync } from 'node:fs';
import * as path from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { stopChild } from '../src/dev/child';
import { requireTool } from '../src/tools';
import { PG_BIN, type Primary } from '../test/harness/postgres';
import { freePort, waitFor } from '../test/harness/ports';

/** A MinIO on a free loopback port under `root`, with one bucket; env holds what a client needs. */
export async function startMinio(root: string, bucket: string): Promise<{ env: Record<string, string>; stop: () => Promise<void> }> {
  const port = await freePort();
  const user = 'lifeboat-bench';
  const secret = `bench-${Math.random().toString(36).slice(2)}`;
  const logFd = openSync(path.join(root, 'minio.log'), 'a');
  const child = spawn(
    requireTool('minio'),
    ['server', path.join(root, 'minio'), '--address', `127.0.0.1:${port}`, '--console-address', `127.0.0.1:${await freePort()}`, '--quiet'],
    { env: { ...process.env, MINIO_ROOT_USER: user, MINIO_ROOT_PASSWORD: secret, MINIO_BROWSER: 'off' }, stdio: ['ignore', logFd, logFd] },
  );
  const stop = () => stopChild(child);
  try {
    const endpoint = `http://127.0.0.1:${port}`;
    await waitFor('MinIO', async () => ((await fetch(`${endpoint}/minio/health/live`)).ok ? true : undefined));
    const s3 = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: user, secretAccessKey: secret } });
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    s3.destroy();
    return { env: { AWS_ACCESS_KEY_ID: user, AWS_SECRET_ACCESS_KEY: secret, AWS_REGION: 'us-east-1', S3_ENDPOINT: endpoint }, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

export function pgbench(pg: Primary, args: string[]): void {
  execFileSync(`${PG_BIN}/pgbench`, ['-h', '127.0.0.1', '-p', String(pg.port), '-U', 'postgres', ...args, 'postgres'], { stdio: ['ignore', 'ignore', 'pipe'] });
}

/**
 * TPC-B's tables and kinds of change, with more rows per transaction: plain
 * TPC-B makes WAL too slowly here (under 1 MiB/s on a busy 2-core machine)
 * to fill a backlog of hundreds of megabytes in reasonable time.
 */
export const WIDE_TPCB = `\\set aid random(1, 100000 * :scale)
\\set bid random(1, 1 * :scale)
\\set tid random(1, 10 * :scale)
\\set delta random(-5000, 5000)
BEGIN;
UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid BETWEEN :aid AND :aid + 200;
UPDATE pgbench_branches SET bbalance = bbalance + :delta WHERE bid = :bid;
INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) SELECT :tid, :bid, :aid + g, :delta, CURRENT_TIMESTAMP FROM generate_series(1, 50) g;
END;
`;
