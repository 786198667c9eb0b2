// One primary per cluster after a recovery, on real services (PostgreSQL 15,
// Temporal, a file:// repository): a side-by-side recovery promotes while the
// old primary keeps running. The old primary's next segment is refused by
// archive-push (its archiver fails, the repository stays without it),
// `lifeboat check` reports the two writers, the primary overlay and the
// evidence name the promoted copy, a drill to the latest point follows the
// new timeline only, and a backup after the recovery copies the new primary
// and drills.
import { readFileSync } from 'node:fs';
import { Client } from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { teardownDrill } from '../../activities/drill';
import { readPrimaryOverlay } from '../../src/catalog/primary';
import type { BackupMeta } from '../../src/catalog/backup-meta';
import type { Evidence } from '../../src/recovery/contract';
import { approveSignal, statusQuery } from '../../src/recovery/messages';
import { openRepository } from '../../src/repository';
import { keys } from '../../src/repository/layout';
import { activity } from '../harness/activity';
import { runCleanups, type Cleanups } from '../harness/cleanups';
import { cliRunner } from '../harness/cli';
import { stopRestoredCopy, switchAndWaitArchived } from '../harness/postgres';
import { waitFor } from '../harness/ports';
import { backedUpCluster, recoveryWorkers } from '../harness/recovery-cluster';
import { workflowFailure } from '../workflow/recovery-harness';

const cleanups: Cleanups = [];
afterAll(() => runCleanups(cleanups));
const lifeboat = cliRunner(() => process.env);

