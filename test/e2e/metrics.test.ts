// `lifeboat metrics` and `lifeboat worker --metrics` as processes, scraped
// over HTTP like Prometheus would: a real primary archiving into a real
// repository, a real drill's evidence, a real recovery waiting for a person,
// then archiving broken and a segment lost. Each value asserted is one the
// test made happen; visibility is eventually consistent, so looks that
// depend on it poll with a deadline.
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { listBackups } from '../../src/catalog/catalog';
import { readEvidenceHistory } from '../../src/evidence/list';
import { decideUpdate } from '../../src/recovery/messages';
import { openRepository } from '../../src/repository';
import { keys } from '../../src/repository/layout';
import { isSegmentName } from '../../src/wal/names';
import { runCleanups, type Cleanups } from '../harness/cleanups';
import { switchAndWaitArchived } from '../harness/postgres';
import { freePort, waitFor } from '../harness/ports';
import { scrape, startLifeboat, waitServing, type Scrape } from '../harness/prometheus';
import { backedUpCluster, recoveryWorkers } from '../harness/recovery-cluster';
import { temporalAddress } from '../harness/services';

const cleanups: Cleanups = [];
afterAll(async () => {
  await runCleanups(cleanups);
});

/** A listener that accepts connections and never answers: a primary that hangs. */
async function silentListener(): Promise<number> {
  const sockets: Socket[] = [];
  const server = createServer((s) => sockets.push(s));
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  cleanups.push(() => {
    for (const s of sockets) s.destroy();
    return new Promise((resolve) => server.close(resolve));
  });
  return port;
}

