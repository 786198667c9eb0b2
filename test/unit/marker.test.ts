// The marker fast path of archive-push in bin/lifeboat (POSIX sh): when it
// may answer PostgreSQL without starting Node, and when it must leave the
// call to the full command. LIFEBOAT_NODE=false makes any fall-through to
// Node exit 1, so an exit 0 here proves the shell answered alone.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { archiveTargetId, fileIdentity, markerText, PUSHED_MARKER_DIR } from '../../src/wal/marker';

const exec = promisify(execFile);
const CLI = path.resolve(__dirname, '../../bin/lifeboat');
const SEG = '000000010000000000000007';
let dataDir: string;
const walFile = () => path.join(dataDir, 'pg_wal', SEG);
const markers = () => path.join(dataDir, 'pg_wal', PUSHED_MARKER_DIR);

function mark(target: { repo?: string; runbook?: string; cluster?: string }): void {
  mkdirSync(markers(), { recursive: true });
  writeFileSync(
    path.join(markers(), SEG),
    markerText(fileIdentity(walFile())!, 'a'.repeat(64), archiveTargetId(target)),
  );
}

/** Exit code of `lifeboat archive-push ...` in the data directory, with Node unavailable. */
async function shellOnly(...args: string[]): Promise<number> {
  try {
    await exec(CLI, ['archive-push', ...args], { cwd: dataDir, env: { ...process.env, LIFEBOAT_NODE: 'false' } });
    return 0;
  } catch (err) {
    return (err as { code: number }).code;
  }
}

beforeEach(() => {
  dataDir = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-marker-'));
  mkdirSync(path.join(dataDir, 'pg_wal'));
  writeFileSync(walFile(), Buffer.alloc(1024, 7));
});
afterEach(() => rmSync(dataDir, { recursive: true, force: true }));

describe('bin/lifeboat archive-push fast path', () => {
  it('writes file identities in the form of GNU stat, which the shell compares', async () => {
    const { stdout } = await exec('stat', ['-c', '%d:%i:%s:%.9Y', walFile()]);
    expect(fileIdentity(walFile())).toBe(stdout.trim());
  });

  it('answers a call for a file pushed ahead to the same repository without Node, and uses the marker once', async () => {
    mark({ repo: 'file:///r', cluster: 'orders' });
    expect(await shellOnly(`pg_wal/${SEG}`, '--repo', 'file:///r', '--cluster', 'orders', '--parallel', '4')).toBe(0);
    expect(readdirSync(markers())).toEqual([]);
    expect(await shellOnly(`pg_wal/${SEG}`, '--repo', 'file:///r', '--cluster', 'orders')).toBe(1);
  });

  it('accepts --opt=value forms and runbook targets', async () => {
    mark({ runbook: 'orders' });
    expect(await shellOnly(`pg_wal/${SEG}`, '--runbook=orders', '--runbooks-dir', '/etc/lifeboat')).toBe(0);
  });

  it('leaves the call to Node when the marker was written for another repository', async () => {
    mark({ repo: 'file:///other', cluster: 'orders' });
    expect(await shellOnly(`pg_wal/${SEG}`, '--repo', 'file:///r', '--cluster', 'orders')).toBe(1);
    expect(readdirSync(markers())).toEqual([]);
  });

  it('leaves the call to Node when the file changed since it was pushed', async () => {
    mark({ repo: 'file:///r', cluster: 'orders' });
    writeFileSync(walFile(), Buffer.alloc(1024, 8));
    utimesSync(walFile(), new Date(), new Date(Date.now() + 5000));
    expect(await shellOnly(`pg_wal/${SEG}`, '--repo', 'file:///r', '--cluster', 'orders')).toBe(1);
  });

  it('leaves anything it does not understand to Node', async () => {
    mark({ repo: 'file:///r', cluster: 'orders' });
    expect(await shellOnly(`pg_wal/${SEG}`, '--repo', 'file:///r', '--cluster', 'orders', '--verbose')).toBe(1);
    expect(await shellOnly('--repo', 'file:///r')).toBe(1);
    expect(await shellOnly(`pg_wal/${SEG}`, '--repo')).toBe(1);
    expect(readdirSync(markers())).toEqual([SEG]);
  });

  it('waits for the marker while a live pusher holds the claim on the file', async () => {
    mkdirSync(markers(), { recursive: true });
    writeFileSync(path.join(markers(), `${SEG}.claim`), String(process.pid));
    const call = shellOnly(`pg_wal/${SEG}`, '--repo', 'file:///r', '--cluster', 'orders');
    await new Promise((r) => setTimeout(r, 300));
    mark({ repo: 'file:///r', cluster: 'orders' });
    rmSync(path.join(markers(), `${SEG}.claim`));
    expect(await call).toBe(0);
  });
});
