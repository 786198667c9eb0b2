// restore_command's hand-over (issue 13): a segment the prefetcher verified
// when it entered the spool is handed to PostgreSQL by bin/lifeboat with one
// `stat` and one `mv`, no Node and no second sha256, and only from a spool
// that the user restore_command runs as (postgres here) owns alone. History
// probes are answered from the spool too, and replay-wal starts the
// prefetcher, as postgres, before the postmaster.
//
// Who answered is observed, never timed: LIFEBOAT_NODE names a script that
// records each start of Node before running it, every tool bin/lifeboat may
// start (sha256sum, stat, mv, cat, ...) is a recording shim first on PATH,
// and LIFEBOAT_ARCHIVE_GET_LOG gets bin/lifeboat's and Node's own line per call.
import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from 'pg';
import { activity } from '../harness/activity';
import { startTestCluster, type TestCluster } from '../harness/cluster';
import { postgresTempDir, stopRestoredCopy, switchAndWaitArchived } from '../harness/postgres';
import { waitFor } from '../harness/ports';
import { takeBaseBackup } from '../../src/backup/base-backup';
import type { BackupMeta } from '../../src/catalog/backup-meta';
import { openRepository } from '../../src/repository';
import { keys } from '../../src/repository/layout';
import type { Repository } from '../../src/repository/types';
import { loadRunbook } from '../../src/runbook/load';
import type { Runbook } from '../../src/runbook/schema';
import { projectRoot } from '../../src/tools';
import { isSegmentName, segmentName, segnoOfLsn } from '../../src/wal/names';
import { replayWal, restoreBaseBackup } from '../../activities/restore';
import type { RestoreMarker } from '../../src/restore/marker';
import { startPrefetcher } from '../../src/restore/prefetch';
import { restoreSite } from '../../src/restore/site';
import { runCleanups } from '../harness/cleanups';

const BIN = path.join(projectRoot(), 'bin', 'lifeboat');
const TOOLS = ['sha256sum', 'stat', 'mv', 'cat', 'dirname', 'basename', 'readlink', 'rm', 'setsid'];
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const BOOT = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();

const runbooksDir = postgresTempDir('runbooks');
/** postgres-owned scratch: the recording shims, spools, the files handed over. */
const work = postgresTempDir('handover');
const cleanups: Array<() => Promise<unknown> | unknown> = [];
/** Followers these tests started (the pid in a spool's prefetcher.pid): stopped by pid at the end. */
const followers = new Set<number>();

