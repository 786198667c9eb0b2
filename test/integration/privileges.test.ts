// The least-privilege role on a cluster that is not the demo's: database
// bank, schema ledger (accounts, entries, limits, a sequence of its own), a
// gate table and an outbox in schema ops. The role is created by exactly
// grantsSql()'s output run as a superuser; the check, connected as the role,
// then finds nothing missing. Each piece taken away is named alone, with a
// fix that, run as the superuser, makes the check pass again. Preflight
// (recoveries and drills) refuses a missing piece on the primary, and a backup
// taken before a grant, with PRIVILEGE_MISSING and nothing touched.
import { mkdtempSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { MockActivityEnvironment } from '@temporalio/testing';
import { Client } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { captureForensics } from '../../activities/forensics';
import { setGate } from '../../activities/gates';
import { runInvariants } from '../../activities/invariants';
import { preflight } from '../../activities/recovery';
import { takeBaseBackup } from '../../src/backup/base-backup';
import type { GateKind } from '../../src/gates';
import { createRestorePoint } from '../../src/checkpoint/checkpoint';
import { LifeboatError } from '../../src/errors';
import type { BackupMeta } from '../../src/catalog/backup-meta';
import type { PreflightInput, PreflightResult } from '../../src/recovery/contract';
import { openRepository } from '../../src/repository';
import { keys } from '../../src/repository/layout';
import { inspectPrivileges, type MissingPrivilege } from '../../src/privileges/check';
import { grantsSql } from '../../src/privileges/grants';
import { loadRunbook } from '../../src/runbook/load';
import type { Runbook } from '../../src/runbook/schema';
import { failureOf } from '../harness/activity';
import { BANK_SQL, ROLE, asSuperuserOn, bankRunbookYaml, startBank, stopBank } from '../harness/bank-primary';
import { postgresTempDir, switchAndWaitArchived, type Primary } from '../harness/postgres';

const runbooksDir = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-privileges-runbooks-'));
const repoDir = postgresTempDir('privileges-repo');
let pg: Primary;
let runbook: Runbook;

const asSuperuser = (sql: string, database?: string) => asSuperuserOn(pg, sql, database);

async function bankRows(sql: string): Promise<unknown[]> {
  const c = new Client({ ...pg.connection, database: 'bank' });
  await c.connect();
  try {
    return (await c.query(sql)).rows;
  } finally {
    await c.end();
  }
}

async function check(): Promise<{ missing: MissingPrivilege[]; notes: string[] }> {
  const c = new Client({ host: '127.0.0.1', port: pg.port, user: ROLE, database: 'bank' });
  await c.connect();
  try {
    const r = await inspectPrivileges(c, runbook);
    return { missing: r.missing, notes: r.notes };
  } finally {
    await c.end();
  }
}

const required = (m: MissingPrivilege[]) => m.filter((x) => !x.optional);

beforeAll(async () => {
  process.env.LIFEBOAT_RUNBOOKS_DIR = runbooksDir;
  ({ pg, runbook } = await startBank({ runbooksDir, repoDir }));
});

afterAll(() => stopBank(pg, { runbooksDir, repoDir }));

describe("grantsSql and the privilege check, on a schema that is not the demo's", () => {
  it("refuses to run in a database other than the runbook's, before creating anything", async () => {
    await expect(asSuperuser(grantsSql(runbook), 'postgres')).rejects.toThrow(
      'connected to database postgres, but these grants belong in database bank (psql -d bank)',
    );
    const roles = await pg.query('select 1 from pg_roles where rolname = $1', [ROLE]);
    expect(roles).toEqual([]);
  });

  it('creates a role that is not a superuser and has every piece; only the optional pg_monitor is reported', async () => {
    const sql = grantsSql(runbook);
    await asSuperuser(sql);
    // Idempotent: the same script again changes nothing and does not fail.
    await asSuperuser(sql);
    const [role] = await pg.query<{
      rolsuper: boolean;
      rolreplication: boolean;
      rolcreaterole: boolean;
      rolpassword: string | null;
    }>('select rolsuper, rolreplication, rolcreaterole, rolpassword from pg_authid where rolname = $1', [ROLE]);
    expect(role).toEqual({ rolsuper: false, rolreplication: true, rolcreaterole: true, rolpassword: null });
    const { missing, notes } = await check();
    expect(notes).toEqual([]);
    expect(missing.map((m) => [m.key, m.optional])).toEqual([['member:pg_monitor', true]]);
  });

  const pieces: Array<{ name: string; revoke: string; key: string; fix: string; database?: string }> = [
    {
      name: 'SELECT on a table an invariant reads',
      revoke: `revoke select on ledger.limits from ${ROLE}`,
      key: 'invariant:no debit over its limit',
      fix: `GRANT SELECT ON TABLE "ledger"."limits" TO "${ROLE}";`,
      database: 'bank',
    },
    {
      name: 'EXECUTE on pg_switch_wal()',
      revoke: `revoke execute on function pg_catalog.pg_switch_wal() from ${ROLE}`,
      key: 'execute:pg_switch_wal()',
      fix: `GRANT EXECUTE ON FUNCTION pg_catalog.pg_switch_wal() TO "${ROLE}";`,
      database: 'bank',
    },
    {
      name: 'CREATEROLE',
      revoke: `alter role ${ROLE} nocreaterole`,
      key: 'createrole',
      fix: `ALTER ROLE "${ROLE}" WITH CREATEROLE;`,
    },
    {
      name: 'SELECT on a sequence the built-in check reads',
      revoke: `revoke select on sequence ledger.entry_no from ${ROLE}`,
      key: 'sequences',
      fix: `GRANT SELECT ON SEQUENCE "ledger"."entry_no" TO "${ROLE}";`,
      database: 'bank',
    },
    {
      name: 'UPDATE on the gate table',
      revoke: `revoke update on ops.system_gate from ${ROLE}`,
      key: 'gate-table:ops.system_gate',
      fix: `GRANT UPDATE ON TABLE "ops"."system_gate" TO "${ROLE}";`,
      database: 'bank',
    },
  ];
  for (const p of pieces) {
    it(`names exactly the missing ${p.name}, with a fix that makes the check pass again`, async () => {
      await asSuperuser(p.revoke);
      const { missing } = await check();
      expect(required(missing)).toEqual([
        expect.objectContaining({ key: p.key, fix: p.fix, ...(p.database ? { database: p.database } : {}) }),
      ]);
      if (!p.database) expect(required(missing)[0]!.database).toBeUndefined();
      await asSuperuser(required(missing)[0]!.fix);
      expect(required((await check()).missing)).toEqual([]);
    });
  }
});

describe('grantsSql quotes what it names', () => {
  it('works for a role and a database whose names need quoting, and the check then finds nothing missing', async () => {
    const role = 'Ops"Role';
    const database = "bank's copy";
    await asSuperuser(`create database "bank's copy"`, 'postgres');
    await asSuperuser(BANK_SQL.replace('create role teller login;', ''), database);
    const yaml = bankRunbookYaml(pg, { repoDir, stateDir: runbooksDir })
      .replace('name: bank\n', 'name: oddbank\n')
      .replace(`database: bank, user: ${ROLE}`, `database: "bank's copy", user: 'Ops"Role'`);
    writeFileSync(path.join(runbooksDir, 'oddbank.yaml'), yaml);
    const odd = await loadRunbook('oddbank', runbooksDir);
    expect(odd.cluster.primary).toMatchObject({ user: role, database });
    await asSuperuser(grantsSql(odd), database);
    const c = new Client({ host: '127.0.0.1', port: pg.port, user: role, database });
    await c.connect();
    try {
      const r = await inspectPrivileges(c, odd);
      expect(r.notes).toEqual([]);
      expect(r.missing.map((m) => m.key)).toEqual(['member:pg_monitor']);
      expect(r.missing[0]!.fix).toBe('GRANT pg_monitor TO "Ops""Role";');
    } finally {
      await c.end();
    }
    await expect(asSuperuser(grantsSql(odd), 'bank')).rejects.toThrow(
      `connected to database bank, but these grants belong in database bank's copy (psql -d 'bank'\\''s copy')`,
    );
  });
});

describe('an invariant that does not run', () => {
  it('is a warning of the grants script, which grants the rest, and a note of the check, not a missing privilege', async () => {
    const yaml = bankRunbookYaml(pg, { repoDir, stateDir: runbooksDir })
      .replace('name: bank\n', 'name: typobank\n')
      .replace(
        'invariants:\n',
        'invariants:\n  - { name: typo, sql: "select count(*) from ledger.nosuch", expect: 0 }\n',
      );
    writeFileSync(path.join(runbooksDir, 'typobank.yaml'), yaml);
    const typo = await loadRunbook('typobank', runbooksDir);
    const c = new Client({ ...pg.connection, database: 'bank' });
    const notices: string[] = [];
    c.on('notice', (n) => notices.push(`${n.severity}: ${n.message}`));
    await c.connect();
    try {
      await c.query(grantsSql(typo));
    } finally {
      await c.end();
    }
    expect(notices.filter((n) => n.startsWith('WARNING'))).toEqual([
      'WARNING: invariant "typo" does not run in this database, so no SELECT was granted for it: relation "ledger.nosuch" does not exist',
    ]);
    const r = new Client({ host: '127.0.0.1', port: pg.port, user: ROLE, database: 'bank' });
    await r.connect();
    try {
      const report = await inspectPrivileges(r, typo);
      expect(report.missing.filter((m) => !m.optional)).toEqual([]);
      expect(report.notes).toEqual([
        'invariant "typo" does not run on the primary, so its privileges could not be checked: relation "ledger.nosuch" does not exist',
      ]);
    } finally {
      await r.end();
    }
  });
});

describe('the role made by grantsSql does what a recovery does, with nothing more', () => {
  it('fences and reopens the gates on the primary, ending an application session (CREATEROLE, pg_signal_backend, the gate table)', async () => {
    const teller = new Client({ host: '127.0.0.1', port: pg.port, user: 'teller', database: 'bank' });
    teller.on('error', () => undefined);
    await teller.connect();
    const env = new MockActivityEnvironment();
    const gateInput = (gate: GateKind, enabled: boolean): Parameters<typeof setGate>[0] => ({
      runbook: 'bank',
      where: 'primary',
      enabled,
      gate,
    });
    try {
      const fenced = (await env.run(setGate, gateInput('writers', false))) as Awaited<ReturnType<typeof setGate>>;
      expect(fenced).toMatchObject({
        gate: 'writers',
        enabled: false,
        rolesAltered: ['teller'],
        sessionsTerminated: 1,
      });
      expect(fenced.proof).toContain('(SQLSTATE 25006)');
      await expect(teller.query('select 1')).rejects.toThrow();
      for (const gate of ['backgroundJobs', 'outbox'] as const) {
        expect(await env.run(setGate, gateInput(gate, false))).toMatchObject({ enabled: false });
        expect(await env.run(setGate, gateInput(gate, true))).toMatchObject({ enabled: true });
      }
    } finally {
      await env.run(setGate, gateInput('writers', true));
      await teller.end().catch(() => undefined);
    }
    expect(await bankRows(`select r.rolname from pg_db_role_setting s join pg_roles r on r.oid = s.setrole`)).toEqual(
      [],
    );
  });

  it('captures forensics and runs every invariant and built-in check without a permission error', async () => {
    await asSuperuser(`insert into ops.outbox values (1, 'x', now()), (2, 'y', null) on conflict do nothing`);
    const env = new MockActivityEnvironment();
    const cap = (await env.run(captureForensics, {
      runbook: 'bank',
      target: { time: new Date().toISOString() },
    })) as Awaited<ReturnType<typeof captureForensics>>;
    expect(cap).toMatchObject({ primaryReachable: true, outboxHighWater: '1' });
    expect(cap.captures).toEqual([
      expect.objectContaining({ name: 'entries after target', rowCount: 2, truncated: false }),
    ]);
    expect(cap.captures[0]!.error).toBeUndefined();
    // The same runbook with its "restored" instance at the primary: the checks run as the role against this catalog.
    writeFileSync(
      path.join(runbooksDir, 'bankself.yaml'),
      bankRunbookYaml(pg, { repoDir, stateDir: runbooksDir })
        .replace('name: bank\n', 'name: bankself\n')
        .replace(`port: ${pg.port + 1} }`, `port: ${pg.port} }`),
    );
    const results = (await env.run(runInvariants, { runbook: 'bankself' })) as Awaited<
      ReturnType<typeof runInvariants>
    >;
    expect(results.map((r) => [r.name, r.passed, r.error ?? ''])).toEqual([
      ['ledger sums to 7.50', true, ''],
      ['no debit over its limit', true, ''],
      ['built-in: every database accepts connections', true, ''],
      ['built-in: no invalid indexes', true, ''],
      ['built-in: installed extensions have their files', true, ''],
      ['built-in: sequences ahead of their columns', true, ''],
    ]);
  });
});

function runPreflight(extra: Partial<PreflightInput> = {}): Promise<PreflightResult> {
  const input: PreflightInput = {
    runbook: 'bank',
    target: { latest: true },
    mode: 'side-by-side',
    dryRun: false,
    ...extra,
  };
  return new MockActivityEnvironment().run(preflight, input);
}

/** What a recovery would touch first: the gate rows, the application roles' settings, the restore directory. */
async function touchable(): Promise<unknown> {
  return {
    gates: await bankRows('select gate_name, enabled, updated_at from ops.system_gate order by 1'),
    settings: await pg.query(
      `select r.rolname, s.setconfig from pg_db_role_setting s join pg_roles r on r.oid = s.setrole order by 1`,
    ),
    restoreDir: existsSync(runbook.restore.dataDir),
    drillDir: existsSync(runbook.drill!.dataDir),
  };
}

async function backup(): Promise<BackupMeta> {
  const meta = await takeBaseBackup({ runbook });
  await switchAndWaitArchived(pg);
  return meta;
}

describe("preflight checks the role on the primary and in the chosen backup's catalog", () => {
  let granted: BackupMeta;

  beforeAll(async () => {
    await asSuperuser(
      `insert into ops.system_gate (gate_name, enabled) values ('writers', true) on conflict do nothing`,
    );
    granted = await backup();
  });

  it("records the role's privileges in backup.json before the copy, and passes a run whose role lacks nothing", async () => {
    expect(granted.privileges).toMatchObject({
      role: ROLE,
      database: 'bank',
      superuser: false,
      missing: [expect.objectContaining({ key: 'member:pg_monitor', optional: true })],
    });
    expect(granted.privileges!.checked).toContain('invariant:no debit over its limit');
    const r = await runPreflight();
    expect(r.backup.backupId).toBe(granted.backupId);
    expect(r.warnings.join('\n')).not.toMatch(/privilege/i);
    const d = await runPreflight({ instance: 'drill' });
    expect(d.backup.backupId).toBe(granted.backupId);
  });

  it('refuses a recovery and a drill whose role lacks a piece on the primary, with the fix, touching nothing', async () => {
    const before = await touchable();
    await asSuperuser(`revoke select on ops.outbox from ${ROLE}`);
    try {
      for (const instance of ['restore', 'drill'] as const) {
        const f = await failureOf(runPreflight({ instance }));
        console.log(f.message);
        expect(f.type).toBe('PRIVILEGE_MISSING');
        expect(f.nonRetryable).toBe(true);
        expect(f.message).toContain(
          `role ${ROLE} lacks 1 privilege this ${instance === 'drill' ? 'drill' : 'recovery'} needs: on the primary 127.0.0.1:${pg.port}: ` +
            'SELECT (id, published_at) and UPDATE (published_at) on table ops.outbox in database bank\n',
        );
        expect(f.message).toContain(
          `HINT: on the primary: SELECT (id, published_at) and UPDATE (published_at) on table ops.outbox in database bank (lacks SELECT ("id", "published_at")): ` +
            `as a superuser in database bank: GRANT SELECT ("id", "published_at") ON TABLE "ops"."outbox" TO "${ROLE}";`,
        );
        expect(f.message).toContain(
          `HINT: every grant at once (safe to repeat): lifeboat grants --runbook bank | psql -h 127.0.0.1 -p ${pg.port} -U postgres -d bank -v ON_ERROR_STOP=1 -f -; then lifeboat doctor --runbook bank`,
        );
        expect(f.message).toMatch(/HINT: nothing was touched: no gate, no traffic, no data directory$/);
      }
    } finally {
      await asSuperuser(`grant select (id, published_at), update (published_at) on ops.outbox to ${ROLE}`);
    }
    expect(await touchable()).toEqual(before);
    await runPreflight();
  });

  it('warns, and does not refuse, when the primary does not answer', async () => {
    await pg.pgCtl('stop', '-m', 'fast', '-w');
    try {
      const r = await runPreflight();
      expect(r.warnings).toContainEqual(
        expect.stringMatching(
          new RegExp(
            `^the primary 127\\.0\\.0\\.1:${pg.port} does not answer \\(.*\\): ${ROLE}'s privileges there were not checked$`,
          ),
        ),
      );
    } finally {
      await pg.pgCtl('start', '-w', '-l', pg.logFile);
    }
  });

  it('refuses a backup taken before a grant for what its restored copy needs, and passes one taken after', async () => {
    await asSuperuser(`revoke select on ledger.limits from ${ROLE}`);
    const before = await backup();
    expect(before.privileges!.missing.map((m) => m.key).sort()).toEqual([
      'invariant:no debit over its limit',
      'member:pg_monitor',
    ]);
    await asSuperuser(`grant select on ledger.limits to ${ROLE}`);
    const state = await touchable();

    // The newest backup (chosen for --to-latest) lacks it, and none after it has it.
    const f = await failureOf(runPreflight());
    console.log(f.message);
    expect(f.type).toBe('PRIVILEGE_MISSING');
    expect(f.message).toContain(
      `role ${ROLE} lacks 1 privilege this recovery needs: in the catalog of backup ${before.backupId}, which the restored copy will have (it lacked them when the backup was taken): ` +
        'SELECT on the tables invariant "no debit over its limit" reads in database bank\n',
    );
    expect(f.message).toContain(
      `HINT: for backup ${before.backupId}'s copy, granted on the primary before a new backup: SELECT on the tables invariant "no debit over its limit" reads in database bank ` +
        `(permission denied for table limits): as a superuser in database bank: GRANT SELECT ON TABLE "ledger"."limits" TO "${ROLE}";`,
    );
    expect(f.message).toContain(
      'HINT: after granting, take a backup whose catalog has them: lifeboat backup --runbook bank',
    );
    expect(f.message).toContain('HINT: no backup of this cluster has them yet;');
    expect(await touchable()).toEqual(state);

    const after = await backup();
    expect(after.privileges!.missing.map((m) => m.key)).toEqual(['member:pg_monitor']);
    expect((await runPreflight()).backup.backupId).toBe(after.backupId);
    // Asked for by id, the old one is still refused, and the hint names the newer one that has every piece.
    const g = await failureOf(runPreflight({ backupId: before.backupId, instance: 'drill' }));
    expect(g.type).toBe('PRIVILEGE_MISSING');
    expect(g.message).toContain(
      `HINT: backup ${after.backupId} (finished ${after.endTime}) has every piece: a target after that is restored from it`,
    );
  });

  it('warns, and does not refuse, for a backup with no record (taken before privileges were recorded)', async () => {
    const repo = await openRepository(`file://${repoDir}`, {});
    const key = keys.backupMeta('bank', granted.backupId);
    const { privileges: _dropped, ...old } = JSON.parse((await repo.get(key))!.body.toString('utf8')) as BackupMeta;
    const body = Buffer.from(`${JSON.stringify(old, null, 2)}\n`);
    await repo.put(key, body, { sha256: createHash('sha256').update(body).digest('hex') });
    const r = await runPreflight({ backupId: granted.backupId });
    expect(r.warnings).toContainEqual(
      `backup ${granted.backupId}: no record of the role's privileges (taken before Lifeboat recorded them): a copy restored from it may lack a grant made since; ` +
        'after granting (lifeboat grants --runbook bank), a new backup records them (lifeboat backup --runbook bank)',
    );
  });
});

describe('lifeboat checkpoint without the grant', () => {
  it('says the grant is per database and names the database, and creates nothing', async () => {
    await asSuperuser(`revoke execute on function pg_catalog.pg_create_restore_point(text) from ${ROLE}`);
    try {
      const err = await createRestorePoint(runbook, 'before-0042').then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(LifeboatError);
      const e = err as LifeboatError;
      expect(e.code).toBe('PRIVILEGE_MISSING');
      expect(e.hints).toEqual([
        'as a superuser connected to database bank (the grant holds only in the database it is made in): ' +
          `GRANT EXECUTE ON FUNCTION pg_catalog.pg_create_restore_point(text) TO "${ROLE}"; GRANT EXECUTE ON FUNCTION pg_catalog.pg_switch_wal() TO "${ROLE}";`,
        'lifeboat grants --runbook bank prints every grant the role needs; lifeboat doctor --runbook bank checks them',
        'no restore point was created; run the checkpoint again after granting',
      ]);
    } finally {
      await asSuperuser(`grant execute on function pg_catalog.pg_create_restore_point(text) to ${ROLE}`);
    }
  });
});
