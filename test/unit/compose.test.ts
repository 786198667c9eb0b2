// docker-compose.yml cannot be started here (no Docker), so this test is its
// only check: the services of shared/DESIGN.md §2 are there, the primary
// archives through `lifeboat archive-push`, the worker is restore host
// db-recovery-1, nothing listens beyond loopback, and no secret is written
// into the file.
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { validateRunbookText } from '../../src/runbook/load';

const ROOT = path.resolve(__dirname, '../..');

interface Service {
  image?: string;
  build?: string | { context: string; dockerfile?: string };
  command?: string | string[];
  hostname?: string;
  environment?: Record<string, string | number | null> | string[];
  ports?: (string | { target: number; published?: string | number; host_ip?: string })[];
  volumes?: (string | { source?: string })[];
}

// Merge keys (<<: *s3-env) are part of the compose format.
const compose = parse(readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
  services: Record<string, Service>;
};
const services = compose.services;

function service(name: string): Service {
  const s = services[name];
  if (!s) throw new Error(`docker-compose.yml has no service ${name}`);
  return s;
}

function env(s: Service): Record<string, string> {
  const e = s.environment ?? {};
  if (Array.isArray(e)) return Object.fromEntries(e.map((kv) => [kv.split('=')[0] ?? kv, kv.slice(kv.indexOf('=') + 1)]));
  return Object.fromEntries(Object.entries(e).map(([k, v]) => [k, v === null ? '' : String(v)]));
}

function commandLine(s: Service): string {
  return Array.isArray(s.command) ? s.command.join(' ') : (s.command ?? '');
}

// `${NAME}`, `${NAME:?message}`, `${NAME:-default}`: an interpolation, not a value.
const REFERENCE = /^\$\{[A-Z_][A-Z0-9_]*(:?[?-][^}]*)?\}$/;

const runbookText = readFileSync(path.join(ROOT, 'docker/runbooks/orders.yaml'), 'utf8');

