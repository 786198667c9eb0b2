// Activities of recoverToPointInTime that need only the repository and the
// primary's catalog views: preflight (which backup, is the WAL there), the
// audit log, the evidence record and escalation notices. All run on the
// shared `lifeboat` queue.
import { createHash } from 'node:crypto';
import { readArchiverStatus } from '../src/catalog/archiver';
import { listBackups, readWalArchive } from '../src/catalog/catalog';
import { LifeboatError, errorMessage, isLifeboatError } from '../src/errors';
import type { AuditLine, Evidence, PendingDecision, PreflightInput, PreflightResult } from '../src/recovery/contract';
import { describeTarget } from '../src/recovery/contract';
import { checkWalCoverage, chooseBackup, estimateRtoSeconds, type ArchivedWal } from '../src/recovery/plan';
import { checkTargetReach, type WaldumpCache } from '../src/recovery/reach';
import { inRepository, refusalAfterSwitch, switchWalAndAwaitArchive } from '../src/recovery/switch-wal';
import { postWebhook } from '../src/notify/webhook';
import { checkRunPrivileges } from '../src/privileges/preflight';
import { openRepository } from '../src/repository';
import { keys, walFileOfKey } from '../src/repository/layout';
import { loadRunbookWithPrimary, restoreOverPrimary } from '../src/catalog/primary';
import { loadRunbook } from '../src/runbook/load';
import { runbookWithRepository } from '../src/repository/multi';
import { clusterName, type Runbook } from '../src/runbook/schema';
import { operatorsOf } from '../src/recovery/operators';
import { lifeboatActivity } from './failure';
import { postApprovalToSlack } from './notify';
import { engineSetting } from '../src/runbook/engine';
import { preflightOnEngine } from '../src/recovery/engine-preflight';
import { catalogWarnings } from '../src/recovery/catalog-warnings';

/**
 * Step 1: the runbook, the repository, the backup to restore and the WAL to
 * replay; whether the archive holds the target at all (TARGET_UNREACHABLE,
 * after asking the primary to switch WAL); archiver health when the primary
 * answers. Touches nothing but the primary's current WAL segment, closed early.
 * Run twice: it only reads, so a second run (after a takeover) reads again;
 * the dead attempt's reads end with its connection.
 */
export async function preflight(input: PreflightInput): Promise<PreflightResult> {
  return lifeboatActivity(async () => {
    // The primary an earlier side-by-side recovery re-pointed the cluster to, if any, and a line saying so.
    const overlaid = await loadRunbookWithPrimary(input.runbook);
    const { note } = overlaid;
    // --repo-index: the run reads only that repository (its chain is the one checked).
    const runbook = runbookWithRepository(overlaid.runbook, input.repository);
    const over = input.instance !== 'drill' && input.mode === 'side-by-side' ? restoreOverPrimary(overlaid) : undefined;
    const result = await withOperators(runbook, async () => {
      if (over) throw over;
      return preflightOf(runbook, input);
    });
    return note ? { ...result, warnings: [...result.warnings, note] } : result;
  });
}

/**
 * A preflight that fails after loading the runbook names its operators in the
 * failure's details: the workflow has no runbook yet, and without them anyone
 * could retry or abort the failed step (workflows/recovery/rules.ts).
 */
async function withOperators<T>(runbook: Runbook, body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (err) {
    const operators = operatorsOf(runbook);
    if (operators.length === 0) throw err;
    if (isLifeboatError(err))
      throw new LifeboatError(err.code, err.what, {
        hints: [...err.hints],
        cause: err,
        details: { ...err.details, operators },
      });
    throw new LifeboatError('UNEXPECTED', errorMessage(err), { cause: err, details: { operators } });
  }
}

