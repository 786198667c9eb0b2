// The runbook schema and its messages: the example operators copy is valid,
// and each way a runbook goes wrong is refused with a line that names the
// file, the line, the YAML path of the field and what was expected.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { loadRunbook, validateRunbookText } from '../../src/runbook/load';
import { isLifeboatError } from '../../src/errors';

const ROOT = path.resolve(__dirname, '../..');
const EXAMPLE_FILE = path.join(ROOT, 'runbooks/orders.example.yaml');
const EXAMPLE = readFileSync(EXAMPLE_FILE, 'utf8');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-runbook-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** The example with one text replaced; fails loudly if the example no longer contains it. */
function example(from: string | RegExp, to: string): string {
  const out = EXAMPLE.replace(from, to);
  if (out === EXAMPLE) throw new Error(`the example runbook no longer contains ${String(from)}`);
  return out;
}

function errorsOf(text: string): string[] {
  const r = validateRunbookText(text, 'orders.yaml');
  if (r.ok) throw new Error('expected the runbook to be refused, but it validated');
  return r.errors;
}

describe('the example runbook', () => {
  it('validates, with the DESIGN.md §5 values and the schema defaults applied', () => {
    const r = validateRunbookText(EXAMPLE, EXAMPLE_FILE);
    if (!r.ok) throw new Error(r.errors.join('\n'));
    const rb = r.runbook;
    expect(rb.name).toBe('orders');
    expect(rb.cluster.primary).toEqual({
      host: '127.0.0.1',
      port: 5432,
      database: 'appdb',
      user: 'lifeboat',
      passwordEnv: 'ORDERS_PG_PASSWORD',
    });
    expect(rb.restore).toEqual({
      host: 'db-recovery-1',
      dataDir: '/var/lib/postgresql/15/recovery',
      port: 5433,
      mode: 'side-by-side',
      address: '127.0.0.1',
    });
    expect(rb.approvals['approve-promote']).toEqual({
      approvers: ['alice', 'bob', 'carol'],
      min: 2,
      escalateAfter: 900,
    });
    expect(rb.approvals['approve-fence']).toMatchObject({ min: 1 });
    expect(rb.skippable).toEqual([
      'capture-forensics',
      'disable-writers',
      'disable-background-jobs',
      'pause-outbox',
      'invalidate-caches',
    ]);
    expect(rb.drill?.targetWindow).toBe(24 * 3600);
    expect(rb.backup).toEqual({ host: 'db-recovery-1', retainFull: 2, scratchDir: '/var/lib/lifeboat/scratch' });
  });

  it('holds no secret values, only the names of environment variables', () => {
    expect(EXAMPLE).not.toMatch(/password\s*:/i);
    expect(EXAMPLE).not.toMatch(/secret\s*:/i);
    for (const m of EXAMPLE.matchAll(/(\w+Env): ([^,}\s]+)/g)) expect(m[2]).toMatch(/^[A-Z][A-Z0-9_]*$/);
  });

  it('shows in its header comment exactly the error line validate prints for a bad port', () => {
    const shown = /^# {3}(runbooks\/orders\.yaml:\d+: restore\.port: .*)$/m.exec(EXAMPLE)?.[1];
    const [actual] = errorsOf(example('port: 5433', 'port: abc')).map((e) =>
      e.replace('orders.yaml', 'runbooks/orders.yaml'),
    );
    expect(shown).toBe(actual);
  });
});

