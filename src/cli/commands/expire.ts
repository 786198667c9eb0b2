// `lifeboat expire --runbook <name>`: retention. By default it starts the
// `expireBackups` workflow on the `lifeboat` queue and waits, so the run is
// recorded in Temporal like every other operation; `--local` runs the same
// activities in this process (no Temporal needed). `--dry-run` deletes nothing.
// On a pgBackRest runbook pgBackRest's own retention decides: the plan is its
// `expire --dry-run`, applying it its `expire` (src/retention/engine-expiry.ts).
import type { ExpiryPlan } from '../../retention/expiry';
import type { ExpiryApplied } from '../../retention/expiry-apply';
import type { ExpireBackupsInput, ExpireBackupsResult } from '../../../workflows/expire-backups';
import { connectClient, timestampedId } from '../../client/temporal';
import { isErrorCode, LifeboatError, errorMessage } from '../../errors';
import { resolveRunbookPath } from '../../runbook/load';
import { TASK_QUEUE } from '../../runbook/schema';
import { describePolicy, retentionPolicy } from '../../catalog/tiers';
import { intOption, requireRunbook, temporalTarget, type RepoOptions, type TemporalOptions } from '../context';
import { lockedBackupReason, lockedWalLine } from '../../catalog/locked';
import { lockExtensionLines } from '../../catalog/lock-extend';
import { formatBytes } from '../format';
import { chooseRepositories, repositoryLabel } from '../../repository/multi';
import { EXIT, printJson } from '../run';
import { requireEngineRetention } from '../../retention/engine-expiry';

type Options = RepoOptions &
  TemporalOptions & { dryRun?: boolean; local?: boolean; keep?: string; json?: boolean; repoIndex?: string };

export async function run(opts: Options): Promise<number> {
  if (opts.repo) {
    throw new LifeboatError(
      'INPUT_INVALID',
      "expire works on a runbook's repository: pass --runbook <name>, not --repo",
      {
        hints: ['the runbook says how many backups to keep (backup.retainFull) and how to reach the repository'],
      },
    );
  }
  const runbook = await requireRunbook(opts, 'expire');
  const keep = opts.keep !== undefined ? intOption(opts.keep, '--keep') : undefined;
  // pgBackRest: the runbook's retention settings and --keep do not apply; refused naming them.
  requireEngineRetention(runbook, keep);
  // --keep cannot override retention: tiers: refused here, before a workflow starts.
  retentionPolicy(runbook, keep);
  const dryRun = opts.dryRun === true;
  // --repo-index: checked against the runbook now (exit 2 naming the repositories), sent by name.
  const repository = opts.repoIndex !== undefined ? chooseRepositories(runbook, opts.repoIndex)[0]!.name : undefined;

  let result: ExpireBackupsResult;
  let workflowId: string | undefined;
  if (opts.local) {
    // What the workflow's activities run, given the runbook file this
    // command resolved (the activities would otherwise look in LIFEBOAT_RUNBOOKS_DIR).
    const { planRunbookExpiry, expiryHasWork } = await import('../../retention/expiry');
    const { applyRunbookExpiry } = await import('../../retention/expiry-apply');
    const ref = resolveRunbookPath(opts.runbook!, opts.runbooksDir);
    const plan = await planRunbookExpiry({
      runbook: ref,
      ...(keep !== undefined ? { keep } : {}),
      ...(repository !== undefined ? { repository } : {}),
    });
    const nothing =
      !expiryHasWork(plan) && !(plan.repositories ?? []).some((r) => r.plan !== undefined && expiryHasWork(r.plan));
    const applied = dryRun || nothing ? undefined : await applyRunbookExpiry({ runbook: ref, plan });
    result = { runbook: runbook.name, dryRun, plan, ...(applied ? { applied } : {}) };
  } else {
    const temporal = await temporalTarget(opts);
    const client = await connectClient(temporal);
    workflowId = timestampedId(`expire-${runbook.name}`);
    const input: ExpireBackupsInput = {
      runbook: runbook.name,
      dryRun,
      ...(keep !== undefined ? { keep } : {}),
      ...(repository !== undefined ? { repository } : {}),
    };
    try {
      const handle = await client.workflow.start('expireBackups', { taskQueue: TASK_QUEUE, workflowId, args: [input] });
      process.stderr.write(
        `started expireBackups ${workflowId} (runbook ${runbook.name}); waiting for a worker on task queue ${TASK_QUEUE}\n`,
      );
      result = (await handle.result()) as ExpireBackupsResult;
    } catch (err) {
      throw unwrapFailure(err, workflowId);
    } finally {
      await client.connection.close();
    }
  }

  const failed = failedRepositories(result);
  if (opts.json) printJson({ ...(workflowId ? { workflowId } : {}), ...result });
  else if (!result.plan.repositories)
    process.stdout.write(`${describe(result.plan, result.applied, dryRun).join('\n')}\n`);
  else {
    // Runbook repositories:: one section per repository, in runbook order.
    const sections = result.plan.repositories.map((r) => {
      const applied = result.applied?.repositories?.find((a) => a.name === r.name);
      const head = `== repository ${repositoryLabel(r)} ==`;
      if (!r.plan) return [head, `not expired: it could not be planned: ${r.error ?? ''}`];
      const lines = describe(r.plan, applied?.applied, dryRun);
      return applied?.error !== undefined ? [head, ...lines, `not expired: ${applied.error}`] : [head, ...lines];
    });
    process.stdout.write(`${sections.map((s) => s.join('\n')).join('\n\n')}\n`);
  }
  if (failed.length === 0) return EXIT.ok;
  // Every other repository was expired; the command still fails, naming each that was not.
  for (const f of failed) {
    process.stderr.write(`lifeboat: repository ${repositoryLabel(f)} was not expired: ${f.error}\n`);
    for (const h of f.hints ?? []) process.stderr.write(`HINT: ${h}\n`);
  }
  process.stderr.write(
    `HINT: the other repositories were expired as planned; once that is fixed, run again (only that one: lifeboat expire --runbook ${runbook.name} --repo-index ${failed[0]!.name})\n`,
  );
  return EXIT.failed;
}

