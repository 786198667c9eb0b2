// One Temporal dev server and one MinIO for the whole test run, on free
// loopback ports in temporary directories; both are stopped again in
// teardown, also when tests fail. Tests reach them through `inject()`
// (test/harness/services.ts).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, openSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { TestProject } from 'vitest/node';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { Connection } from '@temporalio/client';
import { requireTool } from '../../src/tools';
import { freePort, waitFor } from './ports';

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

const children: ChildProcess[] = [];
const dirs: string[] = [];

function start(name: string, bin: string, args: string[], env: NodeJS.ProcessEnv, logDir: string): ChildProcess {
  const log = openSync(path.join(logDir, `${name}.log`), 'a');
  const child = spawn(bin, args, { env: { ...process.env, ...env }, stdio: ['ignore', log, log] });
  children.push(child);
  child.on('exit', (code, signal) => {
    if (code !== 0 && signal === null) process.stderr.write(`[harness] ${name} exited with ${code}; see ${logDir}/${name}.log\n`);
  });
  return child;
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const root = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-test-'));
  dirs.push(root);
  const artifactsDir = path.resolve('test-artifacts');

  const temporalPort = await freePort();
  const temporal = start(
    'temporal',
    requireTool('temporal'),
    ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(temporalPort), '--headless', '--log-level', 'warn',
      '--db-filename', path.join(root, 'temporal.db')],
    {},
    root,
  );

  const minioPort = await freePort();
  const minioConsole = await freePort();
  const accessKey = 'lifeboat-test';
  const secretKey = 'lifeboat-test-secret';
  start(
    'minio',
    requireTool('minio'),
    ['server', path.join(root, 'minio'), '--address', `127.0.0.1:${minioPort}`, '--console-address', `127.0.0.1:${minioConsole}`, '--quiet'],
    { MINIO_ROOT_USER: accessKey, MINIO_ROOT_PASSWORD: secretKey, MINIO_BROWSER: 'off' },
    root,
  );
  const s3Endpoint = `http://127.0.0.1:${minioPort}`;

  const temporalAddress = `127.0.0.1:${temporalPort}`;
  await waitFor('the Temporal dev server', async () => {
    if (temporal.exitCode !== null) throw new Error(`temporal exited with ${temporal.exitCode}; see ${root}/temporal.log`);
    const conn = await Connection.connect({ address: temporalAddress, connectTimeout: 1000 });
    try {
      await conn.workflowService.getSystemInfo({});
      return true;
    } finally {
      await conn.close();
    }
  });
  await waitFor('MinIO', async () => ((await fetch(`${s3Endpoint}/minio/health/live`)).ok ? true : undefined));
  const s3 = new S3Client({
    endpoint: s3Endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: accessKey, secretAccessKey: secretKey },
  });
  const s3Bucket = 'lifeboat-test';
  await s3.send(new CreateBucketCommand({ Bucket: s3Bucket }));
  s3.destroy();

  project.provide('temporalAddress', temporalAddress);
  project.provide('s3Endpoint', s3Endpoint);
  project.provide('s3Bucket', s3Bucket);
  project.provide('s3AccessKey', accessKey);
  project.provide('s3SecretKey', secretKey);
  project.provide('artifactsDir', artifactsDir);

  return async () => {
    for (const child of children) child.kill('SIGTERM');
    await Promise.all(
      children.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) return resolve();
            const t = setTimeout(() => {
              c.kill('SIGKILL');
              resolve();
            }, 10_000);
            c.on('exit', () => {
              clearTimeout(t);
              resolve();
            });
          }),
      ),
    );
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  };
}