describe('a malformed runbook is refused with the field path and what was expected', () => {
  it('restore.port "abc": the full line, with its line number', () => {
    expect(errorsOf(example('port: 5433', 'port: abc'))).toEqual([
      'orders.yaml:53: restore.port: expected an integer between 1 and 65535, got "abc"',
    ]);
  });

  it('a missing cluster.primary.host points at the line of `primary`', () => {
    expect(errorsOf(example('{ host: 127.0.0.1, ', '{ '))).toEqual([
      'orders.yaml:25: cluster.primary.host: expected a host name or address, but the field is missing',
    ]);
  });

  it('a misspelt top-level key suggests the right one and lists the allowed keys', () => {
    expect(errorsOf(example(/^invariants:/m, 'invariant:'))).toEqual([
      'orders.yaml:78: invariant: unknown field (did you mean "invariants"?), expected one of name, cluster, repository, repositories, repositoryPolicy, ' +
        'restore, backup, retention, gates, capture, invariants, caches, traffic, approvals, skippable, objectives, drill, notify, standby, engine',
    ]);
  });

  const cases: { what: string; text: string; line: RegExp }[] = [
    {
      what: 'a repository URL over http://',
      text: example('s3://pg-backups/orders', 'http://minio:9000/pg-backups'),
      line: /^orders\.yaml:\d+: repository\.url: expected a repository URL \(file:\/\/\/absolute\/path or s3:\/\/bucket\/prefix\), got "http:\/\/minio:9000\/pg-backups"$/,
    },
    {
      what: 'a file:// URL with a relative path',
      text: example('s3://pg-backups/orders', 'file://var/lib/repo'),
      line: /^orders\.yaml:\d+: repository\.url: expected a repository URL .*, got "file:\/\/var\/lib\/repo"$/,
    },
    {
      what: 'an approval step that does not exist',
      text: example('approve-fence:', 'approve-fencing:'),
      line: /^orders\.yaml:\d+: approvals\.approve-fencing: unknown field \(did you mean "approve-fence"\?\), expected one of approve-fence, approve-promote, approve-resume, approve-repair$/,
    },
    {
      what: 'min larger than the number of approvers',
      text: example('min: 2', 'min: 4'),
      line: /^orders\.yaml:\d+: approvals\.approve-promote\.min: expected at most 3 \(the number of distinct approvers\), or no decision could ever pass, got 4$/,
    },
    {
      what: 'escalateAfter written in words',
      text: example('escalateAfter: 15m', 'escalateAfter: 15 minutes'),
      line: /^orders\.yaml:\d+: approvals\.approve-promote\.escalateAfter: expected a duration such as "15m", "24h" or "1h30m", got "15 minutes"$/,
    },
    {
      what: 'restore.mode "inplace"',
      text: example('mode: side-by-side', 'mode: inplace'),
      line: /^orders\.yaml:\d+: restore\.mode: expected "side-by-side" or "in-place", got "inplace"$/,
    },
    {
      what: 'a drill sharing the restore data directory on the same host',
      text: example('/var/lib/postgresql/15/drill', '/var/lib/postgresql/15/recovery'),
      line: /^orders\.yaml:\d+: drill\.dataDir: expected a directory other than restore\.dataDir on host db-recovery-1 \(a drill there would overwrite a recovery\), got "\/var\/lib\/postgresql\/15\/recovery"$/,
    },
    {
      what: 'a drill on the restore port of the same host',
      text: example('port: 5499', 'port: 5433'),
      line: /^orders\.yaml:\d+: drill\.port: expected a port other than restore\.port on host db-recovery-1 .*, got 5433$/,
    },
    {
      what: 'a relative data directory',
      text: example('dataDir: /var/lib/postgresql/15/recovery', 'dataDir: var/lib/pg'),
      line: /^orders\.yaml:\d+: restore\.dataDir: expected the data directory as an absolute path \(starting with \/\), got "var\/lib\/pg"$/,
    },
    {
      what: 'an invariant without its SQL',
      text: example(', sql: "select count(*) from account_balance where available_amount < 0"', ''),
      line: /^orders\.yaml:\d+: invariants\[0\]\.sql: expected an SQL query returning one value, but the field is missing$/,
    },
    {
      what: 'a negative RPO',
      text: example('rpoSeconds: 300', 'rpoSeconds: -5'),
      line: /^orders\.yaml:\d+: objectives\.rpoSeconds: expected a positive whole number of seconds, got -5$/,
    },
    {
      what: 'no objectives at all',
      text: example(/^objectives:.*$/m, ''),
      line: /^orders\.yaml: objectives: expected a mapping with rpoSeconds and rtoSeconds, but the field is missing$/,
    },
    {
      what: 'an empty restore section',
      text: example(/^restore:.*$/m, 'restore:'),
      line: /^orders\.yaml:\d+: restore: expected a mapping with host, dataDir, port and mode \(and optionally address\), got an empty value$/,
    },
    {
      what: 'a redis cache given a URL instead of the name of its variable',
      text: example('redis: { urlEnv: REDIS_URL', 'redis: { url: REDIS_URL'),
      line: /^orders\.yaml:\d+: caches\[0\]\.redis\.url: unknown field \(did you mean "urlEnv"\?\), expected one of urlEnv, patterns, preflight$/,
    },
    {
      what: 'a cache of an unknown kind',
      text: example('- redis:', '- memcached:'),
      line: /^orders\.yaml:\d+: caches\[0\]: expected one of \{ redis: \{\.\.\.\} \}, \{ http: \{\.\.\.\} \} or \{ command: \{\.\.\.\} \}, got a mapping with memcached$/,
    },
    {
      what: 'an empty approver list',
      text: example('approvers: [alice, bob] }', 'approvers: [] }'),
      line: /^orders\.yaml:\d+: approvals\.approve-fence\.approvers: expected at least one approver, got an empty list$/,
    },
    {
      what: 'an upper-case runbook name',
      text: example(/^name: orders$/m, 'name: Orders'),
      line: /^orders\.yaml:\d+: name: expected a runbook name \(lower-case letters, digits, '-' or '_', at most 63 characters\), got "Orders"$/,
    },
    {
      what: 'retainFull of zero',
      text: example('retainFull: 2', 'retainFull: 0'),
      line: /^orders\.yaml:\d+: backup\.retainFull: expected an integer of at least 1, got 0$/,
    },
    {
      what: 'a duplicated key',
      text: example(/^name: orders$/m, 'name: orders\nname: payments'),
      line: /^orders\.yaml:16:1: not valid YAML: Map keys must be unique$/,
    },
  ];

  it.each(cases)('$what', ({ text, line }) => {
    const errors = errorsOf(text);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(line);
  });

  it('a literal password in passwordEnv is refused without printing the password', () => {
    const errors = errorsOf(example('passwordEnv: ORDERS_PG_PASSWORD', 'passwordEnv: "hunter2 = s3cret pass"'));
    expect(errors).toEqual([
      'orders.yaml:25: cluster.primary.passwordEnv: expected the name of an environment variable (letters, digits and _), ' +
        'not its value; got something else (not shown: it may be the secret itself)',
    ]);
    expect(errors.join('\n')).not.toContain('hunter2');
  });

  it('text that is not YAML is refused with line and column', () => {
    const errors = errorsOf('name: orders\ncluster: [oops\nrestore: {\n');
    expect(errors.length).toBeGreaterThan(0);
    for (const e of errors) expect(e).toMatch(/^orders\.yaml:\d+:\d+: not valid YAML: \S/);
  });

  it('an empty file or a bare string is refused as not being a runbook', () => {
    expect(errorsOf('')).toEqual([
      'orders.yaml: expected a runbook (a mapping with name, cluster, repository, restore and objectives), got an empty file',
    ]);
    expect(errorsOf('just a string\n')).toEqual([
      'orders.yaml: expected a runbook (a mapping with name, cluster, repository, restore and objectives), got "just a string"',
    ]);
  });

  it('reports every problem of a file at once, each on its own line', () => {
    const text = example('port: 5433', 'port: abc')
      .replace('mode: side-by-side', 'mode: inplace')
      .replace(/^invariants:/m, 'invariant:');
    const errors = errorsOf(text);
    expect(errors).toHaveLength(3);
    expect(errors.map((e) => e.split(': ')[1])).toEqual(
      expect.arrayContaining(['restore.port', 'restore.mode', 'invariant']),
    );
  });
});