/** Repositories of the runbook's list that could not be planned or expired, with why. */
function failedRepositories(
  result: ExpireBackupsResult,
): Array<{ name: string; url: string; error: string; hints?: string[] }> {
  return (result.plan.repositories ?? []).flatMap((r) => {
    const applied = result.applied?.repositories?.find((a) => a.name === r.name);
    const bad = r.error !== undefined ? r : applied?.error !== undefined ? applied : undefined;
    return bad ? [{ name: r.name, url: r.url, error: bad.error!, ...(bad.hints ? { hints: bad.hints } : {}) }] : [];
  });
}

/** The report an operator reads: what each tier keeps, what went (or would go) and why, what stayed. */
function describe(plan: ExpiryPlan, applied: ExpiryApplied | undefined, dryRun: boolean): string[] {
  if (plan.engine) return describeEngine(plan, applied, dryRun);
  // Plans of workers from before tiers carry only keep.
  const policy = plan.policy ?? { kind: 'newest' as const, keep: plan.keep ?? 0 };
  const out = [
    `expire ${plan.runbook}: cluster ${plan.cluster} in ${plan.repository}, ${describePolicy(policy)}` +
      (dryRun ? ' (dry run: nothing deleted)' : ''),
  ];
  if (plan.nothingToDo) out.push(`nothing to delete: ${plan.nothingToDo}`);
  const verb = dryRun ? 'would delete' : 'deleted';

  if (plan.tiers) {
    out.push(`tiers (UTC periods counted back from ${plan.at ?? 'now'}; in each, the newest verified backup):`);
    for (const t of plan.tiers) {
      out.push(`  ${t.tier} ${t.periods} (from ${t.from}): ${t.kept.length} backup${t.kept.length === 1 ? '' : 's'}`);
      for (const k of t.kept) out.push(`    ${k.period}  ${k.backupId}`);
    }
  }
  if (plan.window) out.push(plan.window.why);
  // Locks are extended before anything is deleted; a run with nothing to do shows the plan's reading (0 to extend).
  out.push(...lockExtensionLines(applied?.lockExtension ?? plan.lockExtension, dryRun));

  out.push('backups kept:');
  for (const k of plan.kept) out.push(`  ${k.backupId}  ${k.reason}`);
  for (const i of plan.incomplete) out.push(`  ${i.backupId}  incomplete, never deleted by expiry: ${i.problem}`);
  if (plan.kept.length === 0 && plan.incomplete.length === 0) out.push('  (none)');

  const gone = applied
    ? applied.deletedBackups.map(
        (b) =>
          `  ${b.backupId}  ${formatBytes(b.storedBytes)}, ${plan.expire.find((e) => e.backupId === b.backupId)?.reason ?? ''}`,
      )
    : dryRun
      ? plan.expire.map((e) => `  ${e.backupId}  ${formatBytes(e.storedBytes)}, ${e.reason}`)
      : [];
  out.push(`backups ${verb}:`, ...(gone.length > 0 ? gone : ['  (none)']));
  for (const s of applied?.skippedBackups ?? []) out.push(`  ${s.backupId} skipped: ${s.reason}`);
  // S3 Object Lock: applied, a locked backup is among the skipped; planned, it is said here.
  if (!applied)
    for (const b of plan.locked?.backups ?? []) out.push(`  ${b.backupId} would be skipped: ${lockedBackupReason(b)}`);

  const wal = applied ? applied.walDeleted : dryRun ? plan.walDelete : [];
  const walCount = applied ? applied.walDeletedCount : dryRun ? plan.walDeleteCount : 0;
  const walBytes = applied ? applied.walDeletedBytes : dryRun ? plan.walDeleteBytes : 0;
  out.push(
    `WAL ${verb}: ${walCount} segment${walCount === 1 ? '' : 's'}${walCount > 0 ? `, ${formatBytes(walBytes)}` : ''}`,
  );
  for (const w of wal) {
    // A run actually deleted is explained by the planned run it lies in.
    const planned = plan.walDelete.find((p) => p.timeline === w.timeline && p.first <= w.first && w.first <= p.last);
    out.push(
      `  timeline ${w.timeline}: ${w.first} .. ${w.last} (${w.count}, ${formatBytes(w.storedBytes)}): ${(planned ?? w).reason}`,
    );
  }
  const lockedWal = lockedWalLine(applied ? applied.locked : plan.locked);
  if (lockedWal) out.push(applied ? lockedWal : `of these, ${lockedWal}`);

  const keep = applied?.walKeep ?? plan.walKeep;
  const keptWal = plan.walKeptCount + (plan.walDeleteCount - walCount);
  if (!keep) {
    out.push(`WAL kept: all ${keptWal} file${keptWal === 1 ? '' : 's'}`);
    return out;
  }
  out.push(`WAL kept: ${keptWal} file${keptWal === 1 ? '' : 's'}:`);
  for (const r of keep) {
    out.push(
      r.to === undefined
        ? `  ${r.from} on: ${r.why}; and every segment of a later timeline`
        : `  ${r.from} .. ${r.to}: ${r.why}`,
    );
  }
  out.push(
    `  ${plan.historyFilesKept} timeline history file${plan.historyFilesKept === 1 ? '' : 's'}, .partial and .backup files (always kept)`,
  );
  return out;
}