describe('docker-compose.yml', () => {
  it('has the services of the production-like stack', () => {
    expect(Object.keys(services).sort()).toEqual(
      ['lifeboat-worker', 'minio', 'minio-init', 'pgbouncer', 'primary', 'redis', 'temporal', 'temporal-db', 'temporal-ui'].sort(),
    );
    expect(service('temporal-db').image).toBe('postgres:15');
    expect(service('temporal').image).toMatch(/^temporalio\/auto-setup:\d+\.\d+\.\d+$/);
    expect(env(service('temporal')).POSTGRES_SEEDS).toBe('temporal-db');
    expect(service('temporal-ui').image).toMatch(/^temporalio\/ui:\d+\.\d+\.\d+$/);
    expect(service('temporal-ui').ports).toEqual(['127.0.0.1:8233:8080']);
  });

  it('builds the primary and the worker from the lifeboat image, which is postgres:15 with lifeboat installed', () => {
    for (const name of ['primary', 'lifeboat-worker']) {
      expect(service(name).build, name).toBe('.');
      expect(service(name).image, name).toBe('lifeboat:local');
    }
    const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
    const stages = [...dockerfile.matchAll(/^FROM\s+(\S+)/gm)].map((m) => m[1]);
    expect(stages[stages.length - 1]).toBe('postgres:15');
    expect(dockerfile).toMatch(/ln -s \/opt\/lifeboat\/bin\/lifeboat \/usr\/local\/bin\/lifeboat/);
  });

  it('starts the primary with WAL archiving through `lifeboat archive-push`', () => {
    const cmd = service('primary').command;
    expect(Array.isArray(cmd)).toBe(true);
    const settings = (cmd as string[]).filter((_, i, all) => all[i - 1] === '-c');
    expect(settings).toEqual(
      expect.arrayContaining(['wal_level=replica', 'archive_mode=on', 'archive_command=lifeboat archive-push %p --runbook orders']),
    );
    expect((cmd as string[])[0]).toBe('postgres');
  });

  it('runs the worker as restore host db-recovery-1 with `lifeboat worker --host`', () => {
    const worker = service('lifeboat-worker');
    expect(worker.command).toEqual(['lifeboat', 'worker', '--host', 'db-recovery-1']);
    expect(worker.hostname).toBe('db-recovery-1');
    expect(env(worker).TEMPORAL_ADDRESS).toBe('temporal:7233');
  });

  it('publishes every port on 127.0.0.1 only', () => {
    let published = 0;
    for (const [name, s] of Object.entries(services)) {
      for (const p of s.ports ?? []) {
        published++;
        if (typeof p === 'string') expect(p, `${name} ports`).toMatch(/^127\.0\.0\.1:\d+:\d+(\/(tcp|udp))?$/);
        else expect(p.host_ip, `${name} ports`).toBe('127.0.0.1');
      }
    }
    expect(published).toBeGreaterThanOrEqual(7);
  });

  it('holds no literal secrets: passwords and keys are ${...} references, also inside URLs', () => {
    const checked: string[] = [];
    for (const [name, s] of Object.entries(services)) {
      for (const [key, value] of Object.entries(env(s))) {
        if (/PASSWORD|PWD|SECRET|TOKEN|ACCESS_KEY/.test(key)) {
          expect(value, `${name}.${key}`).toMatch(REFERENCE);
          checked.push(key);
        }
        // postgres://user:password@host: the password part must be a reference too.
        const userinfo = /^[a-z]+:\/\/[^:/@]*:([^@]*)@/.exec(value);
        if (userinfo) expect(userinfo[1], `${name}.${key}`).toMatch(REFERENCE);
      }
      expect(commandLine(s), `${name}.command`).not.toMatch(/(password|secret)[=\s]+[^$\s"]/i);
    }
    expect(new Set(checked)).toEqual(
      new Set([
        'POSTGRES_PASSWORD',
        'POSTGRES_PWD',
        'MINIO_ROOT_PASSWORD',
        'AWS_ACCESS_KEY_ID',
        'AWS_SECRET_ACCESS_KEY',
        'ORDERS_PG_PASSWORD',
        'APP_PG_PASSWORD',
        'DB_PASSWORD',
        'REDIS_PASSWORD',
      ]),
    );
  });

  it('mounts files that exist in the repository', () => {
    for (const [name, s] of Object.entries(services)) {
      for (const v of s.volumes ?? []) {
        const source = typeof v === 'string' ? v.split(':')[0] : v.source;
        if (source?.startsWith('./')) expect(existsSync(path.join(ROOT, source)), `${name}: ${source}`).toBe(true);
      }
    }
  });
});

describe('docker/runbooks/orders.yaml, the runbook of the compose stack', () => {
  const result = validateRunbookText(runbookText, 'docker/runbooks/orders.yaml');

  it('is valid and points at the compose services', () => {
    if (!result.ok) throw new Error(result.errors.join('\n'));
    const rb = result.runbook;
    expect(rb.cluster.primary.host).toBe('primary');
    expect(rb.restore.host).toBe(service('lifeboat-worker').hostname);
    expect(rb.drill?.host).toBe(service('lifeboat-worker').hostname);
    expect(rb.repository.url).toBe('s3://pg-backups/orders');
    expect(commandLine(service('minio-init'))).toContain('repo/pg-backups');
    expect(service('lifeboat-worker').ports).toContain(`127.0.0.1:${rb.restore.port}:${rb.restore.port}`);
    // resume-traffic rewrites pgbouncer's databases file from the worker: one volume, mounted in both.
    const traffic = rb.traffic && 'pgbouncer' in rb.traffic ? rb.traffic.pgbouncer : undefined;
    expect(traffic?.databasesFile).toBe('/etc/pgbouncer/lifeboat/databases.ini');
    expect(service('pgbouncer').volumes).toContain('pgbouncer-databases:/etc/pgbouncer/lifeboat');
    expect(service('lifeboat-worker').volumes).toContain('pgbouncer-databases:/etc/pgbouncer/lifeboat');
    expect(readFileSync(path.join(ROOT, 'docker/pgbouncer/pgbouncer.ini'), 'utf8')).toContain('%include /etc/pgbouncer/lifeboat/databases.ini');
    expect(rb.restore.address).toBe(service('lifeboat-worker').hostname);
  });

  it('names only environment variables that the worker and the primary are given', () => {
    const names = [...runbookText.matchAll(/\w+Env: ([A-Z_][A-Z0-9_]*)/g)].map((m) => m[1] as string);
    expect(names).toEqual(
      expect.arrayContaining(['ORDERS_PG_PASSWORD', 'S3_ENDPOINT', 'REDIS_URL', 'PGBOUNCER_ADMIN_URL', 'LIFEBOAT_WEBHOOK_URL']),
    );
    const workerEnv = env(service('lifeboat-worker'));
    for (const n of names) expect(Object.keys(workerEnv), `worker env ${n}`).toContain(n);
    // archive-push on the primary reads the repository from the same runbook.
    const primaryEnv = env(service('primary'));
    for (const n of ['S3_ENDPOINT', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']) expect(Object.keys(primaryEnv)).toContain(n);
  });
});
