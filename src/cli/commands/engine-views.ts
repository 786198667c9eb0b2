// `lifeboat backups` and `lifeboat check` for a runbook whose backups another
// engine holds (runbook engine:, src/engine/): the engine's catalog, and its
// own check (pgBackRest: check, verify, and the WAL chain from its listing)
// beside the archiver's health read from the primary, and the warm standby
// on its own host, as for Lifeboat's own.
import { readArchiverStatus, type ArchiverStatus } from '../../catalog/archiver';
import type { HealthProblem } from '../../catalog/chain';
import { openEngine } from '../../engine';
import type { EngineBackup } from '../../engine/types';
import { isLifeboatError } from '../../errors';
import type { Runbook } from '../../runbook/schema';
import { checkStandby } from '../../standby/check';
import { formatBytes, table } from '../format';
import { EXIT, printJson } from '../run';

/** As backups.ts shows times (imported from there it would be a cycle): 2026-11-21 19:01:02Z. */
const shortTime = (t: string) => t.replace('T', ' ').replace(/\.\d+Z$/, 'Z');

export async function engineBackups(runbook: Runbook, opts: { json?: boolean }): Promise<number> {
  const engine = await openEngine(runbook);
  const backups = await engine.listBackups();
  if (opts.json) {
    printJson({ engine: engine.kind, source: engine.label, backups });
    return EXIT.ok;
  }
  if (backups.length === 0) {
    process.stdout.write(`no backups in ${engine.label}\n`);
    return EXIT.ok;
  }
  const headers = ['id', 'type', 'start time', 'end time', 'start LSN', 'end LSN', 'tli', 'size', 'stored', 'based on'];
  process.stdout.write(
    `${table(headers, backups.map(row))}\n\n${backups.length} backup${backups.length === 1 ? '' : 's'} in ${engine.label}\n`,
  );
  return EXIT.ok;
}

function row(b: EngineBackup): string[] {
  return [
    b.backupId,
    b.type,
    shortTime(b.startTime),
    shortTime(b.endTime),
    b.startLsn,
    b.endLsn,
    String(b.timeline),
    formatBytes(b.sizeBytes),
    formatBytes(b.storedBytes),
    b.prior ?? '',
  ];
}

export async function engineCheck(
  runbook: Runbook,
  opts: { json?: boolean; primary?: boolean; host?: string },
): Promise<number> {
  const engine = await openEngine(runbook);
  const problems: HealthProblem[] = [];
  const notes: string[] = [];
  let archiver: ArchiverStatus | undefined;
  if (opts.primary === false) notes.push('archiver not checked (--no-primary)');
  else {
    try {
      archiver = await readArchiverStatus(runbook);
      problems.push(...archiver.problems);
    } catch (err) {
      if (!isLifeboatError(err) || (err.code !== 'PG_UNREACHABLE' && err.code !== 'SECRET_MISSING')) throw err;
      problems.push({ kind: 'primary-unreachable', message: err.what, hints: [...err.hints] });
    }
  }
  const backups = await engine.listBackups();
  if (backups.length === 0) {
    problems.push({
      kind: 'no-backup',
      message: `no backup in ${engine.label}: nothing can be restored`,
      hints: [
        `take one: lifeboat backup --runbook ${runbook.name} --type full (pgbackrest backup on the stanza, through the baseBackup workflow)`,
      ],
    });
  }
  const report = await engine.check();
  problems.push(...report.problems);
  // The warm standby on the stanza, read on its own host only (src/standby/check.ts), as on Lifeboat's own engine.
  const standby = await checkStandby(runbook, opts.host);
  problems.push(...standby.problems);
  notes.push(...standby.notes);
  const healthy = problems.length === 0;
  if (opts.json) {
    printJson({
      healthy,
      engine: engine.kind,
      source: engine.label,
      archiver: archiver ?? null,
      backups: backups.map((b) => b.backupId),
      checked: report.lines,
      ...(standby.status ? { standby: standby.status } : {}),
      ...(standby.checkedOn ? { standbyCheckedOn: standby.checkedOn } : {}),
      problems,
      notes,
    });
    return healthy ? EXIT.ok : EXIT.failed;
  }
  const out = [`cluster ${runbook.name}: ${engine.label}`];
  out.push(
    backups.length === 0
      ? 'backups: none'
      : `backups: ${backups.length}, oldest ${backups[0]!.backupId}, newest ${backups[backups.length - 1]!.backupId}`,
  );
  if (archiver) {
    out.push(
      `archiver: ${archiver.lastArchivedWal ? `last archived ${archiver.lastArchivedWal}` : 'nothing archived since the counters started'}, ${archiver.failedCount} failure${archiver.failedCount === 1 ? '' : 's'}; RPO ${archiver.rpoSeconds} s`,
    );
  }
  out.push(...report.lines, ...(standby.line ? [standby.line] : []), ...notes.map((n) => `note: ${n}`), '');
  for (const p of problems) out.push(p.message, ...p.hints.map((h) => `  HINT: ${h}`));
  out.push(healthy ? 'healthy' : `unhealthy: ${problems.length} problem${problems.length === 1 ? '' : 's'}`);
  process.stdout.write(`${out.join('\n')}\n`);
  return healthy ? EXIT.ok : EXIT.failed;
}
