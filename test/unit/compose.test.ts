// docker-compose.yml cannot be started here (no Docker), so this test is its
// only check: the services of shared/DESIGN.md §2 are there, the primary
// archives through `lifeboat archive-push`, the worker is restore host
// db-recovery-1, nothing listens beyond loopback, no secret is written into
// the file, and its Temporal cluster is the tested one
// (test/harness/temporal-cluster-config.ts, which the test cluster is built from).
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { loadUsers } from '../../src/chatops/users';
import { DEFAULT_SECRET_ENV } from '../../src/cli/commands/chatops';
import { parseListen } from '../../src/cli/commands/metrics';
import { needsOf } from '../../src/privileges/needs';
import { validateRunbookText } from '../../src/runbook/load';
import { TEMPORAL_CLUSTER } from '../harness/temporal-cluster-config';

const ROOT = path.resolve(__dirname, '../..');

interface Service {
  image?: string;
  build?: string | { context: string; dockerfile?: string };
  entrypoint?: string | string[];
  command?: string | string[];
  depends_on?: string[] | Record<string, { condition?: string }>;
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
  if (Array.isArray(e))
    return Object.fromEntries(e.map((kv) => [kv.split('=')[0] ?? kv, kv.slice(kv.indexOf('=') + 1)]));
  return Object.fromEntries(Object.entries(e).map(([k, v]) => [k, v === null ? '' : String(v)]));
}

function commandLine(s: Service): string {
  return Array.isArray(s.command) ? s.command.join(' ') : (s.command ?? '');
}

/** The repository file mounted at `target` in the service, as a path from the root. */
function mountedFrom(s: Service, target: string): string | undefined {
  for (const v of s.volumes ?? []) {
    if (typeof v !== 'string') continue;
    const [source, to] = v.split(':');
    if (to === target && source?.startsWith('./')) return path.join(ROOT, source);
  }
  return undefined;
}

function condition(s: Service, on: string): string | undefined {
  const d = s.depends_on;
  if (!d) return undefined;
  return Array.isArray(d)
    ? d.includes(on)
      ? 'service_started'
      : undefined
    : d[on]
      ? (d[on].condition ?? 'service_started')
      : undefined;
}

// `${NAME}`, `${NAME:?message}`, `${NAME:-default}`: an interpolation, not a value.
const REFERENCE = /^\$\{[A-Z_][A-Z0-9_]*(:?[?-][^}]*)?\}$/;

const runbookText = readFileSync(path.join(ROOT, 'docker/runbooks/orders.yaml'), 'utf8');

