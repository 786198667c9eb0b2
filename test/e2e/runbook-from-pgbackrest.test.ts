// `lifeboat runbook from-pgbackrest`, the real binary against a real
// pgBackRest 2.45 stanza on a real PostgreSQL 15 whose archive_command is
// pgbackrest archive-push (test/harness/pgbackrest.ts): the runbook it writes
// validates, loads by name, and `lifeboat check` passes on it; archive_command
// is left as it was. A cluster archiving with something else, a stanza the
// primary does not archive to, and an existing file are refused with nothing
// written.
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliRunner } from '../harness/cli';
import { startPgBackRestPrimary, type PgBackRestStanza } from '../harness/pgbackrest';
import { postgresTempDir, startPrimary, switchAndWaitArchived, type Primary } from '../harness/postgres';
import { freePort } from '../harness/ports';

const runbooksDir = postgresTempDir('runbooks');
const stateDir = postgresTempDir('state');
const repoDir = postgresTempDir('repo');
const lifeboat = cliRunner(() => ({ ...process.env, LIFEBOAT_RUNBOOKS_DIR: runbooksDir }));
let s: PgBackRestStanza;
let other: Primary;
let restorePort: number;

const args = (port: number, stanza: string, ...more: string[]) => [
  'runbook',
  'from-pgbackrest',
  '--stanza',
  stanza,
  '--port',
  String(port),
  '--user',
  'postgres',
  '--database',
  'postgres',
  '--repository',
  `file://${repoDir}`,
  '--restore-data-dir',
  `${stateDir}/recovery`,
  '--restore-port',
  String(restorePort),
  '--restore-host',
  'frombr',
  ...more,
];

beforeAll(async () => {
  restorePort = await freePort();
  s = await startPgBackRestPrimary();
  await s.run(['backup', '--type=full']);
  await s.primary.query('create table t as select generate_series(1, 10) as id');
  await switchAndWaitArchived(s.primary);
  other = await startPrimary({ conf: ['archive_mode = on', "archive_command = '/bin/true %p'"] });
});

afterAll(async () => {
  await s?.stop();
  await other?.stop();
  for (const d of [runbooksDir, stateDir, repoDir]) rmSync(d, { recursive: true, force: true });
});

describe('lifeboat runbook from-pgbackrest', () => {
  it('writes a runbook with engine: pgbackrest from the stanza the primary archives to, and check passes on it', async () => {
    const file = path.join(runbooksDir, 'frombr.yaml');
    const before = await s.primary.query<{ archive_command: string }>('show archive_command');
    // --config left out: taken from archive_command's --config.
    const r = await lifeboat(...args(s.primary.port, s.stanza, '--name', 'frombr'));
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain(
      `wrote ${file} (runbook frombr, engine pgbackrest, stanza ${s.stanza}, config ${s.config})\n`,
    );
    expect(r.stdout).toContain(`archive_command left as it is: ${before[0]!.archive_command}\n`);
    expect(r.stdout).toContain('pgbackrest info: 1 backup, system ');
    expect(r.stdout).toContain('verify: no damaged or missing file');
    expect(r.stdout).toMatch(/\nhealthy\n/);
    expect(r.stdout).toContain(`\nlifeboat doctor --runbook frombr:\n`);
    expect(r.stdout).toContain(`1 backup in pgBackRest stanza ${s.stanza}, newest `);
    expect(r.stdout).toContain('\n  - lifeboat repair: pgbackrest restore into drill.dataDir');
    expect(r.code).toBe(0);
    expect(readFileSync(file, 'utf8')).toContain(
      `engine: { kind: pgbackrest, stanza: ${s.stanza}, configPath: ${s.config} }\n`,
    );
    expect(await s.primary.query('show archive_command')).toEqual(before);

    const valid = await lifeboat('runbook', 'validate', file);
    expect([valid.code, valid.stdout]).toEqual([0, `ok ${file} (runbook frombr)\n`]);
    const check = await lifeboat('check', '--runbook', 'frombr');
    expect(check.stdout).toContain(`cluster frombr: pgBackRest stanza ${s.stanza}\n`);
    expect(check.stdout.trimEnd().split('\n').pop()).toBe('healthy');
    expect(check.code).toBe(0);

    // Run again: the file is there and is not overwritten.
    writeFileSync(file, `${readFileSync(file, 'utf8')}# edited by hand\n`);
    const edited = readFileSync(file, 'utf8');
    const again = await lifeboat(...args(s.primary.port, s.stanza, '--name', 'frombr'));
    expect(again.code).toBe(2);
    expect(again.stderr).toContain(`lifeboat: ${file} exists: from-pgbackrest never overwrites a runbook\n`);
    expect(again.stdout).toBe('');
    expect(readFileSync(file, 'utf8')).toBe(edited);
  });

  it('--print prints the runbook, checked against the primary and the stanza, and writes nothing', async () => {
    const r = await lifeboat(...args(s.primary.port, s.stanza, '--name', 'printed', '--print'));
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`\nengine: { kind: pgbackrest, stanza: ${s.stanza}, configPath: ${s.config} }\n`);
    expect(r.stderr).toBe(
      'not checked (--print): save it as runbooks/printed.yaml, then lifeboat check --runbook printed\n',
    );
    expect(existsSync(path.join(runbooksDir, 'printed.yaml'))).toBe(false);
  });

  it('refuses a stanza the primary does not archive to, naming the one it does', async () => {
    const r = await lifeboat(...args(s.primary.port, 'elsewhere'));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      `lifeboat: the primary 127.0.0.1:${s.primary.port} archives to pgBackRest stanza ${s.stanza}, not elsewhere: its archive_command is`,
    );
    expect(r.stderr).toContain(`HINT: run again with --stanza ${s.stanza}\n`);
    expect(existsSync(path.join(runbooksDir, 'elsewhere.yaml'))).toBe(false);
  });

  it('refuses a cluster whose archive_command is not pgbackrest archive-push, writing nothing', async () => {
    const r = await lifeboat(...args(other.port, s.stanza, '--name', 'notbr', '--config', s.config));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      `lifeboat: the primary 127.0.0.1:${other.port} does not archive with pgBackRest: its archive_command is "/bin/true %p", expected pgbackrest --stanza=${s.stanza} archive-push %p\n`,
    );
    expect(r.stderr).toContain('HINT: nothing was written\n');
    expect(r.stdout).toBe('');
    expect(existsSync(path.join(runbooksDir, 'notbr.yaml'))).toBe(false);
  });
});
