// `lifeboat check`: is this cluster recoverable right now? Archiver health on
// the primary (pg_stat_archiver against the runbook's RPO) and continuity of
// the archived WAL from the oldest verified backup to the newest segment.
// Exit 0 healthy, 1 unhealthy: usable from cron and monitoring as it is.
// A warm standby (runbook standby:) is read only on its own host (--host, or
// the OS host name): check runs on the primary's host too, where the
// standby's directory is absent, and that must not page anyone.
//
// After a side-by-side recovery the primary is the one the overlay names
// (src/catalog/primary.ts); the runbook's own primary, the old one, is asked
// too: still running on the old timeline, it is a second writer.
import { readArchiverStatus, type ArchiverStatus } from '../../catalog/archiver';
import { tablespaceProblems } from '../../recovery/catalog-warnings';
import { describeChainProblems, type ChainReport, type HealthProblem } from '../../catalog/chain';
import { readChainState } from '../../catalog/chain-state';
import { checkLocksAndEncryption, lockSampleKeys } from '../../catalog/lock-check';
import { withPrimaryOverlay, type OverlaidRunbook } from '../../catalog/primary';
import { twoWriterProblems, type ServerSample } from '../../catalog/writers';
import { checkOtherRepositories } from '../../catalog/repositories-check';
import { isLifeboatError } from '../../errors';
import { checkStandby } from '../../standby/check';
import { resolveRepoTarget, type RepoOptions } from '../context';
import { formatDuration } from '../format';
import { EXIT, printJson } from '../run';
import { shortTime } from './backups';
import { engineCheck } from './engine-views';

export async function run(opts: RepoOptions & { json?: boolean; primary?: boolean; host?: string }): Promise<number> {
  const { runbook, repo, cluster } = await resolveRepoTarget(opts);
  // Another engine holds the backups (runbook engine:): its own check beside the archiver's (engine-views.ts).
  if (runbook?.engine && runbook.engine.kind !== 'lifeboat') return engineCheck(runbook, opts);
  const problems: HealthProblem[] = [];
  const notes: string[] = [];

  let archiver: ArchiverStatus | undefined;
  let overlaid: OverlaidRunbook | undefined;
  const servers: ServerSample[] = [];
  const sample = (label: string, rb: NonNullable<typeof runbook>, a: ArchiverStatus): ServerSample => ({
    label,
    host: rb.cluster.primary.host,
    port: rb.cluster.primary.port,
    inRecovery: a.inRecovery,
    ...(a.currentWal ? { currentWal: a.currentWal } : {}),
    failedCount: a.failedCount,
    lastFailedWal: a.lastFailedWal,
    lastFailedTime: a.lastFailedTime,
  });
  if (runbook) {
    overlaid = await withPrimaryOverlay(runbook, repo);
    if (overlaid.note) notes.push(overlaid.note);
  }
  if (!runbook || !overlaid)
    notes.push(
      'archiver not checked: --repo/--cluster name no primary, so only the WAL chain in the repository is checked',
    );
  else if (opts.primary === false)
    notes.push('archiver not checked (--no-primary): only the WAL chain in the repository is checked');
  else {
    try {
      archiver = await readArchiverStatus(overlaid.runbook);
      problems.push(...archiver.problems);
      servers.push(sample('the primary', overlaid.runbook, archiver));
    } catch (err) {
      if (!isLifeboatError(err) || (err.code !== 'PG_UNREACHABLE' && err.code !== 'SECRET_MISSING')) throw err;
      const [what = '', ...rest] = err.message.split('\n');
      problems.push({ kind: 'primary-unreachable', message: what, hints: rest.map((h) => h.replace(/^HINT: /, '')) });
    }
    if (overlaid.applied) {
      // The server the recovery replaced: stopped is what it should be.
      const old = runbook.cluster.primary;
      try {
        servers.push(sample('the old primary', runbook, await readArchiverStatus(runbook)));
      } catch (err) {
        if (!isLifeboatError(err) || (err.code !== 'PG_UNREACHABLE' && err.code !== 'SECRET_MISSING')) throw err;
        notes.push(`the old primary ${old.host}:${old.port} does not answer: not a second writer`);
      }
    }
  }

  const { entries, complete, archive, window, chain } = await readChainState(repo, cluster, runbook);
  if (window) notes.push(window.note);
  if (complete.length === 0) {
    problems.push({
      kind: 'no-backup',
      message: `no verified base backup of cluster ${cluster} in ${repo.url}: nothing can be restored`,
      hints: [
        runbook ? `take one: lifeboat backup --runbook ${runbook.name}` : 'take one: lifeboat backup --runbook <name>',
        ...(entries.length > 0
          ? [
              `${entries.length} incomplete backup director${entries.length === 1 ? 'y is' : 'ies are'} there: see lifeboat backups`,
            ]
          : []),
      ],
    });
  }
  // A tablespace made since the newest backup is not in it: a restore would replay its creation at the primary's path.
  if (archiver && overlaid)
    problems.push(...(await tablespaceProblems(overlaid.runbook, complete[complete.length - 1]?.meta)));
  const repoArgs = runbook ? `--runbook ${runbook.name}` : `--repo ${repo.url} --cluster ${cluster}`;
  problems.push(...describeChainProblems(chain, complete[complete.length - 1]?.backupId, repoArgs));
  problems.push(
    ...twoWriterProblems({
      walFiles: archive.files.map((f) => f.name),
      histories: archive.histories,
      walSegmentSize: chain.walSegmentSize,
      servers,
      ...(overlaid?.applied && overlaid.overlay ? { overlay: overlaid.overlay } : {}),
    }),
  );
  // S3 Object Lock and server-side encryption as the runbook sets them: the bucket, and a sample of objects.
  const lockCheck = runbook
    ? await checkLocksAndEncryption(
        repo,
        runbook.repository,
        await lockSampleKeys(repo, cluster, complete[complete.length - 1]?.backupId, archive.files),
        new Date(),
      )
    : undefined;
  if (lockCheck) problems.push(...lockCheck.problems);
  for (const e of entries)
    if (e.status === 'incomplete') notes.push(`backup ${e.backupId} is incomplete and ignored: ${e.problem}`);
  // The warm standby, when the runbook declares one: read on its host only (its data directory and loopback port).
  const standby = await checkStandby(runbook, opts.host);
  notes.push(...standby.notes);
  problems.push(...standby.problems);

  // Repositories after the first (runbook repositories:): each chain on its own, and how far behind the first.
  const others =
    runbook && runbook.repositories.length > 1
      ? await checkOtherRepositories(
          runbook,
          { name: runbook.repositories[0]!.name, index: 0, url: repo.url, repo },
          cluster,
        )
      : undefined;
  if (others) problems.push(...others.problems);

  const healthy = problems.length === 0;
  if (opts.json) {
    printJson({
      healthy,
      repository: repo.url,
      cluster,
      archiver: archiver ?? null,
      primaryOverlay: overlaid?.overlay ?? null,
      primaryOverlayApplied: overlaid?.applied ?? false,
      servers,
      backups: {
        verified: complete.map((e) => e.backupId),
        incomplete: entries.filter((e) => e.status === 'incomplete'),
      },
      chain,
      ...(lockCheck ? { objectLock: lockCheck.line } : {}),
      ...(standby.status ? { standby: standby.status } : {}),
      ...(standby.checkedOn ? { standbyCheckedOn: standby.checkedOn } : {}),
      ...(others ? { repositories: others.reports } : {}),
      problems,
      notes,
    });
    return healthy ? EXIT.ok : EXIT.failed;
  }

  const out: string[] = [`cluster ${cluster} in ${repo.url}`];
  if (overlaid?.applied && overlaid.note) out.push(overlaid.note);
  out.push(
    complete.length === 0
      ? 'backups: none verified'
      : `backups: ${complete.length} verified, oldest ${complete[0]!.backupId}, newest ${complete[complete.length - 1]!.backupId}`,
  );
  if (archiver) out.push(archiverLine(archiver));
  for (const line of chainLines(chain)) out.push(line);
  if (others) out.push(...others.lines);
  if (lockCheck) out.push(lockCheck.line);
  if (standby.line) out.push(standby.line);
  for (const n of notes) if (!(overlaid?.applied && n === overlaid.note)) out.push(`note: ${n}`);
  out.push('');
  for (const p of problems) {
    out.push(p.message);
    for (const h of p.hints) out.push(`  HINT: ${h}`);
  }
  out.push(healthy ? 'healthy' : `unhealthy: ${problems.length} problem${problems.length === 1 ? '' : 's'}`);
  process.stdout.write(`${out.join('\n')}\n`);
  return healthy ? EXIT.ok : EXIT.failed;
}

