// The marker fast path of archive-push (src/wal/marker.ts): when it may
// answer PostgreSQL without pushing, and when it must leave the call to the
// full command.
import { mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { archiveTargetId, fastArchivePush, fileIdentity, markerText, PUSHED_MARKER_DIR } from '../../src/wal/marker';

const SEG = '000000010000000000000007';
let dataDir: string;
const walFile = () => path.join(dataDir, 'pg_wal', SEG);
const markers = () => path.join(dataDir, 'pg_wal', PUSHED_MARKER_DIR);

function mark(target: { repo?: string; runbook?: string; cluster?: string }): void {
  mkdirSync(markers(), { recursive: true });
  writeFileSync(path.join(markers(), SEG), markerText(fileIdentity(walFile())!, 'a'.repeat(64), archiveTargetId(target)));
}

beforeEach(() => {
  dataDir = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-marker-'));
  mkdirSync(path.join(dataDir, 'pg_wal'));
  writeFileSync(walFile(), Buffer.alloc(1024, 7));
});
afterEach(() => rmSync(dataDir, { recursive: true, force: true }));

describe('fastArchivePush', () => {
  it('answers a call for a file pushed ahead to the same repository, and uses the marker once', () => {
    mark({ repo: 'file:///r', cluster: 'orders' });
    expect(fastArchivePush([`pg_wal/${SEG}`, '--repo', 'file:///r', '--cluster', 'orders', '--parallel', '4'], dataDir)).toBe(true);
    expect(readdirSync(markers())).toEqual([]);
    expect(fastArchivePush([`pg_wal/${SEG}`, '--repo', 'file:///r', '--cluster', 'orders'], dataDir)).toBe(false);
  });

  it('accepts --opt=value forms and runbook targets', () => {
    mark({ runbook: 'orders' });
    expect(fastArchivePush([`pg_wal/${SEG}`, '--runbook=orders', '--runbooks-dir', '/etc/lifeboat'], dataDir)).toBe(true);
  });

  it('leaves the call to the full command when the marker was written for another repository', () => {
    mark({ repo: 'file:///other', cluster: 'orders' });
    expect(fastArchivePush([`pg_wal/${SEG}`, '--repo', 'file:///r', '--cluster', 'orders'], dataDir)).toBe(false);
    expect(readdirSync(markers())).toEqual([]);
  });

  it('leaves the call to the full command when the file changed since it was pushed', () => {
    mark({ repo: 'file:///r', cluster: 'orders' });
    writeFileSync(walFile(), Buffer.alloc(1024, 8));
    utimesSync(walFile(), new Date(), new Date(Date.now() + 5000));
    expect(fastArchivePush([`pg_wal/${SEG}`, '--repo', 'file:///r', '--cluster', 'orders'], dataDir)).toBe(false);
  });

  it('leaves anything it does not understand to the full command', () => {
    mark({ repo: 'file:///r', cluster: 'orders' });
    expect(fastArchivePush([`pg_wal/${SEG}`, '--repo', 'file:///r', '--cluster', 'orders', '--verbose'], dataDir)).toBe(false);
    expect(fastArchivePush(['--repo', 'file:///r'], dataDir)).toBe(false);
    expect(fastArchivePush([`pg_wal/${SEG}`, '--repo'], dataDir)).toBe(false);
  });
});