describe('lifeboat metrics', () => {
  it('serves archiver, backup, WAL chain, drill and recovery figures per runbook over HTTP; a hanging primary is lifeboat_up 0, not an error', async () => {
    const cluster = await backedUpCluster('metrics', cleanups);
    const { tc, name, runbook } = cluster;
    const runbooksDir = process.env.LIFEBOAT_RUNBOOKS_DIR!;
    const repo = await openRepository(runbook.repository.url, runbook.repository);
    const { client, taskQueue } = await recoveryWorkers(cluster, cleanups);

    // A drill to a time between two commits: its evidence carries a measured RTO and RPO.
    await tc.pg.query(`insert into orders (customer, status, amount) values ('before', 'paid', 1)`);
    const [{ t }] = (await tc.pg.query<{ t: string }>(
      `select to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as t`,
    )) as [{ t: string }];
    await tc.pg.query(`insert into orders (customer, status, amount) values ('after', 'paid', 2)`);
    await switchAndWaitArchived(tc.pg);
    await client.workflow.execute('restoreDrill', {
      taskQueue,
      workflowId: `drill-${name}`,
      args: [{ runbook: name, target: { time: t } }],
    });
    const drill = (await readEvidenceHistory(repo, tc.name)).records.find((r) => r.kind === 'drill')!;
    expect(drill.validationStatus).toBe('passed');

    // Two more runbooks of the same repository: one whose primary refuses connections (nothing listens on
    // port 1, a port only root may bind), one whose primary accepts them and never answers.
    const runbookText = readFileSync(tc.runbookFile, 'utf8');
    const variant = async (suffix: string, primaryPort: number) => {
      const rb = YAML.parse(runbookText) as { name: string; cluster: { primary: { port: number } } };
      rb.name = `${name}-${suffix}`;
      rb.cluster.primary.port = primaryPort;
      writeFileSync(path.join(runbooksDir, `${rb.name}.yaml`), YAML.stringify(rb));
      return rb.name;
    };
    const refused = await variant('refused', 1);
    const silent = await variant('silent', await silentListener());

    const port = await freePort();
    const url = `http://127.0.0.1:${port}/metrics`;
    const exporter = startLifeboat(
      // A time limit no read of a healthy source reaches, however loaded the machine.
      [
        'metrics',
        '--runbook',
        name,
        '--runbook',
        refused,
        '--listen',
        `127.0.0.1:${port}`,
        '--cache',
        '0',
        '--timeout',
        '120',
        '--address',
        temporalAddress(),
      ],
      cleanups,
    );
    await waitServing(`http://127.0.0.1:${port}/`, exporter);
    // A second exporter that keeps a result an hour: what it served first, it serves again.
    const cachedPort = await freePort();
    const cachedUrl = `http://127.0.0.1:${cachedPort}/metrics`;
    const cachedExporter = startLifeboat(
      [
        'metrics',
        '--runbook',
        name,
        '--listen',
        `127.0.0.1:${cachedPort}`,
        '--cache',
        '3600',
        '--timeout',
        '120',
        '--no-temporal',
      ],
      cleanups,
    );
    await waitServing(`http://127.0.0.1:${cachedPort}/`, cachedExporter);
    const firstCached = await scrape(cachedUrl);

    const first = await scrape(url);
    expect(first.status).toBe(200);
    expect(first.contentType).toBe('text/plain; version=0.0.4; charset=utf-8');
    const m = first.parsed;
    const mine = { runbook: name, cluster: tc.name };
    for (const source of ['primary', 'repository', 'evidence', 'temporal'])
      expect(m.value('lifeboat_up', { ...mine, source }), source).toBe(1);
    expect(m.types.get('lifeboat_archive_failed_total')).toBe('counter');
    expect(m.value('lifeboat_archive_failed_total', mine)).toBe(0);
    expect(m.value('lifeboat_archive_failing', mine)).toBe(0);
    expect(m.value('lifeboat_archive_archived_total', mine)).toBeGreaterThan(0);
    expect(m.value('lifeboat_archive_ready_segments', mine)).toBe(0);
    expect(m.value('lifeboat_archive_unarchived_bytes', mine)).toBeGreaterThanOrEqual(0);
    expect(m.value('lifeboat_wal_directory_bytes', mine)).toBeGreaterThan(0);
    const [backup] = await listBackups(repo, tc.name);
    expect(m.value('lifeboat_backups_verified', mine)).toBe(1);
    expect(m.value('lifeboat_backups_incomplete', mine)).toBe(0);
    expect(m.value('lifeboat_backup_newest_size_bytes', mine)).toBe(backup!.sizeBytes);
    expect(m.value('lifeboat_backup_newest_stored_bytes', mine)).toBe(backup!.storedBytes);
    expect(m.find('lifeboat_backup_newest_age_seconds', mine)).toHaveLength(1);
    expect(m.value('lifeboat_wal_gaps', mine)).toBe(0);
    expect(m.value('lifeboat_drill_last_success', mine)).toBe(1);
    expect(m.value('lifeboat_drill_last_rto_seconds', mine)).toBe(drill.rtoObservedSeconds);
    expect(m.value('lifeboat_drill_last_rpo_seconds', mine)).toBe(drill.rpoObservedSeconds);
    expect(m.value('lifeboat_rpo_objective_seconds', mine)).toBe(runbook.objectives.rpoSeconds);
    expect(m.value('lifeboat_rto_objective_seconds', mine)).toBe(runbook.objectives.rtoSeconds);
    expect(m.value('lifeboat_recoveries_running', { ...mine, workflow: 'recoverToPointInTime' })).toBe(0);
    expect(m.value('lifeboat_recoveries_waiting', mine)).toBe(0);
    // The primary that refuses: lifeboat_up 0, counted and said on stderr; its repository (an empty cluster) still read.
    const other = { runbook: refused, cluster: refused };
    expect(m.value('lifeboat_up', { ...other, source: 'primary' })).toBe(0);
    expect(m.value('lifeboat_scrape_errors_total', { ...other, source: 'primary' })).toBe(1);
    expect(m.find('lifeboat_archive_failed_total', other)).toEqual([]);
    expect(m.value('lifeboat_up', { ...other, source: 'repository' })).toBe(1);
    expect(m.value('lifeboat_backups_verified', other)).toBe(0);
    expect(exporter.stderr()).toContain(
      `lifeboat metrics: runbook ${refused}: reading the primary failed: cannot connect to the primary postgres@127.0.0.1:1/postgres to read pg_stat_archiver: `,
    );

    // The primary that never answers, under a short time limit of its own exporter: still an answer, with lifeboat_up 0.
    const hangingPort = await freePort();
    const hanging = startLifeboat(
      [
        'metrics',
        '--runbook',
        silent,
        '--listen',
        `127.0.0.1:${hangingPort}`,
        '--cache',
        '0',
        '--timeout',
        '1',
        '--no-temporal',
      ],
      cleanups,
    );
    await waitServing(`http://127.0.0.1:${hangingPort}/`, hanging);
    const hung = await scrape(`http://127.0.0.1:${hangingPort}/metrics`);
    expect(hung.status).toBe(200);
    expect(hung.parsed.value('lifeboat_up', { runbook: silent, cluster: silent, source: 'primary' })).toBe(0);
    expect(
      hung.parsed.value('lifeboat_scrape_errors_total', { runbook: silent, cluster: silent, source: 'primary' }),
    ).toBe(1);
    expect(hung.parsed.value('lifeboat_rpo_objective_seconds', { runbook: silent, cluster: silent })).toBe(
      runbook.objectives.rpoSeconds,
    );

    // A recovery waiting for a person at approve-fence.
    const workflowId = `recover-${name}`;
    const wf = await client.workflow.start('recoverToPointInTime', {
      taskQueue,
      workflowId,
      args: [{ runbook: name, target: { latest: true }, incident: 'INC-9', reason: 'metrics test' }],
    });
    const waiting = await waitFor(
      'the exporter to see the recovery waiting',
      async () => {
        const s = (await scrape(url)).parsed;
        return s.find('lifeboat_recovery_waiting_seconds', { ...mine, workflow_id: workflowId }).length === 1 &&
          s.value('lifeboat_recoveries_running', { ...mine, workflow: 'recoverToPointInTime' }) === 1
          ? s
          : undefined;
      },
      { timeoutMs: 150_000, intervalMs: 1000 },
    );
    expect(waiting.value('lifeboat_recoveries_waiting', mine)).toBe(1);
    expect(waiting.find('lifeboat_recovery_waiting_seconds', mine).map((s) => s.labels)).toEqual([
      { ...mine, workflow_id: workflowId, step: 'approve-fence', kind: 'approval' },
    ]);

    // Two more segments archived, so that one can be lost from the middle of the chain below.
    for (const customer of ['more-1', 'more-2']) {
      await tc.pg.query(`insert into orders (customer, status, amount) values ($1, 'paid', 3)`, [customer]);
      await switchAndWaitArchived(tc.pg);
    }

    // Archiving broken the way an unmounted repository would break it, and a segment switched into the failure.
    await tc.pg.query(`alter system set archive_command = 'false'`);
    await tc.pg.query('select pg_reload_conf()');
    await tc.pg.query(`insert into orders (customer, status, amount) values ('stuck', 'paid', 3)`);
    const [{ walfile }] = (await tc.pg.query<{ walfile: string }>(
      'select pg_walfile_name(pg_switch_wal()) as walfile',
    )) as [{ walfile: string }];
    const failedSeen = await waitFor(
      'the archiver to fail',
      async () => {
        const [s] = await tc.pg.query<{ failed_count: string; last_failed_wal: string | null }>(
          'select failed_count, last_failed_wal from pg_stat_archiver',
        );
        return s && Number(s.failed_count) > 0 && s.last_failed_wal === walfile ? Number(s.failed_count) : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 200 },
    );
    // A segment lost from the middle of the chain: after the backup's start, before the newest.
    const walPrefix = keys.walPrefix(tc.name);
    const segments = (await repo.list(walPrefix))
      .map((o) => o.key.slice(walPrefix.length).replace(/\.zst$/, ''))
      .filter(isSegmentName)
      .filter((s) => s > backup!.startWal);
    const victim = segments[0]!;
    expect(victim < segments[segments.length - 1]!).toBe(true);
    await repo.delete([keys.wal(tc.name, victim)]);

    const broken: Scrape = (await scrape(url)).parsed;
    expect(broken.value('lifeboat_archive_failed_total', mine)).toBeGreaterThanOrEqual(failedSeen);
    expect(broken.value('lifeboat_archive_failing', mine)).toBe(1);
    expect(broken.value('lifeboat_archive_ready_segments', mine)).toBeGreaterThanOrEqual(1);
    expect(broken.value('lifeboat_archive_unarchived_bytes', mine)).toBeGreaterThan(0);
    expect(broken.value('lifeboat_wal_gaps', mine)).toBe(1);
    expect(broken.value('lifeboat_wal_missing_segments', mine)).toBe(1);
    expect(broken.value('lifeboat_up', { ...mine, source: 'primary' })).toBe(1);
    expect(broken.value('lifeboat_scrape_errors_total', { ...mine, source: 'primary' })).toBe(0);

    // The exporter with the long cache still serves its first read, word for word.
    expect((await scrape(cachedUrl)).text).toBe(firstCached.text);
    expect(firstCached.parsed.value('lifeboat_archive_failing', mine)).toBe(0);

    // Rejected at approve-fence: the run ends, and nothing waits.
    await client.workflow.getHandle(workflowId).executeUpdate(decideUpdate, {
      args: [{ step: 'approve-fence', decision: 'reject', by: 'alice', comment: 'test over' }],
    });
    await wf.result().catch(() => undefined);
    await waitFor(
      'the exporter to see nothing waiting',
      async () => ((await scrape(url)).parsed.value('lifeboat_recoveries_waiting', mine) === 0 ? true : undefined),
      { timeoutMs: 60_000, intervalMs: 1000 },
    );
  });
});

