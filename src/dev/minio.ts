// A MinIO server on loopback for the benchmarks and the tests (never for
// users: `lifeboat dev` keeps its repository on file://): the binary
// scripts/setup.sh builds, one data directory, the console on a port of its
// own, the browser off, its log appended to a file.
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync } from 'node:fs';
import { requireTool } from '../tools';
import { waitFor } from './ports';

export interface MinioServer {
  dataDir: string;
  port: number;
  consolePort: number;
  logFile: string;
  /** The root user and its password (test-only values: this MinIO lives on loopback for one run). */
  user: string;
  password: string;
  /** More server arguments (e.g. --certs-dir) and environment (e.g. MINIO_KMS_SECRET_KEY). */
  args?: string[];
  env?: Record<string, string>;
}

export function spawnMinio(s: MinioServer): ChildProcess {
  const log = openSync(s.logFile, 'a');
  return spawn(
    requireTool('minio'),
    [
      'server',
      s.dataDir,
      '--address',
      `127.0.0.1:${s.port}`,
      '--console-address',
      `127.0.0.1:${s.consolePort}`,
      ...(s.args ?? []),
      '--quiet',
    ],
    {
      env: { ...process.env, MINIO_ROOT_USER: s.user, MINIO_ROOT_PASSWORD: s.password, MINIO_BROWSER: 'off', ...s.env },
      stdio: ['ignore', log, log],
    },
  );
}

/** Waits until MinIO answers its health check (`live`, or `ready`: it can also serve requests); fails at once if it exited. */
export function minioHealthy(
  child: ChildProcess,
  endpoint: string,
  logFile: string,
  { check = 'live', timeoutMs = 60_000 }: { check?: 'live' | 'ready'; timeoutMs?: number } = {},
): Promise<true> {
  return waitFor(
    `MinIO on ${endpoint}`,
    async () => {
      if (child.exitCode !== null) throw new Error(`minio exited with ${child.exitCode}; see ${logFile}`);
      return (await fetch(`${endpoint}/minio/health/${check}`)).ok ? true : undefined;
    },
    { timeoutMs, intervalMs: 200 },
  );
}