/**
 * A failed workflow arrives as WorkflowFailedError > ActivityFailure >
 * ApplicationFailure; the operator needs the innermost message (it has the
 * HINT lines) and its code decides the exit status.
 */
function unwrapFailure(err: unknown, workflowId: string): Error {
  let inner: unknown = err;
  let app: { type?: string | null; message: string } | undefined;
  for (let i = 0; i < 10 && inner instanceof Error; i++) {
    if (inner.name === 'ApplicationFailure') app = inner as { type?: string | null; message: string };
    inner = inner.cause;
  }
  if (!app)
    return err instanceof Error
      ? new Error(`expireBackups ${workflowId}: ${errorMessage(err)}`, { cause: err })
      : new Error(String(err));
  const message = `expireBackups ${workflowId} failed: ${app.message}`;
  return isErrorCode(app.type)
    ? new LifeboatError(app.type, message, { cause: err })
    : new Error(message, { cause: err });
}

/** pgBackRest runbook: what its dry run said it would expire, and what its expire did, in its own words. */
function describeEngine(plan: ExpiryPlan, applied: ExpiryApplied | undefined, dryRun: boolean): string[] {
  const src = plan.engine!.source;
  const out = [
    `expire ${plan.runbook}: cluster ${plan.cluster} in ${src}, by pgBackRest's own retention (repoN-retention-* in its configuration)` +
      (dryRun ? ' (dry run: pgbackrest expire --dry-run, nothing removed)' : ''),
  ];
  const said = (lines: string[]) => (lines.length > 0 ? lines.map((l) => `  ${l}`) : ['  (nothing)']);
  out.push('pgbackrest expire --dry-run said:', ...said(plan.engine!.lines));
  out.push('backups kept:', ...(plan.kept.length > 0 ? plan.kept.map((k) => `  ${k.backupId}`) : ['  (none)']));
  const gone = applied?.engine?.backups ?? (dryRun ? plan.engine!.backups : []);
  out.push(
    `backups ${dryRun ? 'pgBackRest would expire' : 'pgBackRest expired'}:`,
    ...(gone.length > 0 ? gone.map((b) => `  ${b.backupId}  ${b.type}, ${formatBytes(b.storedBytes)}`) : ['  (none)']),
  );
  if (applied?.engine) out.push('pgbackrest expire said:', ...said(applied.engine.lines));
  else if (!dryRun && plan.expire.length === 0)
    out.push(
      `pgbackrest expire was not run: its dry run expires no backup (it removes WAL its retention no longer needs after each backup, or run ${src.startsWith('pgBackRest') ? 'pgbackrest expire' : 'it'} by hand)`,
    );
  return out;
}