async function preflightOf(runbook: Runbook, input: PreflightInput): Promise<PreflightResult> {
  // A recovery or a drill runs on a pgBackRest stanza through the engine (src/recovery/engine-preflight.ts).
  if (engineSetting(runbook).kind !== 'lifeboat') return preflightOnEngine(runbook, input);
  const cluster = clusterName(runbook);
  const repo = await openRepository(runbook.repository.url, runbook.repository);
  const readArchive = async () => {
    const [backups, archive, listed] = await Promise.all([
      listBackups(repo, cluster),
      readWalArchive(repo, cluster),
      repo.list(keys.walPrefix(cluster)),
    ]);
    const files: ArchivedWal[] = [];
    for (const o of listed) {
      const name = walFileOfKey(cluster, o.key);
      if (name !== undefined) files.push({ name, ...(o.lastModified ? { lastModified: o.lastModified } : {}) });
    }
    return { backups, archive, files };
  };
  // Independent reads start together (issue 13: preflight read one thing
  // after another); each failure is still reported in the order the steps
  // below name, whatever finishes first: the archive, the target's reach,
  // then the privileges. The archiver's status never fails preflight.
  const archiverRead = settle(readArchiverStatus(runbook));
  let read = await readArchive();
  const backup = chooseBackup(read.backups, input.target, cluster, input.backupId);
  const meta = read.backups.find((b) => b.backupId === backup.backupId)!;
  const cover = () =>
    checkWalCoverage({
      backup: meta,
      target: input.target,
      files: read.files,
      histories: read.archive.histories,
      cluster,
      repoArgs: `--runbook ${runbook.name}`,
    });
  // A gap is named as one before any question of where the archive ends.
  let coverage = cover();
  // Is the target in the archive at all? If not, the primary's newest WAL
  // may still be in its pg_wal: switch, wait for it, look again, and only
  // then refuse (src/recovery/reach.ts, switch-wal.ts).
  const cache: WaldumpCache = new Map();
  const reach = () =>
    checkTargetReach({
      source: { repo, cluster },
      cluster,
      pgBin: runbook.cluster.pgBin,
      runbookName: runbook.name,
      backup: meta,
      target: input.target,
      files: read.archive.files.map((f) => f.name),
      histories: read.archive.histories,
      cache,
    });
  // The role's grants on the primary (when it answers) and in the chosen
  // backup's catalog, which the restored copy will have: PRIVILEGE_MISSING
  // with each fix, before anything is touched (src/privileges/preflight.ts).
  // Read beside the target's reach, reported after it: a target the archive
  // lacks is the first thing to say.
  const privilegesRead = settle(
    checkRunPrivileges({
      runbook,
      backup: meta,
      backups: read.backups,
      ...(input.instance ? { instance: input.instance } : {}),
    }),
  );
  const catalogRead = catalogWarnings(runbook, meta, input.instance ?? 'restore');
  let reached = await reach();
  const reachNotes: string[] = [];
  if (reached.refusal) {
    const sw = await switchWalAndAwaitArchive(runbook, inRepository(repo, cluster));
    reachNotes.push(sw.note);
    if (sw.archived) {
      read = await readArchive();
      coverage = cover();
      reached = await reach();
    }
    if (reached.refusal) {
      throw refusalAfterSwitch(reached.refusal, sw.note);
    }
  }
  const privileges = unwrap(await privilegesRead);
  const warnings = [
    ...privileges.warnings,
    ...coverage.warnings,
    ...reached.warnings,
    ...reachNotes,
    ...(await catalogRead),
  ];
  let primaryReachable = false;
  let archiver: string | undefined;
  let archiverProblems: string[] | undefined;
  try {
    // After a switch of WAL the status read before it is stale: read it again.
    const s = reachNotes.length > 0 ? await readArchiverStatus(runbook) : unwrap(await archiverRead);
    primaryReachable = true;
    archiver =
      s.problems.length === 0
        ? `healthy: last archived ${s.lastArchivedWal ?? '(none)'} ${s.archivedAgeSeconds ?? '?'}s ago`
        : s.problems.map((p) => p.message).join('; ');
    for (const p of s.problems) warnings.push(`archiver: ${p.message}`);
    archiverProblems = s.problems.map((p) => p.message);
  } catch (err) {
    // The primary may be the thing that died: that is information, not a failure.
    archiver = `not read: ${(isLifeboatError(err) ? err.what : errorMessage(err)).split('\n')[0]}`;
    // A drill has no gate steps: it only reports that the archiver's health is unknown.
    warnings.push(
      input.instance === 'drill'
        ? `the primary does not answer (${archiver.slice(10)}): archiver health unknown`
        : `the primary does not answer (${archiver.slice(10)}): the gate steps will fail and can be skipped with a reason`,
    );
  }
  return {
    runbook,
    cluster,
    backup,
    walFrom: coverage.walFrom,
    ...(coverage.walTo ? { walTo: coverage.walTo } : {}),
    walSegmentsAvailable: coverage.segmentsAvailable,
    primaryReachable,
    ...(archiver ? { archiver } : {}),
    ...(archiverProblems ? { archiverProblems } : {}),
    rtoEstimateSeconds: estimateRtoSeconds(backup.sizeBytes, coverage.walBytes),
    ...(reached.restorePoint ? { restorePointLsn: reached.restorePoint.lsn } : {}),
    warnings: [
      `restoring to ${describeTarget(input.target)} from backup ${backup.backupId}: ${backup.why}`,
      ...warnings,
    ],
  };
}

