// The WAL archive end to end: PostgreSQL's own archiver runs `lifeboat
// archive-push` into a file:// and an s3:// repository, and `lifeboat
// archive-get` is run as PostgreSQL would run it, as a real process (node
// bin/lifeboat, built by `npm run build`).
import { execFile } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createHash } from 'node:crypto';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresTempDir, startPrimary, switchAndWaitArchived, type Primary } from '../harness/postgres';
import { waitFor } from '../harness/ports';
import { s3Env, s3RepoUrl, useS3Env } from '../harness/services';
import { openRepository } from '../../src/repository';
import { keys } from '../../src/repository/layout';
import type { Repository } from '../../src/repository/types';
import { formatLsn, isSegmentName, parseSegmentName } from '../../src/wal/names';
import { decodeWal, encodeWal } from '../../src/wal/compress';
import { projectRoot } from '../../src/tools';
import { runCleanups } from '../harness/cleanups';

/** Markers of files pushed ahead (not the pusher's own pid, log or claim files). */
function markerNames(pgWalDir: string): string[] {
  const dir = path.join(pgWalDir, '.lifeboat-pushed');
  return existsSync(dir)
    ? readdirSync(dir)
        .filter((n) => isSegmentName(n) || n.endsWith('.history'))
        .sort()
    : [];
}

/** Waits until the read-ahead pusher of this pg_wal has gone idle and exited. */
async function pusherGone(pgWalDir: string): Promise<void> {
  await waitFor(
    'the read-ahead pusher to exit',
    async () =>
      existsSync(path.join(pgWalDir, '.lifeboat-pushed')) &&
      readdirSync(path.join(pgWalDir, '.lifeboat-pushed')).some((n) => n.startsWith('.pusher-'))
        ? undefined
        : true,
    { timeoutMs: 30_000 },
  );
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function lifeboat(args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      path.join(projectRoot(), 'bin', 'lifeboat'),
      args,
      { cwd: opts.cwd, env: { ...process.env, ...opts.env }, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) =>
        resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

const cleanups: Array<() => unknown> = [];
afterAll(async () => {
  await runCleanups(cleanups);
});

function tempDir(label: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), `lifeboat-${label}-`));
  // A detached prefetcher started by archive-get may still be finishing a
  // download into the spool: rm retries ENOTEMPTY rather than fail the teardown.
  cleanups.push(() => rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 }));
  return dir;
}