describe('one primary per cluster after a side-by-side recovery', () => {
  it("refuses the old primary's next segment, reports two writers, re-points the primary, and backs up and drills the new one", async () => {
    const c = await backedUpCluster('onepri', cleanups);
    const { client, taskQueue } = await recoveryWorkers(c, cleanups);
    const { runbook, name } = c;
    const old = c.tc.pg;
    const repo = await openRepository(c.tc.repoUrl, runbook.repository);

    // Timeline 1: a row before the target, the target, then rows the old
    // primary writes past it, archived before any recovery (segments past
    // the branch to come: the two-writers finding of lifeboat check).
    await old.query(`insert into orders (customer, status, amount) values ('before-target', 'paid', 1)`);
    await old.query(`select pg_create_restore_point('onepri-target')`);
    await old.query(`insert into orders (customer, status, amount) values ('old-after-branch', 'paid', 2)`);
    await switchAndWaitArchived(old);
    await old.query(`insert into orders (customer, status, amount) values ('old-after-branch-2', 'paid', 3)`);
    const oldPastBranch = await switchAndWaitArchived(old);

    // The recovery, side by side, every approval given as the UI does (a signal).
    const workflowId = `recover-${name}`;
    const wf = await client.workflow.start('recoverToPointInTime', {
      taskQueue,
      workflowId,
      args: [{ runbook: name, target: { name: 'onepri-target' } }],
    });
    const result = wf.result() as Promise<Evidence>;
    let done = false;
    void result.finally(() => (done = true)).catch(() => undefined);
    const approved = new Set<string>();
    await waitFor(
      'the recovery to finish',
      async () => {
        if (done) return true;
        const s = await wf.query(statusQuery);
        const failed = s.steps.find((x) => x.state === 'failed');
        if (failed) throw new Error(`${failed.id} failed: ${failed.error?.type} ${failed.error?.message}`);
        if (s.pending && !approved.has(s.pending.step)) {
          approved.add(s.pending.step);
          await wf.signal(approveSignal, { step: s.pending.step, by: 'alice' });
        }
        return undefined;
      },
      { timeoutMs: 300_000, intervalMs: 250 },
    );
    const evidence = await result;
    cleanups.push(() => stopRestoredCopy(runbook));

    // The evidence and the overlay name the promoted copy.
    expect(evidence.validationStatus).toBe('passed');
    expect(evidence.primary).toMatchObject({
      repointed: true,
      host: runbook.restore.address,
      port: runbook.restore.port,
      timeline: 2,
      replaced: { host: '127.0.0.1', port: old.port },
      overlay: keys.primaryOverlay(name),
    });
    expect(evidence.primary?.history).toMatch(/^00000002\.history (stored|already-archived)$/);
    expect(evidence.steps.find((s) => s.id === 'promote')?.summary).toMatch(
      new RegExp(
        `^promoted on timeline 2 at .*; gates re-asserted; primary re-pointed to ${runbook.restore.address}:${runbook.restore.port} in the repository$`,
      ),
    );
    const overlay = await readPrimaryOverlay(repo, name);
    expect(overlay).toMatchObject({
      cluster: name,
      runbook: name,
      host: runbook.restore.address,
      port: runbook.restore.port,
      replaced: { host: '127.0.0.1', port: old.port },
      timeline: 2,
      promotedAt: evidence.promotedAt,
      workflowId,
      runId: evidence.runId,
    });

    // The new primary writes timeline 2 and archives it into the cluster.
    const fresh = new Client({
      host: runbook.restore.address,
      port: runbook.restore.port,
      user: 'postgres',
      database: 'postgres',
    });
    await fresh.connect();
    cleanups.push(() => fresh.end());
    await fresh.query(`insert into orders (customer, status, amount) values ('new-after-promote', 'paid', 4)`);
    const { rows: sw } = await fresh.query<{ walfile: string }>('select pg_walfile_name(pg_switch_wal()) as walfile');
    const newSeg = sw[0]!.walfile;
    expect(newSeg.slice(0, 8)).toBe('00000002');
    await waitFor(
      `${newSeg} archived by the new primary`,
      async () => {
        const { rows } = await fresh.query<{ last: string | null }>(
          'select last_archived_wal as last from pg_stat_archiver',
        );
        return rows[0]?.last && rows[0].last >= newSeg ? true : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 200 },
    );

    // The old primary, still running, switches WAL: archive-push refuses the segment.
    const [before] = await old.query<{ failed: string }>('select failed_count::text as failed from pg_stat_archiver');
    await old.query(`create table old_primary_after_recovery as select 1 as x`);
    const [{ refused } = { refused: '' }] = await old.query<{ refused: string }>(
      'select pg_walfile_name(pg_switch_wal()) as refused',
    );
    expect(refused.slice(0, 8)).toBe('00000001');
    const archiver = await waitFor(
      "the old primary's archiver to fail on the refused segment",
      async () => {
        const [s] = await old.query<{
          failed: string;
          last_failed_wal: string | null;
          last_archived_wal: string | null;
        }>('select failed_count::text as failed, last_failed_wal, last_archived_wal from pg_stat_archiver');
        return s && Number(s.failed) > Number(before!.failed) && s.last_failed_wal === refused ? s : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 200 },
    );
    expect(archiver.last_archived_wal! < refused).toBe(true);
    expect(await repo.head(keys.wal(name, refused))).toBeUndefined();
    // What the old primary's server log shows.
    const log = readFileSync(old.logFile, 'utf8');
    expect(log).toContain(`lifeboat: refused to archive ${refused} (timeline 1, from `);
    expect(log).toContain(`timeline 2 branched off timeline 1 at `);
    expect(log).toContain(
      `HINT: the cluster's primary is now ${runbook.restore.address}:${runbook.restore.port} (timeline 2), promoted by recovery ${workflowId} at ${evidence.promotedAt}`,
    );
    expect(log).toContain(
      `HINT: this server is no longer the primary of cluster ${name}: stop it (pg_ctl stop -D <its data directory>)`,
    );

    // lifeboat check: unhealthy, two writers, and the re-pointed primary in one line.
    const check = await lifeboat('check', '--runbook', name);
    expect(check.code, check.stdout + check.stderr).toBe(1);
    const lines = check.stdout.split('\n');
    expect(lines[1]).toBe(
      `primary re-pointed to ${runbook.restore.address}:${runbook.restore.port} (timeline 2) by recovery ${workflowId} at ${evidence.promotedAt}; ` +
        `edit cluster.primary in runbook ${name} to make it permanent (and move restore.dataDir/restore.port: the new primary runs there)`,
    );
    const oldWriter = lines.find((l) => l.startsWith(`two writers: the old primary 127.0.0.1:${old.port} `));
    expect(oldWriter).toMatch(
      new RegExp(
        `^two writers: the old primary 127\\.0\\.0\\.1:${old.port} is writing timeline 1, but timeline 2 branched off it \\(00000002\\.history\\); ` +
          `archive-push refuses its WAL: last failed ${refused} at \\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ \\(\\d+ failures?\\)$`,
      ),
    );
    // The segments archived past the branch before the recovery: from the first one the old primary wrote after the target.
    const archivedPast = lines.find((l) => l.startsWith('two writers: ') && l.includes(' of timeline 1 w'));
    expect(archivedPast).toMatch(
      new RegExp(
        `^two writers: (${oldPastBranch}|\\d+ segments ${oldPastBranch} to [0-9A-F]{24}) of timeline 1 (was|were) archived past \\S+, where timeline 2 branched off it: `,
      ),
    );
    expect(lines).toContain(
      `  HINT: stop the old primary 127.0.0.1:${old.port} (pg_ctl stop -D <its data directory>), or, if it must keep running, point its archive_command at another repository or --cluster`,
    );

    // The next side-by-side recovery reads the overlay: its restore site is where the primary runs now, so it ends in preflight, nothing touched.
    const again = await client.workflow.start('recoverToPointInTime', {
      taskQueue,
      workflowId: `recover-again-${name}`,
      args: [{ runbook: name, target: { latest: true } }],
    });
    const refusedAgain = await workflowFailure(again);
    expect(refusedAgain.message).toContain(
      `runbook ${name} would restore side by side into the cluster's primary: restore is ${runbook.restore.address}:${runbook.restore.port} (${runbook.restore.dataDir}), ` +
        `where recovery ${workflowId} promoted the copy that is the primary since ${evidence.promotedAt} (timeline 2)`,
    );
    const [{ n: stillThere } = { n: '' }] = (
      await fresh.query<{ n: string }>(`select count(*)::text as n from orders where customer = 'new-after-promote'`)
    ).rows;
    expect(stillThere).toBe('1');

    // --to-latest after the recovery: a drill from the timeline-1 backup follows timeline 2 only.
    const latest = await client.workflow.start('restoreDrill', {
      taskQueue,
      workflowId: `drill-latest-${name}`,
      args: [{ runbook: name, target: { latest: true }, keep: true }],
    });
    const latestEvidence = (await latest.result()) as Evidence;
    expect(latestEvidence.validationStatus).toBe('passed');
    const drillCopy = new Client({
      host: '127.0.0.1',
      port: runbook.drill!.port,
      user: 'postgres',
      database: 'postgres',
    });
    await drillCopy.connect();
    const { rows: seen } = await drillCopy.query<{ customer: string }>(
      `select customer from orders where customer in ('before-target', 'old-after-branch', 'old-after-branch-2', 'new-after-promote') order by customer`,
    );
    const { rows: tli } = await drillCopy.query<{ walfile: string }>(
      'select pg_walfile_name(pg_current_wal_lsn()) as walfile',
    );
    await drillCopy.end();
    expect(seen.map((r) => r.customer)).toEqual(['before-target', 'new-after-promote']);
    // Promoted in isolation from timeline 2's end: the drill copy's own timeline is 3, and it archives nothing.
    expect(tli[0]!.walfile.slice(0, 8)).toBe('00000003');
    expect(await repo.head(keys.wal(name, '00000003.history'))).toBeUndefined();
    await activity(teardownDrill, { runbook: name, workflowId: latest.workflowId });

    // A backup after the recovery copies the new primary (timeline 2)...
    const meta = (await client.workflow.execute('baseBackup', {
      taskQueue,
      workflowId: `backup-${name}`,
      args: [{ runbook: name }],
    })) as BackupMeta;
    expect(meta.timeline).toBe(2);
    // ...and a drill from it passes.
    const drill = await client.workflow.start('restoreDrill', {
      taskQueue,
      workflowId: `drill-after-${name}`,
      args: [{ runbook: name, target: { latest: true } }],
    });
    const drillEvidence = (await drill.result()) as Evidence;
    expect(drillEvidence).toMatchObject({ kind: 'drill', backupId: meta.backupId, validationStatus: 'passed' });
  });
});