function archiverLine(a: ArchiverStatus): string {
  const last =
    a.lastArchivedWal && a.lastArchivedTime
      ? `last archived ${a.lastArchivedWal} at ${shortTime(a.lastArchivedTime)}` +
        (a.archivedAgeSeconds !== null ? ` (${formatDuration(a.archivedAgeSeconds)} ago)` : '')
      : 'nothing archived since the counters started';
  const failures = `${a.failedCount} failure${a.failedCount === 1 ? '' : 's'}`;
  const position = a.currentLsn ? `, writing at ${a.currentLsn}` : '';
  return `archiver: ${last}, ${failures}${position}; RPO ${a.rpoSeconds} s`;
}

function chainLines(chain: ChainReport): string[] {
  if (chain.timelines.length === 0) return ['WAL: the archive is empty'];
  return chain.timelines.map((t) => {
    const span = t.firstSegment
      ? `${t.firstSegment} .. ${t.lastSegment} (${t.segmentCount} segment${t.segmentCount === 1 ? '' : 's'})`
      : 'no segments yet';
    const parent = t.parents[t.parents.length - 1];
    const from = parent ? `, branched from timeline ${parent.timeline} at ${parent.switchLsn}` : '';
    const checked = t.checkedFrom
      ? `, checked from ${t.checkedFrom.segment}${t.checkedFrom.backupId ? ` (backup ${t.checkedFrom.backupId})` : ''}`
      : t.segmentCount > 0
        ? ', not checked: no backup replays into it'
        : '';
    return `WAL timeline ${t.timeline}: ${span}${from}${checked}`;
  });
}