let tc: TestCluster;
let runbook: Runbook;
let repo: Repository;
let backup: BackupMeta;
/** Segments archived after the backup's start, oldest first. */
let archived: string[];
let target: string;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** bin/lifeboat as `user` (runuser), with exactly PATH and `env` besides runuser's own. */
function lifeboatAs(user: string, args: string[], opts: { cwd: string; env?: Record<string, string> }): Promise<Run> {
  const vars = Object.entries({
    PATH: `${path.join(work, 'shims')}:${process.env.PATH ?? '/usr/bin:/bin'}`,
    LIFEBOAT_NODE: process.execPath,
    ...opts.env,
  }).map(([k, v]) => `${k}=${v}`);
  return new Promise((resolve) => {
    execFile(
      'runuser',
      ['-u', user, '--', 'env', ...vars, BIN, ...args],
      { cwd: opts.cwd, maxBuffer: 1 << 20 },
      (err, stdout, stderr) =>
        resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

function lines(file: string): string[] {
  return existsSync(file)
    ? readFileSync(file, 'utf8')
        .split('\n')
        .filter((l) => l !== '')
    : [];
}

/** A fresh case directory owned by postgres, with its own call records. */
function caseDir(label: string): {
  dir: string;
  spool: string;
  nodeCalls: string;
  toolCalls: string;
  trace: string;
  env: Record<string, string>;
} {
  const dir = path.join(work, label);
  mkdirSync(dir, { mode: 0o700 });
  chownSync(dir, statSync(work).uid, statSync(work).gid);
  const nodeCalls = path.join(dir, 'node-calls');
  const toolCalls = path.join(dir, 'tool-calls');
  const trace = path.join(dir, 'trace');
  return {
    dir,
    spool: path.join(dir, 'spool'),
    nodeCalls,
    toolCalls,
    trace,
    env: {
      LIFEBOAT_NODE: path.join(work, 'shims', 'record-node'),
      RECORD_NODE: nodeCalls,
      RECORD_TOOLS: toolCalls,
      LIFEBOAT_ARCHIVE_GET_LOG: trace,
    },
  };
}

const repoArgs = () => ['--repo', tc.repoUrl, '--cluster', tc.name];

/** Fills a spool as postgres, the way the follower does (one-shot: no process stays). */
async function prefetchAs(user: string, spool: string, first: string, count: number, cwd: string): Promise<void> {
  const r = await lifeboatAs(
    user,
    ['archive-prefetch', first, '--count', String(count), '--spool-dir', spool, ...repoArgs()],
    { cwd },
  );
  expect(r).toEqual({ code: 0, stdout: '', stderr: '' });
}

async function archivedContent(walFile: string): Promise<Buffer> {
  const { decodeWal } = await import('../../src/wal/compress');
  const got = await repo.get(keys.wal(tc.name, walFile));
  return isSegmentName(walFile) ? decodeWal(walFile, got!.body) : got!.body;
}

beforeAll(async () => {
  process.env.LIFEBOAT_RUNBOOKS_DIR = runbooksDir;
  // The shims: record, then run the real thing.
  const shims = path.join(work, 'shims');
  mkdirSync(shims, { mode: 0o755 });
  chmodSync(work, 0o711); // postgres and nobody may pass through to what a case opens to them
  writeFileSync(
    path.join(shims, 'record-node'),
    `#!/bin/sh\n[ -n "$RECORD_NODE" ] && echo "$*" >>"$RECORD_NODE"\nexec ${process.execPath} "$@"\n`,
    { mode: 0o755 },
  );
  for (const tool of TOOLS) {
    const real = ['/usr/bin', '/bin', '/usr/sbin', '/sbin'].map((d) => path.join(d, tool)).find((p) => existsSync(p))!;
    writeFileSync(
      path.join(shims, tool),
      `#!/bin/sh\n[ -n "$RECORD_TOOLS" ] && echo ${tool} >>"$RECORD_TOOLS"\nexec ${real} "$@"\n`,
      { mode: 0o755 },
    );
  }

  tc = await startTestCluster({ name: 'handover', kind: 'file', runbooksDir, host: 'handover' });
  cleanups.push(() => tc.stop());
  runbook = await loadRunbook(tc.name);
  repo = await openRepository(tc.repoUrl);
  target = `repo=${tc.repoUrl} cluster=${tc.name}`;
  await tc.pg.query('create table t (id int primary key, v text)');
  await tc.pg.query(`insert into t select g, 'before backup' from generate_series(1, 100) g`);
  backup = await takeBaseBackup({ runbook });
  for (let round = 0; round < 3; round++) {
    await tc.pg.query(`insert into t select g, 'after backup' from generate_series($1::int, $1::int + 999) g`, [
      1000 + round * 1000,
    ]);
    await switchAndWaitArchived(tc.pg);
  }
  await tc.pg.query(`select pg_create_restore_point('handover-point')`);
  await tc.pg.query(`insert into t values (99999, 'after the point')`);
  await switchAndWaitArchived(tc.pg);
  archived = (await repo.list(keys.walPrefix(tc.name)))
    .map((o) => path.basename(o.key).replace(/\.zst$/, ''))
    .filter(isSegmentName);
});

afterAll(async () => {
  for (const pid of followers) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      /* gone already */
    }
  }
  await runCleanups(cleanups);
  rmSync(work, { recursive: true, force: true });
  rmSync(runbooksDir, { recursive: true, force: true });
});

describe('restore_command hand-over from the prefetch spool', () => {
  it('hands a spooled segment over as the postgres user with one stat and one mv: no Node, no sha256sum', async () => {
    const c = caseDir('hit');
    const walFile = archived[1]!;
    await prefetchAs('postgres', c.spool, walFile, 2, c.dir);
    // The spool the prefetcher made: postgres's alone.
    const st = statSync(c.spool);
    expect({ uid: st.uid, mode: st.mode & 0o777 }).toEqual({ uid: statSync(work).uid, mode: 0o700 });
    expect(readFileSync(path.join(c.spool, `${walFile}.sha256`), 'utf8')).toBe(
      `${sha(await archivedContent(walFile))} ${BOOT} ${target}\n`,
    );

    mkdirSync(path.join(c.dir, 'pg_wal'));
    chownSync(path.join(c.dir, 'pg_wal'), statSync(work).uid, statSync(work).gid);
    const r = await lifeboatAs(
      'postgres',
      ['archive-get', walFile, 'pg_wal/RECOVERYXLOG', ...repoArgs(), '--prefetch', '0', '--spool-dir', c.spool],
      {
        cwd: c.dir,
        env: c.env,
      },
    );
    expect(r).toEqual({ code: 0, stdout: '', stderr: '' });
    expect(sha(readFileSync(path.join(c.dir, 'pg_wal', 'RECOVERYXLOG')))).toBe(sha(await archivedContent(walFile)));
    expect(lines(c.nodeCalls)).toEqual([]);
    expect(lines(c.toolCalls)).toEqual(['stat', 'mv']);
    expect(lines(c.trace)).toEqual([`${walFile} sh spool`]);
    expect(existsSync(path.join(c.spool, walFile))).toBe(false);
  });

  it.each([
    ['group-writable (0770)', 0o770, undefined],
    ['writable by others (0707)', 0o707, undefined],
    ['owned by another user (nobody)', 0o700, 'nobody'],
  ] as const)(
    'does not trust a spool %s: Node serves the archived copy, never the one found there',
    async (label, mode, owner) => {
      const c = caseDir(`untrusted-${mode.toString(8)}-${owner ?? 'postgres'}`);
      const walFile = archived[1]!;
      await prefetchAs('postgres', c.spool, walFile, 1, c.dir);
      // Someone else's content with a sidecar that matches it: even a reader
      // that hashes would take it, so only the spool's owner and mode can refuse it.
      const forged = Buffer.from(readFileSync(path.join(c.spool, walFile)));
      forged[8192] = forged[8192]! ^ 0xff;
      writeFileSync(path.join(c.spool, walFile), forged);
      writeFileSync(path.join(c.spool, `${walFile}.sha256`), `${sha(forged)} ${BOOT} ${target}\n`);
      chmodSync(c.spool, mode);
      if (owner) execFileSync('chown', ['-R', owner, c.spool], { stdio: 'ignore' });

      const r = await lifeboatAs(
        'postgres',
        ['archive-get', walFile, 'RECOVERYXLOG', ...repoArgs(), '--prefetch', '0', '--spool-dir', c.spool],
        { cwd: c.dir, env: c.env },
      );
      expect(r, label).toEqual({ code: 0, stdout: '', stderr: '' });
      expect(sha(readFileSync(path.join(c.dir, 'RECOVERYXLOG')))).toBe(sha(await archivedContent(walFile)));
      expect(lines(c.nodeCalls)).toHaveLength(1);
      expect(lines(c.trace)).toEqual([`${walFile} node restored`]);
      // Node neither took it nor wrote into the spool.
      expect(sha(readFileSync(path.join(c.spool, walFile)))).toBe(sha(forged));
    },
  );

  it('a segment another user puts into the spool never reaches %p: they cannot write into it, and a spool where they could is not read', async () => {
    const c = caseDir('intruder');
    const walFile = archived[2]!;
    await prefetchAs('postgres', c.spool, walFile, 1, c.dir);
    chmodSync(c.dir, 0o711);
    const forged = Buffer.alloc(16 * 1024 * 1024, 7);
    const forgedFile = path.join(work, 'forged');
    writeFileSync(forgedFile, forged, { mode: 0o644 });
    // Replacing postgres's files (a directory's write bit lets one unlink them), then writing its own.
    const plant = `rm -f ${c.spool}/${walFile} ${c.spool}/${walFile}.sha256 && cat ${forgedFile} >${c.spool}/${walFile} && echo '${sha(forged)} ${BOOT} ${target}' >${c.spool}/${walFile}.sha256`;
    const asNobody = () =>
      new Promise<number>((resolve) =>
        execFile('runuser', ['-u', 'nobody', '--', 'sh', '-c', plant], (err) =>
          resolve(err ? Number((err as { code?: number }).code ?? 1) : 0),
        ),
      );
    // The spool is postgres's, mode 0700: nobody cannot even open it.
    expect(await asNobody()).not.toBe(0);
    expect(sha(readFileSync(path.join(c.spool, walFile)))).toBe(sha(await archivedContent(walFile)));
    // Left open to everyone (a misconfiguration), the intruder's write succeeds ...
    chmodSync(c.spool, 0o777);
    expect(await asNobody()).toBe(0);
    expect(statSync(path.join(c.spool, walFile)).uid).not.toBe(statSync(work).uid);
    // ... and is never handed over: the spool is not trusted, Node downloads.
    const r = await lifeboatAs(
      'postgres',
      ['archive-get', walFile, 'RECOVERYXLOG', ...repoArgs(), '--prefetch', '0', '--spool-dir', c.spool],
      { cwd: c.dir, env: c.env },
    );
    expect(r).toEqual({ code: 0, stdout: '', stderr: '' });
    expect(sha(readFileSync(path.join(c.dir, 'RECOVERYXLOG')))).toBe(sha(await archivedContent(walFile)));
    expect(lines(c.trace)).toEqual([`${walFile} node restored`]);
  });

  it('answers a history file the archive lacks from the spool while the probe is fresh; a stale probe or another target goes to Node; one archived later is served once the prefetcher looked again', async () => {
    const c = caseDir('history');
    await prefetchAs('postgres', c.spool, archived[0]!, 1, c.dir);
    const marker = path.join(c.spool, '00000002.history.absent');
    expect(readFileSync(marker, 'utf8')).toBe(`${target}\n`);
    // Its mtime is when the answer stops being trusted: ahead of now.
    expect(statSync(marker).mtimeMs).toBeGreaterThan(Date.now());
    const get = (name: string, args: string[] = repoArgs()) =>
      lifeboatAs('postgres', ['archive-get', name, 'RECOVERYHISTORY', ...args, '--spool-dir', c.spool], {
        cwd: c.dir,
        env: c.env,
      });

    expect(await get('00000002.history')).toMatchObject({ code: 1, stdout: '' });
    expect(lines(c.nodeCalls)).toEqual([]);
    expect(lines(c.trace)).toEqual(['00000002.history sh absent']);

    // A probe made for another archive target answers nothing for this one.
    expect(await get('00000002.history', ['--repo', tc.repoUrl, '--cluster', 'another-cluster'])).toMatchObject({
      code: 1,
    });
    expect(lines(c.trace).at(-1)).toBe('00000002.history node absent');

    // Expired (its mtime passed): Node asks the repository.
    const past = new Date(Date.now() - 1000);
    utimesSync(marker, past, past);
    expect(await get('00000002.history')).toMatchObject({ code: 1 });
    expect(lines(c.trace).at(-1)).toBe('00000002.history node absent');
    expect(lines(c.nodeCalls)).toHaveLength(2);

    // Another copy promoted meanwhile: its history file is archived. The
    // branch point is far ahead, so the primary's archiving is not refused.
    const history = Buffer.from('1\tFF/0\tno recovery target specified\n');
    const key = keys.wal(tc.name, '00000002.history');
    await repo.put(key, history, { sha256: sha(history), ifAbsent: true });
    try {
      await prefetchAs('postgres', c.spool, archived[0]!, 1, c.dir);
      expect(existsSync(marker)).toBe(false);
      expect(readFileSync(path.join(c.spool, '00000003.history.absent'), 'utf8')).toBe(`${target}\n`);
      const calls = lines(c.nodeCalls).length;
      expect(await get('00000002.history')).toEqual({ code: 0, stdout: '', stderr: '' });
      expect(readFileSync(path.join(c.dir, 'RECOVERYHISTORY'))).toEqual(history);
      expect(await get('00000003.history')).toMatchObject({ code: 1 });
      expect(lines(c.nodeCalls)).toHaveLength(calls);
      expect(lines(c.trace).slice(-2)).toEqual(['00000002.history sh spool', '00000003.history sh absent']);
    } finally {
      // The test's own object in the test's own repository.
      await repo.delete([key]);
    }
  });

  it('replays a restored copy to a restore point with the prefetcher started, as postgres, before the postmaster: the first segment and the history probe never reach Node', async () => {
    const trace = path.join(work, 'replay-trace');
    writeFileSync(trace, '', { mode: 0o666 });
    chmodSync(trace, 0o666);
    const dataDir = runbook.restore.dataDir;
    const spool = path.join(dataDir, 'pg_wal', '.lifeboat-prefetch');
    const first = segmentName(
      backup.timeline,
      segnoOfLsn(backup.startLsn, backup.walSegmentSize),
      backup.walSegmentSize,
    );
    const input = { runbook: tc.name, workflowId: 'wf-handover', runId: 'wf-handover-run' };
    await activity(restoreBaseBackup, { ...input, backupId: backup.backupId, mode: 'side-by-side' as const });
    cleanups.push(() => stopRestoredCopy(runbook));
    // The follower replay-wal starts before the postmaster, started here
    // first by the same function: hold until it holds the backup's first
    // segment and the history answer, so that what the postmaster finds does
    // not depend on timing (replay-wal's own start is then a no-op, and its
    // wait for the first segment ends at once).
    const marker = JSON.parse(readFileSync(path.join(dataDir, '.lifeboat-restore.json'), 'utf8')) as RestoreMarker;
    expect(await startPrefetcher(runbook, restoreSite(runbook).pg, marker.backup)).toBe(first);
    const pid = await waitFor('the follower replay-wal starts', async () => {
      const p = Number(readFileSync(path.join(spool, 'prefetcher.pid'), 'utf8').trim() || 0);
      return p > 0 ? p : undefined;
    });
    followers.add(pid);
    await waitFor('the first segment and the history probe in the spool', async () =>
      existsSync(path.join(spool, first)) && existsSync(path.join(spool, '00000002.history.absent')) ? true : undefined,
    );
    // As postgres, alone: the user restore_command runs as.
    const st = statSync(spool);
    expect({ uid: st.uid, mode: st.mode & 0o777 }).toEqual({ uid: statSync(dataDir).uid, mode: 0o700 });
    expect(readFileSync(`/proc/${pid}/status`, 'utf8')).toMatch(
      new RegExp(`^Uid:\\s+${statSync(dataDir).uid}\\s`, 'm'),
    );

    process.env.LIFEBOAT_ARCHIVE_GET_LOG = trace; // the postmaster's environment takes LIFEBOAT_*
    try {
      const { result } = await activity(replayWal, { ...input, target: { name: 'handover-point' } });
      expect(result).toMatchObject({ paused: true, timeline: 1 });
    } finally {
      delete process.env.LIFEBOAT_ARCHIVE_GET_LOG;
    }
    const client = new Client({
      host: '127.0.0.1',
      port: runbook.restore.port,
      user: 'postgres',
      database: 'postgres',
    });
    await client.connect();
    try {
      expect((await client.query('select count(*)::int as n, max(id) as max from t')).rows).toEqual([
        { n: 3100, max: 3999 },
      ]);
    } finally {
      await client.end();
    }
    const calls = lines(trace);
    expect(calls).toContain('00000002.history sh absent');
    expect(calls).toContain(`${first} sh spool`);
    expect(calls.filter((l) => l.startsWith('00000002.history'))).not.toContain('00000002.history node absent');
    // What the rest of the replay took, for the record (a spool that ran dry goes to Node, and that is allowed).
    console.log(
      `replay to handover-point: ${calls.filter((l) => l.includes(' sh ')).length} calls answered by sh, ${calls.filter((l) => l.includes(' node ')).length} by Node: ${calls.join(', ')}`,
    );
  });
});
