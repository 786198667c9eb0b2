// Lifeboat on a Temporal server that is not the dev server: the Temporal
// server v1.32.2 with PostgreSQL persistence and SQL visibility, mTLS
// required on its frontend and an API key on every request
// (test/harness/temporal-server.ts). The CLI connects with a profile of a
// TEMPORAL_CONFIG_FILE (--profile), the worker process with the same file
// through TEMPORAL_PROFILE, both resolved by src/client/temporal-config.ts. On it: the worker registers the search
// attributes on SQL visibility, a drill schedule is created and triggered, and
// a recovery runs end to end, found and approved through `lifeboat pending`
// and `lifeboat approve`. Without a client certificate, or without TLS, the
// error says so. One server for the whole file: it takes a while to start.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Client } from '@temporalio/client';
import { Client as PgClient } from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { PendingRun } from '../../src/cli/commands/pending';
import { connectClient } from '../../src/client/temporal';
import { resolveTemporal } from '../../src/client/temporal-config';
import type { Evidence } from '../../src/recovery/contract';
import type { LifeboatSchedule } from '../../src/schedules/schedules';
import { runCleanups, type Cleanups } from '../harness/cleanups';
import { cliRunner, startCliWorker } from '../harness/cli';
import { switchAndWaitArchived } from '../harness/postgres';
import { waitFor } from '../harness/ports';
import { backedUpCluster, type BackedUpCluster } from '../harness/recovery-cluster';
import { startTemporalCluster, type TemporalCluster } from '../harness/temporal-server';

const cleanups: Cleanups = [];
let temporal: TemporalCluster;
let configFile: string;
let configHome: string;
let cluster: BackedUpCluster;
let client: Client;

/** This process's environment without any TEMPORAL_* of the machine's, and no UI link: only the config file speaks. */
function env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = {
    ...process.env,
    XDG_CONFIG_HOME: configHome,
    TEMPORAL_CONFIG_FILE: configFile,
    LIFEBOAT_UI_URL: '',
    NO_COLOR: '1',
  };
  for (const k of Object.keys(e)) if (k.startsWith('TEMPORAL_') && k !== 'TEMPORAL_CONFIG_FILE') delete e[k];
  return { ...e, ...extra };
}
const lifeboat = cliRunner(() => env());
const withProfile = (...args: string[]) => lifeboat(...args, '--profile', 'cluster');

beforeAll(async () => {
  const t0 = Date.now();
  temporal = await startTemporalCluster();
  cleanups.push(() => temporal.stop());
  process.stdout.write(
    `temporal-cluster: Temporal server on PostgreSQL with mTLS up in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`,
  );
  configHome = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-temporal-profile-'));
  cleanups.push(() => rmSync(configHome, { recursive: true, force: true }));
  configFile = path.join(configHome, 'temporal.toml');
  const { certs, address } = temporal;
  writeFileSync(
    configFile,
    [
      '[profile.cluster]',
      `address = "${address}"`,
      'namespace = "default"',
      `api_key = "${temporal.apiKey(['default:admin'])}"`,
      '[profile.cluster.tls]',
      `client_cert_path = "${certs.clientCert}"`,
      `client_key_path = "${certs.clientKey}"`,
      `server_ca_cert_path = "${certs.ca}"`,
      'server_name = "localhost"',
      '[profile.nokey]',
      `address = "${address}"`,
      '[profile.nokey.tls]',
      `client_cert_path = "${certs.clientCert}"`,
      `client_key_path = "${certs.clientKey}"`,
      `server_ca_cert_path = "${certs.ca}"`,
      'server_name = "localhost"',
      '[profile.nocert]',
      `api_key = "${temporal.apiKey(['default:admin'])}"`,
      `address = "${address}"`,
      '[profile.nocert.tls]',
      `server_ca_cert_path = "${certs.ca}"`,
      'server_name = "localhost"',
      '',
    ].join('\n'),
  );
  client = await connectClient(resolveTemporal({ profile: 'cluster' }, env()));
  cleanups.push(() => client.connection.close());
  cluster = await backedUpCluster('tcluster', cleanups);
}, 400_000);

afterAll(async () => {
  await runCleanups(cleanups);
});

