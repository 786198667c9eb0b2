// A drill of a cluster that subscribes to another (logical replication). The
// drill copy's catalog holds the subscription, enabled, with the publisher's
// address and production's slot: promoted, it would start an apply worker
// that takes the slot whenever production's subscriber is not connected, and
// the changes it consumes never reach production. A drill copy now runs with
// max_logical_replication_workers = 0 (src/restore/recovery-conf.ts). Real
// PostgreSQL 15 publisher and subscriber, the dev Temporal server: the
// subscriber is backed up with its subscription enabled, then production's
// subscription is disabled (the slot free, as while that subscriber
// restarts) and the publisher writes rows the slot holds. A drill to the end
// of the archive passes, with an invariant on the copy that no apply worker
// may start, and the publisher's slot is where it was: nothing consumed. A
// recovery's preflight (whose copy is promoted as the new primary) warns
// that the copy's subscriptions resume from the slots, past the target; a
// drill's does not.
import { Client as TemporalClient, Connection } from '@temporalio/client';
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { preflight } from '../../activities/recovery';
import { takeBaseBackup } from '../../src/backup/base-backup';
import { DEMO_SCHEMA_SQL } from '../../src/dev/demo-runbook';
import type { Evidence } from '../../src/recovery/contract';
import { loadRunbook } from '../../src/runbook/load';
import { startWorkers } from '../../src/worker';
import { activity } from '../harness/activity';
import { runCleanups, type Cleanups } from '../harness/cleanups';
import { startTestCluster, type TestCluster } from '../harness/cluster';
import { postgresTempDir, startPrimary, switchAndWaitArchived, type Primary } from '../harness/postgres';
import { waitFor } from '../harness/ports';
import { temporalAddress } from '../harness/services';

const cleanups: Cleanups = [];
afterAll(() => runCleanups(cleanups));

const host = `drillsub${process.pid}`;
const taskQueue = `drillsub-${process.pid}`;
let publisher: Primary;
let tc: TestCluster;
let client: TemporalClient;

type Slot = { active: boolean; confirmed: string };
const slotOf = async (): Promise<Slot | undefined> =>
  (
    await publisher.query<Slot>(
      `select active, confirmed_flush_lsn::text as confirmed from pg_replication_slots where slot_name = 'drillsub'`,
    )
  )[0];

beforeAll(async () => {
  const runbooksDir = postgresTempDir('runbooks');
  cleanups.push(() => rmSync(runbooksDir, { recursive: true, force: true }));
  process.env.LIFEBOAT_RUNBOOKS_DIR = runbooksDir;
  publisher = await startPrimary({ conf: ['wal_level = logical'] });
  cleanups.push(() => publisher.stop());
  await publisher.query('create table items (id int primary key, what text)');
  await publisher.query('create publication items_pub for table items');
  await publisher.query(`insert into items values (1, 'before the backup')`);

  tc = await startTestCluster({
    name: `drillsub-${process.pid}`,
    kind: 'file',
    runbooksDir,
    host,
    runbook: {
      extraInvariants: [
        {
          name: 'no apply worker may start',
          sql: "select current_setting('max_logical_replication_workers')::int",
          expect: 0,
        },
      ],
    },
  });
  cleanups.push(() => tc.stop());
  const sub = tc.pg;
  // The runbook's own invariants read the demo's orders.
  await sub.query(DEMO_SCHEMA_SQL);
  await sub.query('create table items (id int primary key, what text)');
  await sub.query(
    `create subscription drillsub connection 'host=127.0.0.1 port=${publisher.port} user=postgres dbname=postgres' publication items_pub`,
  );
  await waitFor('the subscription to copy the first row', async () =>
    (await sub.query('select 1 from items where id = 1')).length === 1 ? true : undefined,
  );
  // The backup holds the subscription enabled.
  await takeBaseBackup({ runbook: await loadRunbook(tc.name) });
  // Production's subscriber lets go of the slot (as while it restarts); the publisher writes what the slot holds for it.
  await sub.query('alter subscription drillsub disable');
  await waitFor('the slot to be free', async () => ((await slotOf())?.active === false ? true : undefined));
  await publisher.query(`insert into items select g, 'for production only' from generate_series(2, 20) g`);
  await switchAndWaitArchived(sub);

  const workers = await startWorkers({ address: temporalAddress(), namespace: 'default', host, taskQueue });
  cleanups.push(() => workers.shutdown());
  const connection = await Connection.connect({ address: temporalAddress() });
  cleanups.push(() => connection.close());
  client = new TemporalClient({ connection });
});

describe('a drill of a logical replication subscriber', () => {
  it("passes with no apply worker on the copy, and takes nothing from production's slot", async () => {
    const before = await slotOf();
    expect(before?.active).toBe(false);
    const evidence = (await client.workflow.execute('restoreDrill', {
      taskQueue,
      workflowId: `drill-${tc.name}`,
      args: [{ runbook: tc.name, target: { latest: true } }],
    })) as Evidence;
    expect(evidence.validationStatus).toBe('passed');
    expect(evidence.invariants.find((i) => i.name === 'no apply worker may start')).toMatchObject({ passed: true });
    // The drill promoted its copy and wrote to it: the slot is still where production left it.
    expect(await slotOf()).toEqual(before);
    // Production's subscriber, enabled again, gets every row.
    await tc.pg.query('alter subscription drillsub enable');
    await waitFor('production to get the rows', async () =>
      (await tc.pg.query<{ n: string }>('select count(*)::text as n from items'))[0]?.n === '20' ? true : undefined,
    );
  });

  it("warns in a recovery's preflight that the copy's subscriptions resume past the target; not in a drill's", async () => {
    const recovery = await activity(preflight, {
      runbook: tc.name,
      target: { latest: true },
      mode: 'side-by-side',
      dryRun: false,
    });
    const about = recovery.result.warnings.filter((w) => w.startsWith('the cluster subscribes to publications'));
    expect(about).toHaveLength(1);
    expect(about[0]).toContain('(subscription drillsub in database postgres)');
    expect(about[0]).toContain('ALTER SUBSCRIPTION ... DISABLE on the old primary');
    const drill = await activity(preflight, {
      runbook: tc.name,
      target: { latest: true },
      mode: 'side-by-side',
      dryRun: false,
      instance: 'drill',
    });
    expect(drill.result.warnings.filter((w) => w.startsWith('the cluster subscribes'))).toEqual([]);
  });
});