describe.each(['file', 's3'] as const)('the WAL archive in a %s:// repository', (kind) => {
  const cluster = `archive-${kind}`;
  let repoUrl: string;
  let env: Record<string, string>;
  let primary: Primary;
  let repo: Repository;
  /** Segments PostgreSQL has archived, oldest first. */
  let archived: string[];
  const pgWal = () => path.join(primary.dataDir, 'pg_wal');
  const repoArgs = () => ['--repo', repoUrl, '--cluster', cluster];

  beforeAll(async () => {
    useS3Env();
    env = kind === 's3' ? s3Env() : {};
    if (kind === 'file') {
      const root = postgresTempDir('repo');
      cleanups.push(() => rmSync(root, { recursive: true, force: true }));
      repoUrl = `file://${root}`;
    } else {
      repoUrl = s3RepoUrl(cluster);
    }
    // wal_keep_size keeps archived segments in pg_wal to compare against.
    primary = await startPrimary({ archive: { repo: repoUrl, cluster, env }, conf: ['wal_keep_size = 1GB'] });
    cleanups.push(() => primary.stop());
    repo = await openRepository(repoUrl);

    // Several segments' worth of pgbench-like writes, with switches between.
    await primary.query('create table accounts (id int primary key, balance int, filler text)');
    for (let round = 0; round < 3; round++) {
      await primary.query(
        `insert into accounts select g, 0, md5(g::text) || repeat('x', 60) from generate_series($1::int, $1::int + 59999) g`,
        [round * 60000],
      );
      await primary.query('update accounts set balance = balance + 1 where id % 7 = $1', [round]);
      await switchAndWaitArchived(primary);
    }
    archived = (await repo.list(keys.walPrefix(cluster)))
      .map((o) => path.basename(o.key).replace(/\.zst$/, ''))
      .filter(isSegmentName);
  });

  it('holds every segment PostgreSQL archived, with the sha256 of the segment in pg_wal', async () => {
    const [stats] = await primary.query<{ archived_count: string; failed_count: string }>(
      'select archived_count, failed_count from pg_stat_archiver',
    );
    expect(stats!.failed_count).toBe('0');
    const done = readdirSync(path.join(pgWal(), 'archive_status'))
      .filter((n) => n.endsWith('.done'))
      .map((n) => n.slice(0, -'.done'.length))
      .filter(isSegmentName);
    expect(archived.length).toBeGreaterThanOrEqual(6);
    expect(archived).toEqual(expect.arrayContaining(done));
    for (const walFile of done) {
      const original = readFileSync(path.join(pgWal(), walFile));
      const stored = await repo.get(keys.wal(cluster, walFile));
      expect({ walFile, recorded: stored!.info.sha256 }).toEqual({ walFile, recorded: sha(original) });
      const content = await decodeWal(walFile, stored!.body);
      expect({ walFile, content: sha(content) }).toEqual({ walFile, content: sha(original) });
      expect(stored!.body.length).toBeLessThan(original.length);
      // With it, how many places may start a restore point record (an upper
      // bound: initdb's segment has look-alikes), read back from the head.
      const counted = (await repo.head(keys.wal(cluster, walFile)))?.restorePoints;
      expect({ walFile, counted: typeof counted }).toEqual({ walFile, counted: 'number' });
      expect(counted).toBe(stored!.info.restorePoints);
    }
    // Every segment pushed ahead of PostgreSQL's call was later asked for and
    // its marker used; the pusher, once idle, leaves nothing behind.
    await pusherGone(pgWal());
    expect(markerNames(pgWal())).toEqual([]);
  });

  it('accepts a second push of the same segment and leaves the archive as it was', async () => {
    const walFile = archived[1]!;
    const before = await repo.get(keys.wal(cluster, walFile));
    const res = await lifeboat(['archive-push', `pg_wal/${walFile}`, ...repoArgs(), '--no-ahead'], {
      cwd: primary.dataDir,
      env,
    });
    expect(res).toEqual({ code: 0, stdout: '', stderr: '' });
    expect((await repo.get(keys.wal(cluster, walFile)))!.body.equals(before!.body)).toBe(true);
  });

  it('refuses a push of different content under an archived name, exits 1 and keeps the archived copy byte for byte', async () => {
    const walFile = archived[1]!;
    const before = await repo.get(keys.wal(cluster, walFile));
    const other = path.join(tempDir('otherwal'), walFile);
    copyFileSync(path.join(pgWal(), walFile), other);
    const changed = readFileSync(other);
    changed[1000] = changed[1000]! ^ 0xff;
    writeFileSync(other, changed);

    const res = await lifeboat(['archive-push', other, ...repoArgs(), '--no-ahead'], { env });
    expect(res.code).toBe(1);
    expect(res.stderr).toBe(
      `lifeboat: ${walFile} is already archived in ${repo.url} (cluster ${cluster}) with different content: ` +
        `archived sha256 ${before!.info.sha256}, ${other} sha256 ${sha(changed)}; the archived copy is kept\n` +
        'HINT: two servers may be archiving into the same repository and cluster name: check archive_command (--repo/--cluster or the runbook) on every server\n' +
        'HINT: a server restored from a backup must archive on a new timeline or into its own cluster name\n' +
        'HINT: PostgreSQL retries this file until archive-push succeeds; pg_wal grows meanwhile\n',
    );
    const after = await repo.get(keys.wal(cluster, walFile));
    expect(after!.body.equals(before!.body)).toBe(true);
    expect(after!.info.sha256).toBe(before!.info.sha256);
  });

  it('refuses a segment of a timeline that a newer archived timeline branched off, exits 1 naming it, and still takes the segment holding the switch point', async () => {
    // A cluster of its own: timeline 2 branched off timeline 1 inside the third archived segment.
    const c = `${cluster}-superseded`;
    const args = ['--repo', repoUrl, '--cluster', c, '--no-ahead'];
    const dir = tempDir('superseded');
    const switchSeg = archived[2]!;
    const switchLsn = formatLsn(parseSegmentName(switchSeg).segno * 16777216n + 0x60n);
    writeFileSync(path.join(dir, '00000002.history'), `1\t${switchLsn}\tno recovery target specified\n`);
    expect(await lifeboat(['archive-push', path.join(dir, '00000002.history'), ...args], { env })).toEqual({
      code: 0,
      stdout: '',
      stderr: '',
    });

    const past = archived[3]!;
    const res = await lifeboat(['archive-push', `pg_wal/${past}`, ...args], { cwd: primary.dataDir, env });
    expect(res.code).toBe(1);
    expect(res.stdout).toBe('');
    expect(res.stderr).toMatch(
      new RegExp(
        `^lifeboat: refused to archive ${past} \\(timeline 1, from ${formatLsn(parseSegmentName(past).segno * 16777216n).replace('/', '\\/')}\\) ` +
          `into ${repo.url.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} \\(cluster ${c}\\): timeline 2 branched off timeline 1 at ${switchLsn.replace('/', '\\/')} \\(no recovery target specified\\) ` +
          `\\(00000002\\.history, archived \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z\\), so timeline 1 past that point is WAL no restore of this cluster reads\n` +
          `HINT: this server is no longer the primary of cluster ${c}: stop it \\(pg_ctl stop -D <its data directory>\\), or, if it must keep running, point its archive_command at another repository or --cluster\n` +
          'HINT: nothing is lost: PostgreSQL keeps the file in pg_wal and retries it \\(pg_wal grows until this server stops or archives elsewhere\\)\n' +
          'HINT: lifeboat check reports it as two writers; a backup of this server cannot be continued from the archive\n$',
      ),
    );
    expect(await repo.head(keys.wal(c, past))).toBeUndefined();
    // The segment holding the switch point is the common past of both timelines.
    expect(await lifeboat(['archive-push', `pg_wal/${switchSeg}`, ...args], { cwd: primary.dataDir, env })).toEqual({
      code: 0,
      stdout: '',
      stderr: '',
    });
    expect(await repo.head(keys.wal(c, switchSeg))).toBeDefined();
  });

  it("pushes segments already waiting in archive_status ahead, and answers PostgreSQL's later call for one from its marker alone", async () => {
    // A pg_wal of its own, holding copies of real segments under new names.
    const wal = path.join(tempDir('ahead'), 'pg_wal');
    const names = ['000000050000000000000001', '000000050000000000000002', '000000050000000000000003'];
    const status = path.join(wal, 'archive_status');
    for (const [i, name] of names.entries()) {
      mkdirSync(status, { recursive: true });
      copyFileSync(path.join(pgWal(), archived[i]!), path.join(wal, name));
      writeFileSync(path.join(status, `${name}.ready`), '');
    }
    const push = (name: string) =>
      lifeboat(['archive-push', `pg_wal/${name}`, ...repoArgs(), '--parallel', '3'], { cwd: path.dirname(wal), env });

    expect(await push(names[0]!)).toEqual({ code: 0, stdout: '', stderr: '' });
    // The pusher archives the other two in the background and marks them.
    await waitFor('read-ahead markers', async () =>
      names.slice(1).every((n) => markerNames(wal).includes(n)) ? true : undefined,
    );
    for (const name of names)
      expect((await repo.head(keys.wal(cluster, name)))?.sha256).toBe(sha(readFileSync(path.join(wal, name))));
    // archive_status is PostgreSQL's: read, never written.
    expect(readdirSync(status).sort()).toEqual(names.map((n) => `${n}.ready`));

    // The marker answers without the repository: the object is gone and stays gone.
    // The pusher first exits (idle): this test, unlike PostgreSQL, leaves
    // archive_status/*.ready in place, and a pusher still polling would push
    // the file again and mark it anew once the shell has used its marker.
    await pusherGone(wal);
    await repo.delete([keys.wal(cluster, names[1]!)]);
    expect(await push(names[1]!)).toEqual({ code: 0, stdout: '', stderr: '' });
    expect(await repo.head(keys.wal(cluster, names[1]!))).toBeUndefined();
    expect(markerNames(wal)).not.toContain(names[1]);

    // A file that changed since its marker was written is pushed for real, and refused.
    const changed = readFileSync(path.join(wal, names[2]!));
    changed[100] = changed[100]! ^ 0xff;
    writeFileSync(path.join(wal, names[2]!), changed);
    const res = await push(names[2]!);
    expect(res.code).toBe(1);
    expect(res.stderr.split('\n')[0]).toBe(
      `lifeboat: ${names[2]} is already archived in ${repo.url} (cluster ${cluster}) with different content: ` +
        `archived sha256 ${sha(readFileSync(path.join(pgWal(), archived[2]!)))}, ${path.join(wal, names[2]!)} sha256 ${sha(changed)}; the archived copy is kept`,
    );
    await pusherGone(wal);
    await repo.delete(names.map((n) => keys.wal(cluster, n)));
  });

  it('restores an archived segment byte-identical to the one in pg_wal', async () => {
    const walFile = archived[2]!;
    const dir = tempDir('restore');
    const res = await lifeboat(['archive-get', walFile, 'RECOVERYXLOG', ...repoArgs(), '--prefetch', '0'], {
      cwd: dir,
      env,
    });
    expect(res).toEqual({ code: 0, stdout: '', stderr: '' });
    expect(sha(readFileSync(path.join(dir, 'RECOVERYXLOG')))).toBe(sha(readFileSync(path.join(pgWal(), walFile))));
  });

  it('answers exit 1 with one plain line for a segment the archive does not have, and writes nothing', async () => {
    const dir = tempDir('absent');
    const res = await lifeboat(['archive-get', '0000000100000000000000FE', 'RECOVERYXLOG', ...repoArgs()], {
      cwd: dir,
      env,
    });
    expect(res).toEqual({
      code: 1,
      stdout: '',
      stderr: `lifeboat archive-get: 0000000100000000000000FE is not in the archive ${repo.url} (cluster ${cluster})\n`,
    });
    expect(readdirSync(dir)).toEqual([]);
  });

  it('aborts recovery with exit 255 and writes nothing at %p when an archived segment does not match its checksum', async () => {
    const source = await repo.get(keys.wal(cluster, archived[0]!));
    const recorded = source!.info.sha256!;
    // Valid zstd, wrong content: only the checksum can tell.
    const wrong = Buffer.alloc(16 * 1024 * 1024, 1);
    await repo.put(keys.wal(cluster, '0000000100000000000000F0'), await encodeWal('0000000100000000000000F0', wrong), {
      sha256: recorded,
    });
    const dir = tempDir('corrupt');
    const res = await lifeboat(['archive-get', '0000000100000000000000F0', 'RECOVERYXLOG', ...repoArgs()], {
      cwd: dir,
      env,
    });
    expect(res.code).toBe(255);
    expect(res.stderr).toBe(
      `lifeboat archive-get: FATAL: cannot restore 0000000100000000000000F0: 0000000100000000000000F0 in ${repo.url} ` +
        `(cluster ${cluster}, object ${cluster}/wal/0000000100000000000000F0.zst) does not match its checksum: ` +
        `recorded sha256 ${recorded}, content sha256 ${sha(wrong)}\n` +
        'HINT: the archived copy is damaged; recovery cannot continue past it with this archive\n' +
        'HINT: if the primary still has this file in pg_wal, archive it again into a fresh repository or cluster name\n' +
        'HINT: otherwise recover to a target before this segment, or from a newer base backup\n' +
        'HINT: recovery is aborted on purpose rather than ended early at this file; fix the cause and start PostgreSQL again to resume\n',
    );
    expect(readdirSync(dir)).toEqual([]);
  });

  it('aborts with exit 255 and writes nothing when an archived segment is not zstd data at all', async () => {
    const source = await repo.get(keys.wal(cluster, archived[0]!));
    const damaged = Buffer.from(source!.body);
    damaged.fill(0, 0, 4096);
    await repo.put(keys.wal(cluster, '0000000100000000000000F1'), damaged, { sha256: source!.info.sha256! });
    const dir = tempDir('garbled');
    const res = await lifeboat(['archive-get', '0000000100000000000000F1', 'RECOVERYXLOG', ...repoArgs()], {
      cwd: dir,
      env,
    });
    expect(res.code).toBe(255);
    expect(res.stderr.split('\n')[0]).toBe(
      `lifeboat archive-get: FATAL: cannot restore 0000000100000000000000F1: 0000000100000000000000F1 in ${repo.url} ` +
        `(cluster ${cluster}, object ${cluster}/wal/0000000100000000000000F1.zst) cannot be decompressed ` +
        `(not zstd data (bad frame magic)); ${damaged.length} bytes stored`,
    );
    expect(readdirSync(dir)).toEqual([]);
  });

  it('aborts with exit 255, not 1, when restore_command is given an option it does not know', async () => {
    const dir = tempDir('usage');
    const res = await lifeboat(['archive-get', archived[0]!, 'RECOVERYXLOG', '--no-such-option', ...repoArgs()], {
      cwd: dir,
      env,
    });
    expect(res.code).toBe(255);
    expect(res.stderr).toBe("error: unknown option '--no-such-option'\n(run with --help for usage)\n");
  });

  it('prefetches the following segments into the spool and serves the next request from it', async () => {
    const dir = tempDir('prefetch');
    const spool = path.join(dir, 'spool');
    const [first, second, third] = archived as [string, string, string];
    const args = (walFile: string) => [
      'archive-get',
      walFile,
      'RECOVERYXLOG',
      ...repoArgs(),
      '--prefetch',
      '4',
      '--spool-dir',
      spool,
    ];

    expect(await lifeboat(args(first), { cwd: dir, env })).toEqual({ code: 0, stdout: '', stderr: '' });
    await waitFor('the prefetcher to spool the next two segments', async () => {
      const names = existsSync(spool) ? readdirSync(spool) : [];
      return [second, `${second}.sha256`, third, `${third}.sha256`].every((n) => names.includes(n)) ? true : undefined;
    });

    // With the archived object gone, only the spool can answer.
    const key = keys.wal(cluster, second);
    const stored = await repo.get(key);
    await repo.delete([key]);
    try {
      expect(await lifeboat(args(second), { cwd: dir, env })).toEqual({ code: 0, stdout: '', stderr: '' });
      expect(sha(readFileSync(path.join(dir, 'RECOVERYXLOG')))).toBe(sha(readFileSync(path.join(pgWal(), second))));
      expect(readdirSync(spool)).not.toContain(second);
    } finally {
      await repo.put(key, stored!.body, { sha256: stored!.info.sha256! });
    }
  });

  it('serves a spooled segment from the sh front without starting Node, then keeps the spool ahead of replay', async () => {
    const dir = tempDir('shspool');
    const spool = path.join(dir, 'spool');
    const [s0, s1, s2, s3] = archived as [string, string, string, string];
    expect(
      (await lifeboat(['archive-prefetch', s0, '--count', '2', '--spool-dir', spool, ...repoArgs()], { env })).code,
    ).toBe(0);
    // With a node that cannot run, only the sh front can have answered.
    const noNode = { ...env, LIFEBOAT_NODE: '/bin/false' };
    const args = (walFile: string, prefetch: string) => [
      'archive-get',
      walFile,
      'RECOVERYXLOG',
      ...repoArgs(),
      '--prefetch',
      prefetch,
      '--spool-dir',
      spool,
    ];
    expect(await lifeboat(args(s0, '0'), { cwd: dir, env: noNode })).toEqual({ code: 0, stdout: '', stderr: '' });
    expect(sha(readFileSync(path.join(dir, 'RECOVERYXLOG')))).toBe(sha(readFileSync(path.join(pgWal(), s0))));
    // Handed over by a rename; its sidecar stays until the follower passes it.
    expect(readdirSync(spool)).not.toContain(s0);
    // The spool is now empty after s1: the hit starts a detached prefetcher for what follows.
    expect(await lifeboat(args(s1, '4'), { cwd: dir, env })).toEqual({ code: 0, stdout: '', stderr: '' });
    expect(sha(readFileSync(path.join(dir, 'RECOVERYXLOG')))).toBe(sha(readFileSync(path.join(pgWal(), s1))));
    await waitFor('the prefetcher started by the sh front to spool the next segments', async () => {
      const names = readdirSync(spool);
      return [s2, `${s2}.sha256`, s3, `${s3}.sha256`].every((n) => names.includes(n)) ? true : undefined;
    });
    // A spooled copy from another repository is never served: the sh front hands it to Node, which downloads.
    const [s2sha, s2boot] = readFileSync(path.join(spool, `${s2}.sha256`), 'utf8').split(' ');
    writeFileSync(path.join(spool, `${s2}.sha256`), `${s2sha} ${s2boot} repo=file:///elsewhere cluster=x\n`);
    expect(await lifeboat(args(s2, '0'), { cwd: dir, env: noNode })).toMatchObject({ code: 1 });
    expect(await lifeboat(args(s2, '0'), { cwd: dir, env })).toEqual({ code: 0, stdout: '', stderr: '' });
    expect(sha(readFileSync(path.join(dir, 'RECOVERYXLOG')))).toBe(sha(readFileSync(path.join(pgWal(), s2))));
  });

  it('keeps one follower per spool that refills it as replay takes segments, and that leaves when the spool is removed', async () => {
    const dir = tempDir('follow');
    const spool = path.join(dir, 'spool');
    const args = (walFile: string) => [
      'archive-get',
      walFile,
      'RECOVERYXLOG',
      ...repoArgs(),
      '--prefetch',
      '2',
      '--spool-dir',
      spool,
    ];
    // The first call downloads itself and starts the follower.
    expect(await lifeboat(args(archived[0]!), { cwd: dir, env })).toEqual({ code: 0, stdout: '', stderr: '' });
    const pid = await waitFor('the follower', async () => {
      const p = existsSync(path.join(spool, 'prefetcher.pid'))
        ? Number(readFileSync(path.join(spool, 'prefetcher.pid'), 'utf8'))
        : 0;
      return p > 0 ? p : undefined;
    });
    // Every later call is a spool hit answered by sh alone (node cannot run): only the one follower refills.
    const noNode = { ...env, LIFEBOAT_NODE: '/bin/false' };
    for (const walFile of archived.slice(1, 6)) {
      await waitFor(`${walFile} in the spool`, async () =>
        existsSync(path.join(spool, `${walFile}.sha256`)) && existsSync(path.join(spool, walFile)) ? true : undefined,
      );
      expect(await lifeboat(args(walFile), { cwd: dir, env: noNode })).toEqual({ code: 0, stdout: '', stderr: '' });
      expect(sha(readFileSync(path.join(dir, 'RECOVERYXLOG')))).toBe(sha(readFileSync(path.join(pgWal(), walFile))));
    }
    expect(Number(readFileSync(path.join(spool, 'prefetcher.pid'), 'utf8'))).toBe(pid);
    rmSync(spool, { recursive: true, force: true });
    await waitFor('the follower to leave', async () => {
      try {
        process.kill(pid, 0);
        return undefined;
      } catch {
        return true;
      }
    });
  });

  it('never serves a segment from a spool that others may write, even one matching its sidecar: Node downloads it', async () => {
    const dir = tempDir('badspool');
    const spool = path.join(dir, 'spool');
    const walFile = archived[3]!;
    const args = ['archive-get', walFile, 'RECOVERYXLOG', ...repoArgs(), '--prefetch', '0', '--spool-dir', spool];
    expect(
      (await lifeboat(['archive-prefetch', walFile, '--count', '1', '--spool-dir', spool, ...repoArgs()], { env }))
        .code,
    ).toBe(0);
    const spooled = readFileSync(path.join(spool, walFile));
    spooled[5000] = spooled[5000]! ^ 0xff;
    writeFileSync(path.join(spool, walFile), spooled);
    const [, boot, ...target] = readFileSync(path.join(spool, `${walFile}.sha256`), 'utf8')
      .trim()
      .split(' ');
    writeFileSync(path.join(spool, `${walFile}.sha256`), `${sha(spooled)} ${boot} ${target.join(' ')}\n`);
    chmodSync(spool, 0o777);

    expect(await lifeboat(args, { cwd: dir, env })).toEqual({ code: 0, stdout: '', stderr: '' });
    expect(sha(readFileSync(path.join(dir, 'RECOVERYXLOG')))).toBe(sha(readFileSync(path.join(pgWal(), walFile))));
  });
});
