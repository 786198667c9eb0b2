// A throwaway Redis for a test: /usr/bin/redis-server (installed by
// scripts/setup.sh) on a free loopback port, in a temporary directory, with
// persistence off so nothing outlives the test. `stop()` removes what it
// made; a process exit kills any server still running.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { stopChild } from '../../src/dev/child';
import { freePort, waitFor } from './ports';

export const REDIS_SERVER = process.env.LIFEBOAT_REDIS_SERVER ?? '/usr/bin/redis-server';

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

export interface TestRedis {
  /** redis://[:password@]127.0.0.1:<port> */
  url: string;
  port: number;
  stop(): Promise<void>;
}

/** One PING over a raw socket: the harness should not depend on the client under test. */
function ping(port: number, password?: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let reply = '';
    socket.setTimeout(2000, () => socket.destroy());
    socket.on('error', () => resolve(false));
    socket.on('close', () => resolve(reply.includes('+PONG')));
    socket.on('data', (d: Buffer) => {
      reply += d.toString();
      if (reply.includes('+PONG') || reply.includes('-')) socket.end();
    });
    socket.on('connect', () => socket.write(`${password === undefined ? '' : `AUTH ${password}\r\n`}PING\r\n`));
  });
}

export async function startRedis(opts: { password?: string } = {}): Promise<TestRedis> {
  const root = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-redis-'));
  const port = await freePort();
  const logFile = path.join(root, 'redis.log');
  const log = openSync(logFile, 'a');
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--dir',
    root,
    // No RDB snapshots, no AOF: a test server keeps nothing on disk.
    '--save',
    '',
    '--appendonly',
    'no',
    '--daemonize',
    'no',
    ...(opts.password === undefined ? [] : ['--requirepass', opts.password]),
  ];
  const child = spawn(REDIS_SERVER, args, { cwd: root, stdio: ['ignore', log, log] });
  closeSync(log);
  running.add(child);
  const stop = async () => {
    await stopChild(child);
    running.delete(child);
    // The harness's own temporary directory: provably ours.
    if (existsSync(root)) rmSync(root, { recursive: true, force: true });
  };
  try {
    await waitFor('redis-server to answer PING', async () => {
      if (child.exitCode !== null) {
        throw new Error(`redis-server exited with ${child.exitCode}: ${readFileSync(logFile, 'utf8').slice(-2000)}`);
      }
      return (await ping(port, opts.password)) ? true : undefined;
    });
  } catch (err) {
    await stop();
    throw err;
  }
  const auth = opts.password === undefined ? '' : `:${encodeURIComponent(opts.password)}@`;
  return { url: `redis://${auth}127.0.0.1:${port}`, port, stop };
}