describe('lifeboat worker --metrics', () => {
  it("serves the Temporal SDK's worker metrics (temporal_*) for its task queue", async () => {
    const port = await freePort();
    const host = `metricsworker${process.pid}`;
    const url = `http://127.0.0.1:${port}/metrics`;
    const worker = startLifeboat(
      ['worker', '--host', host, '--no-shared', '--metrics', `127.0.0.1:${port}`, '--address', temporalAddress()],
      cleanups,
    );
    const text = await waitFor(
      'temporal_* metrics of the worker',
      async () => {
        if (worker.child.exitCode !== null)
          throw new Error(`worker exited ${worker.child.exitCode}: ${worker.stderr()}`);
        const got = await scrape(url).catch(() => undefined);
        return got?.parsed.samples.some(
          (s) => s.name.startsWith('temporal_') && s.labels.task_queue === `lifeboat-host-${host}`,
        )
          ? got
          : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    expect(text.status).toBe(200);
    expect(text.parsed.types.size).toBeGreaterThan(0);
    await waitFor('the start line', async () => (worker.stderr().includes('Ctrl-C stops it.') ? true : undefined));
    expect(worker.stderr()).toContain(`; Temporal SDK metrics at http://127.0.0.1:${port}/metrics. Ctrl-C stops it.`);
  });
});