type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };

/** A promise that never rejects (so one left unawaited after an earlier failure is not an unhandled rejection). */
function settle<T>(p: Promise<T>): Promise<Settled<T>> {
  return p.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
}

function unwrap<T>(s: Settled<T>): T {
  if (s.ok) return s.value;
  throw s.error;
}

/**
 * Appends to `<cluster>/audit/<runId>.jsonl`. The workflow sends every line
 * with a sequence number and the activity skips lines already there, so a
 * retried append never writes a line twice. Run twice: a dead attempt's
 * write is either whole or absent (repositories write atomically), and the
 * retry skips the lines it finds.
 */
export async function appendAudit(input: {
  runbook: string;
  runId: string;
  workflowId: string;
  seq: number;
  line: AuditLine;
}): Promise<void> {
  return lifeboatActivity(async () => {
    const runbook = await loadRunbook(input.runbook);
    const cluster = clusterName(runbook);
    const repo = await openRepository(runbook.repository.url, runbook.repository);
    const key = keys.audit(cluster, input.runId);
    const existing = await repo.get(key);
    if (existing) {
      const seen = existing.body
        .toString('utf8')
        .split('\n')
        .filter(Boolean)
        .some((l) => {
          try {
            return (JSON.parse(l) as { seq?: number }).seq === input.seq;
          } catch {
            return false;
          }
        });
      if (seen) return;
    }
    await repo.append(
      key,
      JSON.stringify({ seq: input.seq, workflowId: input.workflowId, runId: input.runId, ...input.line }),
    );
  });
}

/**
 * Step 17: the evidence record (DESIGN.md §7), at `<cluster>/evidence/<runId>.json`.
 * Run twice: the workflow builds the record once and passes it in, so a
 * second write puts the same bytes under the same key; a dead attempt's
 * write is whole or absent (atomic put).
 */
export async function writeEvidence(input: {
  runbook: string;
  evidence: Evidence;
}): Promise<{ key: string; repository: string }> {
  return lifeboatActivity(async () => {
    const runbook = await loadRunbook(input.runbook);
    const cluster = clusterName(runbook);
    const repo = await openRepository(runbook.repository.url, runbook.repository);
    const key = keys.evidence(cluster, input.evidence.runId);
    const body = Buffer.from(JSON.stringify(input.evidence, null, 2) + '\n');
    await repo.put(key, body, {
      sha256: createHash('sha256').update(body).digest('hex'),
      contentType: 'application/json',
    });
    return { key, repository: repo.url };
  });
}

/**
 * A decision has waited longer than the runbook's escalateAfter: post it to
 * the runbook's webhook when there is one. Never approves anything; a
 * notifier that fails is reported to the workflow, which records it and goes
 * on waiting. Run twice: the on-call may be paged twice for one wait, which
 * is the lesser harm than not at all.
 */
export async function notifyEscalation(input: {
  runbook: string;
  workflowId: string;
  pending: PendingDecision;
  waitedSeconds: number;
}): Promise<{ delivered: boolean; detail: string }> {
  return lifeboatActivity(async () => {
    const text =
      `Lifeboat ${input.workflowId}: ${input.pending.step} has waited ${Math.round(input.waitedSeconds / 60)} min for ` +
      `${input.pending.min} approval(s) from ${input.pending.approvers.join(', ') || 'any approver'}; ` +
      `approved so far by ${input.pending.approvedBy.join(', ') || 'nobody'}.`;
    const runbook = await loadRunbook(input.runbook);
    // The Slack message first (with the buttons again, the first one has
    // scrolled away): posted at most once per escalation, so a retry caused
    // by the webhook below does not post it again.
    const slack = runbook.notify?.slack ? await postApprovalToSlack(runbook, input) : undefined;
    const hook = await postWebhook(runbook, {
      kind: 'escalation',
      workflowId: input.workflowId,
      text,
      details: { pending: input.pending, waitedSeconds: input.waitedSeconds },
    });
    if (!slack) return hook;
    return {
      delivered: hook.delivered || slack.delivered,
      detail: runbook.notify?.webhookUrlEnv ? `${hook.detail}; ${slack.detail}` : slack.detail,
    };
  });
}
