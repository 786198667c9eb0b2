// How `lifeboat runbook from-pgbackrest` reads an archive_command
// (src/cli/commands/runbook-from-pgbackrest.ts): which stanza and
// configuration file it pushes to, or that it is not pgBackRest at all;
// and that the runbook it writes from its options is valid.
import { describe, expect, it } from 'vitest';
import {
  pgBackRestPush,
  runbookYaml,
  type FromPgBackRestOptions,
} from '../../src/cli/commands/runbook-from-pgbackrest';
import { validateRunbookText } from '../../src/runbook/load';

describe('pgBackRestPush', () => {
  it('finds the stanza and configuration file in the forms archive_command takes', () => {
    expect(pgBackRestPush('pgbackrest --stanza=main archive-push %p')).toEqual({ stanza: 'main' });
    expect(
      pgBackRestPush('/usr/bin/pgbackrest --config=/etc/pgbackrest/pg.conf --stanza main archive-push "%p"'),
    ).toEqual({ stanza: 'main', config: '/etc/pgbackrest/pg.conf' });
    expect(pgBackRestPush("test ! -f /tmp/stop && pgbackrest --stanza='orders' archive-push %p")).toEqual({
      stanza: 'orders',
    });
    expect(pgBackRestPush('pgbackrest archive-push %p')).toEqual({});
  });

  it('is undefined for anything that is not pgbackrest archive-push', () => {
    expect(pgBackRestPush('cp %p /mnt/wal/%f')).toBeUndefined();
    expect(pgBackRestPush('')).toBeUndefined();
    expect(pgBackRestPush('pgbackrest --stanza=main archive-get %f %p')).toBeUndefined();
    expect(pgBackRestPush('lifeboat archive-push %p --repo file:///r --cluster c')).toBeUndefined();
  });
});

describe('runbookYaml', () => {
  const o: FromPgBackRestOptions = {
    stanza: 'main',
    host: 'db1.internal',
    port: '5432',
    database: 'appdb',
    user: 'lifeboat',
    passwordEnv: 'ORDERS_PG_PASSWORD',
    osUser: 'postgres',
    repository: 's3://pg-lifeboat/orders',
    restoreHost: 'db-recovery-1',
    restoreDataDir: '/var/lib/postgresql/15/recovery',
    restorePort: '5433',
    rpoSeconds: '300',
    rtoSeconds: '2700',
  };

  it('writes a valid runbook naming the engine, the stanza and the password variable', () => {
    const r = validateRunbookText(runbookYaml(o, 'orders', '/etc/pgbackrest/pgbackrest.conf'), 'orders.yaml');
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.runbook.engine).toEqual({
      kind: 'pgbackrest',
      stanza: 'main',
      configPath: '/etc/pgbackrest/pgbackrest.conf',
    });
    expect(r.runbook.cluster.primary).toEqual({
      host: 'db1.internal',
      port: 5432,
      database: 'appdb',
      user: 'lifeboat',
      passwordEnv: 'ORDERS_PG_PASSWORD',
    });
    expect([r.runbook.restore.host, r.runbook.restore.port, r.runbook.objectives.rpoSeconds]).toEqual([
      'db-recovery-1',
      5433,
      300,
    ]);
  });

  it('leaves configPath out when neither --config nor archive_command names one', () => {
    const r = validateRunbookText(runbookYaml(o, 'orders', undefined), 'orders.yaml');
    expect(r.ok && r.runbook.engine).toEqual({ kind: 'pgbackrest', stanza: 'main' });
  });

  it('an option cannot add a key: text that is not a plain word is quoted', () => {
    const r = validateRunbookText(runbookYaml({ ...o, database: 'appdb, user: postgres' }, 'orders', undefined), 'x');
    expect(r.ok && r.runbook.cluster.primary).toMatchObject({ database: 'appdb, user: postgres', user: 'lifeboat' });
  });

  it('a bad option comes back as the field it fills', () => {
    const r = validateRunbookText(runbookYaml({ ...o, restorePort: 'abc' }, 'orders', undefined), 'orders.yaml');
    expect(r.ok).toBe(false);
    expect(!r.ok && r.errors.join('\n')).toMatch(/restore\.port: expected/);
  });
});