describe('loadRunbook', () => {
  it('refuses a runbook looked up by a name that differs from the name inside it', async () => {
    writeFileSync(path.join(tmp, 'payments.yaml'), EXAMPLE);
    const err: unknown = await loadRunbook('payments', tmp).catch((e: unknown) => e);
    expect(isLifeboatError(err) && err.code).toBe('RUNBOOK_INVALID');
    expect((err as Error).message).toBe(
      `runbook ${path.join(tmp, 'payments.yaml')} was asked for as "payments" but is named "orders"\n` +
        `HINT: set name: payments in ${path.join(tmp, 'payments.yaml')}, or rename the file to orders.yaml`,
    );
  });

  it('loads a runbook by name from the runbooks directory', async () => {
    writeFileSync(path.join(tmp, 'orders.yaml'), EXAMPLE);
    expect((await loadRunbook('orders', tmp)).name).toBe('orders');
  });

  it('lists every schema error and a HINT to run validate', async () => {
    const file = path.join(tmp, 'broken.yaml');
    writeFileSync(file, example('port: 5433', 'port: abc'));
    await expect(loadRunbook(file)).rejects.toThrow(
      `runbook ${file} is not valid:\n  ${file}:53: restore.port: expected an integer between 1 and 65535, got "abc"\n` +
        `HINT: run: lifeboat runbook validate ${file}`,
    );
  });
});

describe('lifeboat runbook validate (the built CLI)', () => {
  const run = promisify(execFile);
  const lifeboat = (...args: string[]) =>
    run(path.join(ROOT, 'bin/lifeboat'), ['runbook', 'validate', ...args], { cwd: tmp }).then(
      (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
      (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
    );

  it('prints ok with the runbook name and exits 0 for a valid file', async () => {
    const r = await lifeboat(EXAMPLE_FILE);
    expect(r).toEqual({ code: 0, stdout: `ok ${EXAMPLE_FILE} (runbook orders)\n`, stderr: '' });
  });

  it('prints every error line and exits 2 when any file is invalid', async () => {
    writeFileSync(path.join(tmp, 'bad.yaml'), example('port: 5433', 'port: abc').replace('min: 2', 'min: 4'));
    const r = await lifeboat(EXAMPLE_FILE, 'bad.yaml');
    expect(r.code).toBe(2);
    expect(r.stdout).toBe(`ok ${EXAMPLE_FILE} (runbook orders)\n`);
    expect(r.stderr).toBe(
      [
        'bad.yaml:53: restore.port: expected an integer between 1 and 65535, got "abc"',
        'bad.yaml:101: approvals.approve-promote.min: expected at most 3 (the number of distinct approvers), or no decision could ever pass, got 4',
        '1 of 2 runbook files not valid',
        '',
      ].join('\n'),
    );
  });

  it('prints a JSON array with --json, and a missing file as an error', async () => {
    const r = await lifeboat('--json', EXAMPLE_FILE, 'missing.yaml');
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stdout)).toEqual([
      { file: EXAMPLE_FILE, ok: true, name: 'orders' },
      { file: 'missing.yaml', ok: false, errors: ['missing.yaml: cannot read: no such file'] },
    ]);
  });
});