it('a worker process connected by TEMPORAL_PROFILE registers the search attributes on SQL visibility, and a drill schedule created on the cluster runs', async () => {
  const before = await client.connection.operatorService.listSearchAttributes({ namespace: 'default' });
  expect(Object.keys(before.customAttributes ?? {}).filter((k) => k.startsWith('Lifeboat'))).toEqual([]);

  const worker = await startCliWorker(cluster.host, env({ TEMPORAL_PROFILE: 'cluster' }));
  cleanups.push(() => worker.stop());
  expect(worker.log()).toContain(
    'lifeboat worker: registered search attributes LifeboatRunbook, LifeboatAwaiting in namespace default',
  );
  expect(worker.log()).toContain(
    `lifeboat worker polling lifeboat and lifeboat-host-${cluster.host} on ${temporal.address} (namespace default; ` +
      `TLS with client certificate ${temporal.certs.clientCert}, server CA ${temporal.certs.ca}, server name localhost; ` +
      `API key from api_key of profile "cluster" in ${configFile}; profile "cluster" in ${configFile});`,
  );
  const after = await client.connection.operatorService.listSearchAttributes({ namespace: 'default' });
  // IndexedValueType 2 = Keyword, 7 = KeywordList.
  expect({
    LifeboatRunbook: after.customAttributes?.LifeboatRunbook,
    LifeboatAwaiting: after.customAttributes?.LifeboatAwaiting,
  }).toEqual({ LifeboatRunbook: 2, LifeboatAwaiting: 7 });

  const name = cluster.name;
  const created = await withProfile('drill', '--runbook', name, '--schedule', '@daily');
  expect(created.stderr).toBe('');
  expect(created.stdout.split('\n')[0]).toBe(
    `schedule lifeboat-drill-${name} created: restoreDrill of runbook ${name}, cron '@daily' (UTC), a run still going when the next is due is skipped`,
  );
  const triggered = await withProfile('schedules', 'trigger', name, 'drill');
  expect(triggered.code).toBe(0);
  const id = `lifeboat-drill-${name}`;
  const described = await waitFor(
    `${id} to start a run`,
    async () => {
      const d = await client.schedule.getHandle(id).describe();
      return d.info.numActionsTaken > 0 ? d : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 250 },
  );
  const workflowId = described.info.recentActions[0]!.action.workflow.workflowId;
  await client.workflow.getHandle(workflowId).result();
  const listed = await waitFor(
    "the drill as the schedule's last result",
    async () => {
      const r = await withProfile('schedules', '--json');
      expect(r.code).toBe(0);
      const s = (JSON.parse(r.stdout) as LifeboatSchedule[]).find((x) => x.scheduleId === id);
      return s?.lastResult?.status === 'COMPLETED' ? s : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 500 },
  );
  expect(listed).toMatchObject({
    kind: 'drill',
    runbook: name,
    cron: '@daily',
    lastResult: { workflowId, status: 'COMPLETED' },
  });
  expect(listed.nextRuns[0]).toMatch(/T00:00:00\.000Z$/);
});

