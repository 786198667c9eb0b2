// One Temporal dev server and one MinIO for the whole test run, on free
// loopback ports in a temporary directory; both are stopped again in
// teardown, also when tests fail or when start-up itself fails half-way.
// Tests reach them through `inject()` (test/harness/services.ts).
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { TestProject } from 'vitest/node';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { startOwnDevServer } from './dev-server';
import { minioHealthy, spawnMinio } from '../../src/dev/minio';
import { stopChild } from '../../src/dev/child';
import { freePort } from './ports';

declare module 'vitest' {
  export interface ProvidedContext {
    temporalAddress: string;
    s3Endpoint: string;
    s3Bucket: string;
    s3AccessKey: string;
    s3SecretKey: string;
    artifactsDir: string;
  }
}

async function startMinio(root: string): Promise<{ endpoint: string; stop: () => Promise<void> }> {
  const port = await freePort();
  const consolePort = await freePort();
  const logFile = path.join(root, 'minio.log');
  const child = spawnMinio({
    dataDir: path.join(root, 'minio'),
    port,
    consolePort,
    logFile,
    user: ACCESS_KEY,
    password: SECRET_KEY,
  });
  const stop = () => stopChild(child);
  const endpoint = `http://127.0.0.1:${port}`;
  try {
    await minioHealthy(child, endpoint, logFile);
  } catch (err) {
    await stop();
    throw err;
  }
  return { endpoint, stop };
}

// Test-only credentials of a MinIO that lives for one run on loopback.
const ACCESS_KEY = 'lifeboat-test';
const SECRET_KEY = 'lifeboat-test-secret';
const BUCKET = 'lifeboat-test';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const root = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-test-'));
  const stops: Array<() => Promise<void>> = [];
  const teardown = async () => {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    // Our own temporary directory, made above: provably ours to remove.
    rmSync(root, { recursive: true, force: true });
  };
  try {
    const temporal = await startOwnDevServer(async () => ({ port: await freePort() }), {
      dbFilename: path.join(root, 'temporal.db'),
      logFile: path.join(root, 'temporal.log'),
    });
    stops.push(() => temporal.stop());
    const minio = await startMinio(root);
    stops.push(() => minio.stop());

    const s3 = new S3Client({
      endpoint: minio.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY },
    });
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
    s3.destroy();

    project.provide('temporalAddress', temporal.address);
    project.provide('s3Endpoint', minio.endpoint);
    project.provide('s3Bucket', BUCKET);
    project.provide('s3AccessKey', ACCESS_KEY);
    project.provide('s3SecretKey', SECRET_KEY);
    project.provide('artifactsDir', path.resolve('test-artifacts'));
  } catch (err) {
    await teardown();
    throw err;
  }
  return teardown;
}
