// The prefetch spool's history answers (src/wal/spool-history.ts) and the
// test that decides whether a spool may be read at all (spoolTrusted).
import { createHash } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  mkdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { bootId, Spool, spoolTrusted } from '../../src/wal/spool';
import { ABSENT_TTL_MS, refreshHistories } from '../../src/wal/spool-history';

const TARGET = 'repo=file:///r cluster=c';
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function spoolDir(): string {
  const root = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-spool-history-'));
  dirs.push(root);
  const dir = path.join(root, 'spool');
  mkdirSync(dir, { mode: 0o700 });
  return dir;
}

const text = (s: string) => ({ content: Buffer.from(s), sha256: createHash('sha256').update(s).digest('hex') });

describe('refreshHistories', () => {
  it('spools the history files the archive has from the timeline on and marks the first it lacks, expiring ABSENT_TTL_MS after the probe began', async () => {
    const dir = spoolDir();
    const spool = new Spool(dir, TARGET);
    const archive: Record<string, string> = {
      '00000002.history': '1\t0/3000000\tno recovery target specified\n',
      '00000003.history': '1\t0/3000000\t...\n2\t0/5000000\t...\n',
    };
    const asked: string[] = [];
    const now = Date.parse('2026-01-01T00:00:00Z');
    const absent = await refreshHistories(
      spool,
      async (name) => (asked.push(name), archive[name] ? text(archive[name]!) : undefined),
      1,
      () => now,
    );
    expect(absent).toBe('00000004.history');
    // Timeline 1 has no history file: the walk starts at 2.
    expect(asked).toEqual(['00000002.history', '00000003.history', '00000004.history']);
    expect(readFileSync(path.join(dir, '00000003.history'), 'utf8')).toBe(archive['00000003.history']);
    expect(readFileSync(path.join(dir, '00000003.history.sha256'), 'utf8')).toBe(
      `${text(archive['00000003.history']!).sha256} ${await bootId()} ${TARGET}\n`,
    );
    expect(readFileSync(path.join(dir, '00000004.history.absent'), 'utf8')).toBe(`${TARGET}\n`);
    expect(statSync(path.join(dir, '00000004.history.absent')).mtimeMs).toBe(now + ABSENT_TTL_MS);
    // The next probe renews it in place: a new expiry, no new directory entry.
    const before = statSync(path.join(dir, '00000004.history.absent')).ino;
    await refreshHistories(
      spool,
      async (name) => (archive[name] ? text(archive[name]!) : undefined),
      1,
      () => now + 5000,
    );
    expect(statSync(path.join(dir, '00000004.history.absent'))).toMatchObject({
      ino: before,
      mtimeMs: now + 5000 + ABSENT_TTL_MS,
    });
  });

  it('skips what is spooled, replaces the marker when the missing file appears, and drops markers of other names', async () => {
    const dir = spoolDir();
    const spool = new Spool(dir, TARGET);
    const archive: Record<string, string> = { '00000002.history': 'two\n' };
    const fetch = async (name: string) => (archive[name] ? text(archive[name]!) : undefined);
    expect(await refreshHistories(spool, fetch, 2)).toBe('00000003.history');
    writeFileSync(path.join(dir, '00000009.history.absent'), `${TARGET}\n`);
    archive['00000003.history'] = 'three\n';
    const asked: string[] = [];
    expect(await refreshHistories(spool, async (name) => (asked.push(name), fetch(name)), 2)).toBe('00000004.history');
    expect(asked).toEqual(['00000003.history', '00000004.history']);
    expect(existsSync(path.join(dir, '00000003.history.absent'))).toBe(false);
    expect(existsSync(path.join(dir, '00000009.history.absent'))).toBe(false);
    expect(readFileSync(path.join(dir, '00000003.history'), 'utf8')).toBe('three\n');
  });

  it('writes no marker when the store cannot be asked: the old one expires by itself', async () => {
    const dir = spoolDir();
    const spool = new Spool(dir, TARGET);
    const old = path.join(dir, '00000002.history.absent');
    writeFileSync(old, `${TARGET}\n`);
    const expiry = new Date(Math.ceil(Date.now() / 1000) * 1000 + 3000); // whole seconds: mtimeMs is exact then
    utimesSync(old, expiry, expiry);
    await expect(refreshHistories(spool, () => Promise.reject(new Error('connection refused')), 1)).rejects.toThrow(
      'connection refused',
    );
    expect(statSync(old).mtimeMs).toBe(expiry.getTime());
  });
});

describe('spoolTrusted', () => {
  it('trusts only a directory of this user that group and others cannot write, and never a symlink', async () => {
    const dir = spoolDir();
    expect(await spoolTrusted(dir)).toBe(true);
    chmodSync(dir, 0o750);
    expect(await spoolTrusted(dir)).toBe(true);
    chmodSync(dir, 0o770);
    expect(await spoolTrusted(dir)).toBe(false);
    chmodSync(dir, 0o702);
    expect(await spoolTrusted(dir)).toBe(false);
    chmodSync(dir, 0o700);
    const link = path.join(path.dirname(dir), 'link');
    symlinkSync(dir, link);
    expect(await spoolTrusted(link)).toBe(false);
    expect(await spoolTrusted(path.join(path.dirname(dir), 'missing'))).toBe(false);
  });

  it('a spool it does not trust is neither read nor written: take and prefetch leave it alone', async () => {
    const dir = spoolDir();
    const spool = new Spool(dir, TARGET);
    const content = Buffer.alloc(1024, 3);
    writeFileSync(path.join(dir, '000000010000000000000003'), content);
    writeFileSync(
      path.join(dir, '000000010000000000000003.sha256'),
      `${createHash('sha256').update(content).digest('hex')} ${await bootId()} ${TARGET}\n`,
    );
    chmodSync(dir, 0o777);
    const dest = path.join(path.dirname(dir), 'RECOVERYXLOG');
    expect(await spool.take('000000010000000000000003', dest)).toBe(false);
    expect(existsSync(dest)).toBe(false);
    expect(await spool.prepare()).toBe(false);
  });
});