it('recovers end to end on the cluster: started by lifeboat recover, each approval found by lifeboat pending and given by lifeboat approve', async () => {
  const { tc, name, runbook } = cluster;
  await tc.pg.query('create table t as select g as id from generate_series(1, 5000) g');
  await switchAndWaitArchived(tc.pg);
  const workflowId = `recover-${name}`;
  const started = await withProfile(
    'recover',
    '--runbook',
    name,
    '--to-latest',
    '--incident',
    'INC-16',
    '--reason',
    'cluster test',
    '--workflow-id',
    workflowId,
  );
  expect(`${started.stdout}${started.stderr}`).toContain(`started recoverToPointInTime ${workflowId}`);
  expect(started.code).toBe(0);

  const handle = client.workflow.getHandle(workflowId);
  const approved: string[] = [];
  await waitFor(
    'the recovery to complete',
    async () => {
      if ((await handle.describe()).status.name !== 'RUNNING') return true;
      const r = await withProfile('pending', '--runbook', name, '--json');
      expect(r.stderr).toBe('');
      const run = (JSON.parse(r.stdout) as PendingRun[]).find((p) => p.workflowId === workflowId);
      if (run?.pending?.kind === 'failed')
        throw new Error(`${run.pending.step} failed: ${JSON.stringify(run.pending)}`);
      if (run?.pending?.kind === 'approval' && run.pending.step !== approved[approved.length - 1]) {
        const a = await withProfile('approve', workflowId, run.pending.step, '--as', 'alice');
        expect(a.stderr).toBe('');
        expect(a.code).toBe(0);
        approved.push(run.pending.step);
      }
      return undefined;
    },
    { timeoutMs: 300_000, intervalMs: 1000 },
  );

  const evidence = (await handle.result()) as Evidence;
  expect(approved.slice(0, 2)).toEqual(['approve-fence', 'approve-promote']);
  expect(evidence).toMatchObject({ kind: 'recovery', runbook: name, incident: 'INC-16', validationStatus: 'passed' });
  expect(evidence.approvals.map((a) => `${a.step}:${a.by}`)).toEqual(approved.map((s) => `${s}:alice`));
  expect(evidence.steps.filter((s) => s.state !== 'done' && s.state !== 'skipped')).toEqual([]);
  // The promoted copy holds what was archived.
  const copy = new PgClient({
    host: runbook.restore.address,
    port: runbook.restore.port,
    user: 'postgres',
    database: 'postgres',
  });
  await copy.connect();
  const { rows } = await copy.query<{ n: string }>('select count(*) as n from t');
  await copy.end();
  expect(rows[0]).toEqual({ n: '5000' });

  const nothing = await waitFor(
    'nothing pending',
    async () => {
      const r = await withProfile('pending', '--runbook', name);
      return r.stdout.startsWith('nothing pending') ? r.stdout : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 500 },
  );
  expect(nothing.split('\n')[0]).toBe(
    `nothing pending: no running recovery waits for a decision (runbook ${name}, namespace default at ${temporal.address})`,
  );
});

it('without the API key, or with one the server did not sign, the CLI says the server refused it and why', async () => {
  const nokey = await lifeboat('pending', '--profile', 'nokey');
  expect(nokey.code).toBe(1);
  const lines = nokey.stderr.split('\n');
  expect(lines[0]).toMatch(
    new RegExp(
      `^lifeboat: the Temporal server at ${temporal.address} refused access to namespace default: .*unauthorized.* \\(TLS with client certificate .*; profile "nokey" in .*\\)$`,
      'i',
    ),
  );
  expect(lines).toContain(
    'HINT: no API key was sent: set TEMPORAL_API_KEY, or api_key in the profile (--profile, TEMPORAL_PROFILE)',
  );
  // The variable overrides the profile's key, as the Temporal CLI does: an unsigned one is refused.
  const forged = await cliRunner(() =>
    env({ TEMPORAL_API_KEY: 'eyJhbGciOiJub25lIn0.eyJwZXJtaXNzaW9ucyI6WyJkZWZhdWx0OmFkbWluIl19.' }),
  )('pending', '--profile', 'cluster');
  expect(forged.code).toBe(1);
  expect(forged.stderr).toContain(
    'HINT: the API key (from TEMPORAL_API_KEY) is not valid for this server, or grants no role on namespace default',
  );
});

it('without a client certificate, or without TLS, the CLI says it could not connect and names the TLS it used', async () => {
  const nocert = await lifeboat('pending', '--profile', 'nocert');
  expect(nocert.code).toBe(1);
  const lines = nocert.stderr.split('\n');
  expect(lines[0]).toContain(
    `cannot reach the Temporal server at ${temporal.address} (namespace default; TLS with no client certificate, server CA ${temporal.certs.ca}, server name localhost; ` +
      `API key from api_key of profile "nocert" in ${configFile}; profile "nocert" in ${configFile}): `,
  );
  expect(lines).toContain(
    'HINT: TLS is on without a client certificate: a server that requires mTLS refuses the handshake; set TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH (or tls.client_cert_path and tls.client_key_path in the profile)',
  );

  const plain = await cliRunner(() => env({ TEMPORAL_CONFIG_FILE: '' }))('pending', '--address', temporal.address);
  expect(plain.code).toBe(1);
  expect(plain.stderr.split('\n')[0]).toContain(
    `cannot reach the Temporal server at ${temporal.address} (namespace default; plaintext (no TLS)): `,
  );
  expect(plain.stderr).toContain(
    'HINT: TLS is off: a server that requires TLS drops the connection; set TEMPORAL_TLS=true or a TLS profile',
  );
});