describe('docker-compose.yml', () => {
  it('has the services of the production-like stack', () => {
    expect(Object.keys(services).sort()).toEqual(
      [
        'lifeboat-chatops',
        'lifeboat-metrics',
        'lifeboat-worker',
        'minio',
        'minio-init',
        'pgbouncer',
        'primary',
        'prometheus',
        'redis',
        'temporal',
        'temporal-db',
        'temporal-namespace',
        'temporal-schema',
        'temporal-ui',
      ].sort(),
    );
    expect(service('temporal-db').image).toBe('postgres:15');
    expect(service('temporal-ui').image).toMatch(/^temporalio\/ui:\d+\.\d+\.\d+$/);
    expect(service('temporal-ui').ports).toEqual(['127.0.0.1:8233:8080']);
    // Deprecated and no longer updated by Temporal.
    expect(readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8')).not.toMatch(/image:\s*temporalio\/auto-setup/);
  });

  it('builds the primary, the worker, chat-ops and the exporter from the lifeboat image, which is postgres:15 with lifeboat installed', () => {
    for (const name of ['primary', 'lifeboat-worker', 'lifeboat-chatops', 'lifeboat-metrics']) {
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
      expect.arrayContaining([
        'wal_level=replica',
        'archive_mode=on',
        'archive_command=lifeboat archive-push %p --runbook orders',
      ]),
    );
    expect((cmd as string[])[0]).toBe('postgres');
  });

  it('runs the worker as restore host db-recovery-1 with `lifeboat worker --host`', () => {
    const worker = service('lifeboat-worker');
    expect(worker.command).toEqual(['lifeboat', 'worker', '--host', 'db-recovery-1']);
    expect(worker.hostname).toBe('db-recovery-1');
    expect(env(worker).TEMPORAL_ADDRESS).toBe('temporal:7233');
  });

  it("runs chat-ops on the published port with a signing secret from the environment and a users table of the runbook's approvers", () => {
    const chatops = service('lifeboat-chatops');
    const cmd = chatops.command as string[];
    expect(cmd.slice(0, 2)).toEqual(['lifeboat', 'chatops']);
    const flag = (name: string) => cmd[cmd.indexOf(name) + 1];
    expect(chatops.ports).toEqual([`127.0.0.1:${flag('--port')}:${flag('--port')}`]);
    expect(env(chatops)).toMatchObject({
      TEMPORAL_ADDRESS: 'temporal:7233',
      LIFEBOAT_CHATOPS_SIGNING_SECRET: expect.stringMatching(REFERENCE),
    });
    // Replay guard and rate limit shared through the stack's Redis, not one process's memory.
    expect(env(chatops)[flag('--redis-url-env') as string]).toMatch(/^redis:\/\/[^@]*@redis:6379\/\d+$/);
    expect(condition(chatops, 'redis')).toBe('service_started');
    const usersFile = mountedFrom(chatops, flag('--users') as string);
    expect(usersFile).toBeDefined();
    const rb = validateRunbookText(runbookText, 'docker/runbooks/orders.yaml');
    if (!rb.ok) throw new Error(rb.errors.join('\n'));
    const approvers = new Set(Object.values(rb.runbook.approvals).flatMap((a) => (a ? a.approvers : [])));
    const mapped = [...loadUsers(usersFile as string).values()];
    expect(mapped.length).toBeGreaterThan(0);
    for (const name of mapped) expect([...approvers], `chat user mapped to ${name}`).toContain(name);
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
    expect(published).toBeGreaterThanOrEqual(10);
  });

  it("serves the worker's temporal_* metrics on the compose network, published on 127.0.0.1", () => {
    const worker = service('lifeboat-worker');
    // LIFEBOAT_WORKER_METRICS, or --metrics on the command line.
    const cmd = worker.command as string[];
    const address = cmd.includes('--metrics') ? cmd[cmd.indexOf('--metrics') + 1] : env(worker).LIFEBOAT_WORKER_METRICS;
    expect(address, 'LIFEBOAT_WORKER_METRICS or --metrics').toBeDefined();
    const { host, port } = parseListen(address as string);
    // Every interface of the container: another container (Prometheus) can reach it; loopback only inside would not.
    expect(host).toBe('0.0.0.0');
    expect(worker.ports).toContain(`127.0.0.1:${port}:${port}`);
  });

  it('runs `lifeboat metrics` for the compose runbook on the network, published on 127.0.0.1, with what it reads', () => {
    const metrics = service('lifeboat-metrics');
    const cmd = metrics.command as string[];
    expect(cmd.slice(0, 2)).toEqual(['lifeboat', 'metrics']);
    const runbooks = cmd.flatMap((a, i) => (cmd[i - 1] === '--runbook' ? [a] : []));
    expect(runbooks.length, '--runbook').toBeGreaterThan(0);
    const dir = mountedFrom(metrics, '/etc/lifeboat/runbooks');
    expect(dir, 'docker/runbooks mounted where LIFEBOAT_RUNBOOKS_DIR (Dockerfile) points').toBe(
      path.join(ROOT, 'docker/runbooks'),
    );
    expect(readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8')).toMatch(
      /^ENV LIFEBOAT_RUNBOOKS_DIR=\/etc\/lifeboat\/runbooks$/m,
    );
    for (const name of runbooks) {
      const file = path.join(dir as string, `${name}.yaml`);
      expect(existsSync(file), `runbook ${name}`).toBe(true);
      const rb = validateRunbookText(readFileSync(file, 'utf8'), file);
      if (!rb.ok) throw new Error(rb.errors.join('\n'));
      // The primary (as the runbook's role), the repository and Temporal.
      expect(Object.keys(env(metrics)), name).toEqual(
        expect.arrayContaining([
          rb.runbook.cluster.primary.passwordEnv,
          'S3_ENDPOINT',
          'AWS_ACCESS_KEY_ID',
          'AWS_SECRET_ACCESS_KEY',
          'TEMPORAL_ADDRESS',
        ]),
      );
    }
    expect(cmd.indexOf('--listen'), '--listen').toBeGreaterThan(0);
    const { host, port } = parseListen(cmd[cmd.indexOf('--listen') + 1] as string);
    expect(host).toBe('0.0.0.0');
    expect(metrics.ports).toEqual([`127.0.0.1:${port}:${port}`]);
    expect(cmd).not.toContain('--no-temporal');
    expect(condition(metrics, 'temporal-namespace')).toBe('service_completed_successfully');
    expect(condition(metrics, 'primary')).toBe('service_healthy');
  });

  it("gives the runbook's role what `lifeboat grants` prints for the compose runbook, plus pg_monitor (metrics)", () => {
    // test/integration/compose-initdb.test.ts runs the script on PostgreSQL 15 and doctor as the role.
    const rb = validateRunbookText(runbookText, 'docker/runbooks/orders.yaml');
    if (!rb.ok) throw new Error(rb.errors.join('\n'));
    const init = readFileSync(path.join(ROOT, 'docker/primary-initdb/10-lifeboat-roles.sh'), 'utf8');
    expect(init).toMatch(
      new RegExp(`^lifeboat grants --runbook ${rb.runbook.name} \\| "\\$\\{psql\\[@\\]\\}" -q -f -$`, 'm'),
    );
    expect(init).toMatch(/^psql=\(psql -X -v ON_ERROR_STOP=1 /m);
    expect(init).toContain(`GRANT pg_monitor TO ${rb.runbook.cluster.primary.user}`);
    expect(needsOf(rb.runbook).map((n) => n.key)).toContain('member:pg_monitor');
    // The primary runs it with the runbooks `lifeboat grants --runbook orders` looks in.
    expect(mountedFrom(service('primary'), '/etc/lifeboat/runbooks')).toBe(path.join(ROOT, 'docker/runbooks'));
  });

  it("posts approvals to Slack when the host sets the runbook's webhook variable, and chat-ops takes the presses", () => {
    const rb = validateRunbookText(runbookText, 'docker/runbooks/orders.yaml');
    if (!rb.ok) throw new Error(rb.errors.join('\n'));
    const slackEnv = rb.runbook.notify?.slack?.webhookUrlEnv;
    expect(slackEnv, 'notify.slack.webhookUrlEnv').toBeDefined();
    // The worker posts: the variable passed through from the host, empty when unset (no Slack message, the run waits as usual).
    expect(env(service('lifeboat-worker'))[slackEnv as string]).toBe(`\${${slackEnv}:-}`);
    // The same names as README's Slack set-up, which a user follows.
    const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    expect(readme).toContain(`slack: { webhookUrlEnv: ${slackEnv} }`);
    // Presses are signed with the app's signing secret, which chat-ops reads from the variable the README names.
    const chatops = service('lifeboat-chatops');
    const cmd = chatops.command as string[];
    const secretEnv = cmd.includes('--secret-env') ? cmd[cmd.indexOf('--secret-env') + 1] : DEFAULT_SECRET_ENV;
    expect(readme).toMatch(new RegExp(`Signing Secret\\*\\* into\\s+\`${secretEnv}\``));
    expect(env(chatops)[secretEnv as string]).toMatch(REFERENCE);
    // The webhook URL is a secret: only the worker holds it.
    for (const [name, s] of Object.entries(services))
      if (name !== 'lifeboat-worker') expect(Object.keys(env(s)), name).not.toContain(slackEnv);
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
        'SQL_PASSWORD',
        'LIFEBOAT_CHATOPS_SIGNING_SECRET',
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
    expect(readFileSync(path.join(ROOT, 'docker/pgbouncer/pgbouncer.ini'), 'utf8')).toContain(
      '%include /etc/pgbouncer/lifeboat/databases.ini',
    );
    expect(rb.restore.address).toBe(service('lifeboat-worker').hostname);
  });

  it('names only environment variables that the worker and the primary are given', () => {
    const names = [...runbookText.matchAll(/\w+Env: ([A-Z_][A-Z0-9_]*)/g)].map((m) => m[1] as string);
    expect(names).toEqual(
      expect.arrayContaining([
        'ORDERS_PG_PASSWORD',
        'S3_ENDPOINT',
        'REDIS_URL',
        'PGBOUNCER_ADMIN_URL',
        'LIFEBOAT_WEBHOOK_URL',
      ]),
    );
    const workerEnv = env(service('lifeboat-worker'));
    for (const n of names) expect(Object.keys(workerEnv), `worker env ${n}`).toContain(n);
    // archive-push on the primary reads the repository from the same runbook.
    const primaryEnv = env(service('primary'));
    for (const n of ['S3_ENDPOINT', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'])
      expect(Object.keys(primaryEnv)).toContain(n);
  });
});

// The compose stack must run the Temporal cluster the tests run
// (test/e2e/temporal-cluster.test.ts on test/harness/temporal-server.ts), so
// that what users deploy is what CI proved. Both read TEMPORAL_CLUSTER; the
// script and config files are shared, so here it is enough that compose
// mounts and runs those very files with the same values.
describe("docker-compose.yml's Temporal cluster is the tested one (test/harness/temporal-cluster-config.ts)", () => {
  const { serverVersion, persistence: db, namespace, files } = TEMPORAL_CLUSTER;

  it('runs the tested server release, the one scripts/setup.sh builds, on maintained images', () => {
    const setupSh = readFileSync(path.join(ROOT, 'scripts/setup.sh'), 'utf8');
    expect(/^TEMPORAL_SERVER_VERSION="([^"]+)"/m.exec(setupSh)?.[1]).toBe(`v${serverVersion}`);
    expect(service('temporal').image).toBe(`temporalio/server:${serverVersion}`);
    expect(service('temporal-schema').image).toBe(`temporalio/admin-tools:${serverVersion}`);
    expect(service('temporal-namespace').image).toBe(`temporalio/admin-tools:${serverVersion}`);
  });

  it('gives the server PostgreSQL persistence and SQL visibility as tested', () => {
    const e = env(service('temporal'));
    expect(e).toMatchObject({
      DB: db.sqlPlugin,
      POSTGRES_SEEDS: 'temporal-db',
      DBNAME: db.database,
      VISIBILITY_DBNAME: db.visibilityDatabase,
      NUM_HISTORY_SHARDS: String(db.numHistoryShards),
      SQL_MAX_CONNS: String(db.maxConns),
      SQL_VIS_MAX_CONNS: String(db.visibilityMaxConns),
    });
    // SQL visibility: no Elasticsearch, and no separate visibility server.
    expect(Object.keys(e).filter((k) => /^(ENABLE_ES|ES_|VISIBILITY_POSTGRES_)/.test(k))).toEqual([]);
    expect(env(service('temporal-schema')).SQL_HOST).toBe(e.POSTGRES_SEEDS);
    expect(env(service('temporal-schema')).SQL_USER).toBe(e.POSTGRES_USER);
    expect(env(service('temporal-db')).POSTGRES_USER).toBe(e.POSTGRES_USER);
    expect(service('temporal-db').image).toBe('postgres:15');
  });

  it('mounts the dynamic config file the test cluster reads, and points the server at it', () => {
    const target = env(service('temporal')).DYNAMIC_CONFIG_FILE_PATH as string;
    expect(mountedFrom(service('temporal'), target)).toBe(files.dynamicConfig);
    // What the README explains: search attributes a worker registers are visible at once.
    const dynamic = parse(readFileSync(files.dynamicConfig, 'utf8')) as Record<string, { value: unknown }[]>;
    expect(dynamic['system.forceSearchAttributesCacheRefreshOnRead']).toEqual([{ value: true, constraints: {} }]);
  });

  it('sets the schemas up with the script the test cluster runs, with the same plugin and databases, before the server starts', () => {
    const job = service('temporal-schema');
    const script = [
      ...(Array.isArray(job.entrypoint) ? job.entrypoint : []),
      ...(Array.isArray(job.command) ? job.command : []),
    ];
    expect(script).toHaveLength(2);
    expect(script[0]).toBe('/bin/sh');
    expect(mountedFrom(job, script[1] as string)).toBe(files.setupSchema);
    expect(env(job)).toMatchObject({
      SQL_PLUGIN: db.sqlPlugin,
      DBNAME: db.database,
      VISIBILITY_DBNAME: db.visibilityDatabase,
    });
    expect(condition(job, 'temporal-db')).toBe('service_healthy');
    expect(condition(service('temporal'), 'temporal-schema')).toBe('service_completed_successfully');
  });

  it('creates the namespace the tests use, with their retention, before the worker and chat-ops connect', () => {
    const job = service('temporal-namespace');
    const script = [
      ...(Array.isArray(job.entrypoint) ? job.entrypoint : []),
      ...(Array.isArray(job.command) ? job.command : []),
    ];
    expect(script[0]).toBe('/bin/sh');
    expect(mountedFrom(job, script[1] as string)).toBe(files.createNamespace);
    expect(env(job)).toMatchObject({
      TEMPORAL_ADDRESS: 'temporal:7233',
      NAMESPACE: namespace.name,
      NAMESPACE_RETENTION: namespace.retention,
    });
    for (const name of ['lifeboat-worker', 'lifeboat-chatops']) {
      expect(env(service(name)).TEMPORAL_NAMESPACE, name).toBe(namespace.name);
      expect(condition(service(name), 'temporal-namespace'), name).toBe('service_completed_successfully');
    }
  });
});
