// Services a fault test owns and breaks: its own Temporal dev server (on a
// persistent database, so it can be SIGKILLed and started again on the same
// port with every workflow still there) and its own MinIO (SIGSTOPped to
// freeze it, SIGKILLed, started again on the same port and data directory).
// Never the shared ones from global-setup.ts: every other test file uses those.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { Connection } from '@temporalio/client';
import { stopChild } from '../../src/dev/child';
import { devServerSearchAttributeArgs } from '../../src/recovery/search-attributes';
import { requireTool } from '../../src/tools';
import { minioHealthy, spawnMinio } from '../../src/dev/minio';
import { freePort, waitFor } from './ports';

/** A process the test may freeze, kill and start again with the same arguments. */
interface Restartable {
  /** Pid of the running process (undefined after kill until restart). */
  pid(): number | undefined;
  /** SIGSTOP: the process keeps its sockets (the kernel still accepts connections) but answers nothing. */
  freeze(): void;
  /** SIGCONT. */
  thaw(): void;
  /** SIGKILL, also when frozen; resolves once it has exited. */
  kill(): Promise<void>;
  /** Starts it again with the same arguments (same port, same data), once it answers. */
  restart(): Promise<void>;
  /** Stops it for good and removes the directory made for it. */
  stop(): Promise<void>;
}

function restartable(
  label: string,
  root: string,
  start: () => ChildProcess,
  ready: (child: ChildProcess) => Promise<unknown>,
): Restartable & { boot(): Promise<void> } {
  let child: ChildProcess | undefined;
  const boot = async () => {
    child = start();
    try {
      await ready(child);
    } catch (err) {
      await stopChild(child);
      throw err;
    }
  };
  const signal = (sig: NodeJS.Signals) => {
    if (!child || child.exitCode !== null || child.signalCode !== null) throw new Error(`${label} is not running`);
    child.kill(sig);
  };
  return {
    boot,
    pid: () => (child && child.exitCode === null && child.signalCode === null ? child.pid : undefined),
    freeze: () => signal('SIGSTOP'),
    thaw: () => signal('SIGCONT'),
    async kill() {
      const c = child;
      if (!c || c.exitCode !== null || c.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => c.once('exit', () => resolve()));
      c.kill('SIGKILL');
      await exited;
    },
    restart: boot,
    async stop() {
      if (child) {
        if (child.signalCode === null && child.exitCode === null) child.kill('SIGCONT');
        await stopChild(child);
      }
      // Our own temporary directory, made below: provably ours to remove.
      rmSync(root, { recursive: true, force: true });
    },
  };
}

export interface OwnTemporal extends Restartable {
  address: string;
  logFile: string;
}

/**
 * `temporal server start-dev --db-filename <file>` on a free port, with
 * Lifeboat's search attributes: state survives a SIGKILL and a restart.
 */
export async function startOwnTemporal(label: string): Promise<OwnTemporal> {
  const root = mkdtempSync(path.join(os.tmpdir(), `lifeboat-faults-temporal-${label}-`));
  const port = await freePort();
  const address = `127.0.0.1:${port}`;
  const logFile = path.join(root, 'temporal.log');
  const args = [
    'server',
    'start-dev',
    '--ip',
    '127.0.0.1',
    '--port',
    String(port),
    '--headless',
    '--log-level',
    'warn',
    '--db-filename',
    path.join(root, 'temporal.db'),
    ...devServerSearchAttributeArgs(),
  ];
  const r = restartable(
    'the Temporal dev server',
    root,
    () => spawn(requireTool('temporal'), args, { stdio: ['ignore', openSync(logFile, 'a'), openSync(logFile, 'a')] }),
    (child) =>
      waitFor(
        `the Temporal dev server on ${address}`,
        async () => {
          if (child.exitCode !== null) throw new Error(`temporal exited with ${child.exitCode}; see ${logFile}`);
          const conn = await Connection.connect({ address, connectTimeout: 1000 });
          try {
            await conn.workflowService.getSystemInfo({});
            return true;
          } finally {
            await conn.close();
          }
        },
        { timeoutMs: 120_000, intervalMs: 200 },
      ),
  );
  await r.boot();
  return { ...r, address, logFile };
}

export interface OwnMinio extends Restartable {
  endpoint: string;
  bucket: string;
  /** AWS_* and S3_ENDPOINT for a process that stores into it. */
  env: Record<string, string>;
}

// Test-only credentials of a MinIO that lives for one test on loopback.
const ACCESS_KEY = 'lifeboat-faults';
const SECRET_KEY = 'lifeboat-faults-secret';

/**
 * A MinIO of the test's own, with one bucket. `env` adds server settings
 * (e.g. MINIO_KMS_SECRET_KEY for server-side encryption with a static key).
 */
export async function startOwnMinio(label: string, opts: { env?: Record<string, string> } = {}): Promise<OwnMinio> {
  const root = mkdtempSync(path.join(os.tmpdir(), `lifeboat-faults-minio-${label}-`));
  const port = await freePort();
  const consolePort = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const logFile = path.join(root, 'minio.log');
  const r = restartable(
    'MinIO',
    root,
    () =>
      spawnMinio({
        dataDir: path.join(root, 'data'),
        port,
        consolePort,
        logFile,
        user: ACCESS_KEY,
        password: SECRET_KEY,
        env: opts.env,
      }),
    (child) => minioHealthy(child, endpoint, logFile, { check: 'ready', timeoutMs: 120_000 }),
  );
  await r.boot();
  const bucket = 'faults';
  const s3 = new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY },
  });
  try {
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  } finally {
    s3.destroy();
  }
  const env = {
    AWS_ACCESS_KEY_ID: ACCESS_KEY,
    AWS_SECRET_ACCESS_KEY: SECRET_KEY,
    AWS_REGION: 'us-east-1',
    S3_ENDPOINT: endpoint,
  };
  return { ...r, endpoint, bucket, env };
}
