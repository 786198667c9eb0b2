// A second repository (runbook repositories:): the schema's rules and
// messages, choosing one by name or position, restore_command's
// --fallback-repo form, and the catch-up queue on real file:// repositories.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openRepository } from '../../src/repository';
import { FileRepository } from '../../src/repository/file';
import { keys } from '../../src/repository/layout';
import {
  chooseRepositories,
  fallbackRepoArgs,
  openEntry,
  parseFallbackRepo,
  runbookWithRepository,
} from '../../src/repository/multi';
import { repositorySourceNotes, repositorySources } from '../../src/recovery/repository-sources';
import { validateRunbookText } from '../../src/runbook/load';
import { copyWalFile, drainQueue, enqueue, queued, repositoryLag } from '../../src/wal/catchup';
import { encodeWal, sha256Hex } from '../../src/wal/compress';
import { pushToRepositories } from '../../src/wal/push-repositories';

const dirs: string[] = [];
afterAll(() => {
  // Temporary directories this file made.
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function tmp(label: string): string {
  const d = mkdtempSync(path.join(os.tmpdir(), `lifeboat-repos-${label}-`));
  dirs.push(d);
  return d;
}

const runbook = (repos: string) => `name: orders
cluster: { primary: { host: 127.0.0.1, database: appdb, user: lifeboat } }
${repos}
restore: { host: h1, dataDir: /var/lib/pg/recovery, port: 5433 }
objectives: { rpoSeconds: 300, rtoSeconds: 2700 }
`;

function parsed(repos: string) {
  const r = validateRunbookText(runbook(repos), 'orders.yaml');
  if (!r.ok) throw new Error(r.errors.join('\n'));
  return r.runbook;
}
function errors(repos: string): string[] {
  const r = validateRunbookText(runbook(repos), 'orders.yaml');
  return r.ok ? [] : r.errors;
}

describe('runbook repositories:', () => {
  it('a runbook with repository: has it as the first and only entry of repositories, named repo1, policy all', () => {
    const rb = parsed('repository: { url: file:///var/lib/lifeboat/repo }');
    expect(rb.repository).toEqual({ name: 'repo1', url: 'file:///var/lib/lifeboat/repo', runbookField: 'repository' });
    expect(rb.repositories).toEqual([rb.repository]);
    expect(rb.repositoryPolicy).toBe('all');
  });

  it('a list keeps its order, names the unnamed by position, and its first is runbook.repository', () => {
    const rb = parsed(
      'repositories:\n  - { url: file:///a }\n  - { name: offsite, url: s3://bucket/orders, endpointEnv: S3_ENDPOINT }\nrepositoryPolicy: primary',
    );
    expect(rb.repositories).toEqual([
      { name: 'repo1', url: 'file:///a', runbookField: 'repositories[0]' },
      { name: 'offsite', url: 's3://bucket/orders', endpointEnv: 'S3_ENDPOINT', runbookField: 'repositories[1]' },
    ]);
    expect(rb.repository).toEqual(rb.repositories[0]);
    expect(rb.repositoryPolicy).toBe('primary');
  });

  it("an identity error names the entry's own field: repositories[1].credentials.expire in a list, repository.credentials.expire for one", async () => {
    const creds = '{ expire: { accessKeyIdEnv: LB_T_UNSET_EXPIRE_ID, secretAccessKeyEnv: LB_T_UNSET_EXPIRE_SECRET } }';
    delete process.env.LB_T_UNSET_EXPIRE_ID;
    delete process.env.LB_T_UNSET_EXPIRE_SECRET;
    const listed = parsed(
      `repositories:\n  - { url: file:///a }\n  - { name: offsite, url: s3://bucket/orders, credentials: ${creds} }`,
    );
    await expect(openEntry(listed.repositories[1]!, 1, 'expire')).rejects.toThrow(
      /^the expire storage identity \(runbook repositories\[1\]\.credentials\.expire\) needs \$LB_T_UNSET_EXPIRE_ID and \$LB_T_UNSET_EXPIRE_SECRET, which are not set in this process\n.*HINT: remove repositories\[1\]\.credentials\.expire from the runbook/s,
    );
    const one = parsed(`repository: { url: s3://bucket/orders, credentials: ${creds} }`);
    await expect(openEntry(one.repositories[0]!, 0, 'expire')).rejects.toThrow(
      /^the expire storage identity \(runbook repository\.credentials\.expire\) needs/,
    );
    await expect(openRepository(one.repository.url, { ...one.repository, role: 'expire' })).rejects.toThrow(
      /\(runbook repository\.credentials\.expire\)/,
    );
  });

  it('refuses both repository: and repositories:, none, a duplicated name or URL, an empty list and an unknown policy, naming the field', () => {
    expect(errors('repository: { url: file:///a }\nrepositories: [ { url: file:///b } ]')).toEqual([
      'orders.yaml:4: repositories: expected either repository: (one) or repositories: (a list), not both (move the repository: entry to the head of repositories:), got a list of 1',
    ]);
    expect(errors('')).toEqual([
      'orders.yaml: repository: expected a mapping with url (or repositories: a list of them), but the field is missing',
    ]);
    expect(errors('repositories: [ { url: file:///a }, { name: repo1, url: file:///b } ]')).toEqual([
      'orders.yaml:3: repositories[1].name: expected a name not used by repositories[0], got "repo1"',
    ]);
    expect(errors('repositories: [ { name: a, url: file:///a }, { name: b, url: file:///a } ]')).toEqual([
      'orders.yaml:3: repositories[1].url: expected a URL other than repositories[0]\'s (the same repository twice is no second copy), got "file:///a"',
    ]);
    expect(errors('repositories: []')).toEqual([
      'orders.yaml:3: repositories: expected a list of at least one repository, got an empty list',
    ]);
    expect(errors('repository: { url: file:///a }\nrepositoryPolicy: some')).toEqual([
      'orders.yaml:4: repositoryPolicy: expected "all" or "primary", got "some"',
    ]);
  });

  it('chooses a repository by name or by position from 1, and says which there are otherwise', () => {
    const rb = parsed(
      'repositories:\n  - { name: local, url: file:///a }\n  - { name: offsite, url: s3://bucket/orders }',
    );
    expect(chooseRepositories(rb).map((r) => r.name)).toEqual(['local', 'offsite']);
    expect(chooseRepositories(rb, 'offsite').map((r) => r.name)).toEqual(['offsite']);
    expect(chooseRepositories(rb, '2').map((r) => r.name)).toEqual(['offsite']);
    expect(() => chooseRepositories(rb, '3')).toThrow(
      'runbook orders has no repository "3": it has 1 local (file:///a), 2 offsite (s3://bucket/orders)',
    );
  });

  it('gives restore_command the other repositories with their variable names, and reads them back', () => {
    const rb = parsed(
      'repositories:\n  - { url: file:///a }\n  - { url: s3://bucket2/x, endpointEnv: S3_ENDPOINT_2, regionEnv: REGION_2 }\n  - { url: file:///c }',
    );
    const args = fallbackRepoArgs(rb);
    expect(args).toEqual([
      '--fallback-repo',
      's3://bucket2/x#endpointEnv=S3_ENDPOINT_2#regionEnv=REGION_2',
      '--fallback-repo',
      'file:///c',
    ]);
    expect(parseFallbackRepo(args[1]!)).toEqual({
      url: 's3://bucket2/x',
      endpointEnv: 'S3_ENDPOINT_2',
      regionEnv: 'REGION_2',
    });
    expect(parseFallbackRepo('file:///c')).toEqual({ url: 'file:///c' });
    expect(() => parseFallbackRepo('s3://bucket2/x#endpoint=$(rm -rf /)')).toThrow(
      'expected URL[#endpointEnv=VAR][#regionEnv=VAR]',
    );
  });
});

describe('the catch-up queue', () => {
  const seg = '000000010000000000000007';
  const content = Buffer.alloc(16 << 20, 7);

  it('records a segment durably, copies it verified from the first repository, and forgets it only once the second holds it', async () => {
    const first = new FileRepository(`file://${tmp('first')}`);
    const second = new FileRepository(`file://${tmp('second')}`);
    const queueDir = tmp('queue');
    const sha256 = sha256Hex(content);
    await first.put(keys.wal('c', seg), await encodeWal(seg, content), { sha256, ifAbsent: true });
    enqueue(queueDir, 'offsite', {
      walFile: seg,
      sha256,
      queuedAt: '2026-12-03T10:00:00.000Z',
      reason: 'ECONNREFUSED',
    });
    expect(JSON.parse(readFileSync(path.join(queueDir, 'offsite', seg), 'utf8'))).toEqual({
      walFile: seg,
      sha256,
      queuedAt: '2026-12-03T10:00:00.000Z',
      reason: 'ECONNREFUSED',
    });

    const list = [
      { name: 'local', index: 0, url: first.url, repo: first },
      { name: 'offsite', index: 1, url: second.url, repo: second },
    ];
    const lag = await repositoryLag(list, 'c');
    expect(lag).toEqual([{ name: 'offsite', url: second.url, missing: [seg], since: expect.any(Date) as Date }]);

    expect(await drainQueue(queueDir, first, list[1]!, 'c', 16)).toEqual({ drained: 1, left: 0 });
    expect(queued(queueDir, 'offsite')).toEqual([]);
    expect((await second.head(keys.wal('c', seg)))?.sha256).toBe(sha256);
    expect((await repositoryLag(list, 'c'))[0]?.missing).toEqual([]);
    // Idempotent: the same segment again is "already there".
    expect(await copyWalFile(first, second, 'c', seg)).toBe('already-there');
  });

  it('never spreads a damaged copy: a segment that fails its checksum in the first stays queued', async () => {
    const firstDir = tmp('first-bad');
    const first = new FileRepository(`file://${firstDir}`);
    const second = new FileRepository(`file://${tmp('second-bad')}`);
    const queueDir = tmp('queue-bad');
    const sha256 = sha256Hex(content);
    await first.put(keys.wal('c', seg), await encodeWal(seg, Buffer.alloc(16 << 20, 8)), { sha256, ifAbsent: true });
    enqueue(queueDir, 'offsite', { walFile: seg, sha256, queuedAt: new Date().toISOString(), reason: 'timeout' });
    const r = await drainQueue(queueDir, first, { name: 'offsite', index: 1, url: second.url, repo: second }, 'c', 16);
    expect(r.drained).toBe(0);
    expect(r.left).toBe(1);
    expect(r.error).toContain(
      `${seg} in ${first.url} (cluster c) does not match its recorded sha256 (${sha256}, read `,
    );
    expect(await second.head(keys.wal('c', seg))).toBeUndefined();
    expect(queued(queueDir, 'offsite').map((e) => e.walFile)).toEqual([seg]);
  });
});

describe('the evidence of a restore from several repositories', () => {
  it('names the repository that served the base backup and each WAL file another served, and nothing when the first served all', () => {
    const baseBackup = {
      name: 'offsite',
      url: 's3://bucket/orders',
      skipped: [
        {
          name: 'local',
          url: 'file:///a',
          reason: 'backup 20261203T1000Z of cluster orders in file:///a is incomplete: no backup.json',
        },
      ],
    };
    const wal = [
      {
        walFile: '000000010000000000000003',
        servedBy: 's3://bucket/orders',
        skipped: [{ url: 'file:///a', reason: 'does not match its checksum' }],
      },
    ];
    expect(repositorySources({}, {})).toBeUndefined();
    const s = repositorySources({ repository: baseBackup }, { walFromOtherRepositories: wal });
    expect(s).toEqual({ baseBackup, wal });
    expect(repositorySourceNotes(s)).toEqual([
      'base backup served by repository offsite (s3://bucket/orders); passed over: local (file:///a): backup 20261203T1000Z of cluster orders in file:///a is incomplete: no backup.json',
      'WAL 000000010000000000000003 served by s3://bucket/orders; passed over: file:///a: does not match its checksum',
    ]);
  });
});

describe('--repo-index', () => {
  it('makes the run see only the chosen repository, as first and only', () => {
    const rb = parsed(
      'repositories:\n  - { name: local, url: file:///a }\n  - { name: offsite, url: s3://bucket/orders }',
    );
    const forced = runbookWithRepository(rb, '2');
    expect(forced.repository).toEqual({ name: 'offsite', url: 's3://bucket/orders', runbookField: 'repositories[1]' });
    expect(forced.repositories).toEqual([forced.repository]);
    expect(fallbackRepoArgs(forced)).toEqual([]);
    expect(runbookWithRepository(rb, undefined)).toBe(rb);
    expect(() => runbookWithRepository(rb, 'elsewhere')).toThrow('runbook orders has no repository "elsewhere"');
  });
});

describe('archive-push into two repositories', () => {
  const seg = '000000010000000000000009';

  async function setup() {
    const walDir = tmp('pgwal');
    const file = path.join(walDir, seg);
    writeFileSync(file, Buffer.alloc(16 << 20, 9));
    const first = new FileRepository(`file://${tmp('push-first')}`);
    // A store nobody listens on (port 1 on loopback): the connection is refused at once.
    process.env.H5_DEAD_ENDPOINT = 'http://127.0.0.1:1';
    const second = await openRepository('s3://deadbucket/orders', { endpointEnv: 'H5_DEAD_ENDPOINT' });
    const list = [
      { name: 'local', index: 0, url: first.url, repo: first },
      { name: 'offsite', index: 1, url: second.url, repo: second },
    ];
    return { file, walDir, first, second, list, queueDir: path.join(walDir, '.lifeboat-catchup') };
  }

  it('policy all: fails naming the repository that did not take the file, queues nothing; the first keeps its copy', async () => {
    const s = await setup();
    const err = await pushToRepositories(s.list, 'c', s.file, { policy: 'all', queueDir: s.queueDir }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err?.message).toMatch(
      new RegExp(`^${seg} could not be archived into repository offsite \\(s3://deadbucket/orders\\): PUT `),
    );
    expect(err?.message).toContain(
      'HINT: repositoryPolicy all: archive-push succeeds only when every repository holds the file; PostgreSQL keeps it in pg_wal and retries',
    );
    expect(queued(s.queueDir, 'offsite')).toEqual([]);
    expect(await s.first.head(keys.wal('c', seg))).toBeDefined();
    (s.second as { destroy?: () => void }).destroy?.();
  });

  it('policy primary: succeeds with the first, queues the file for the second with why, and a retry of the same file is accepted again', async () => {
    const s = await setup();
    const lines: string[] = [];
    const out = await pushToRepositories(s.list, 'c', s.file, {
      policy: 'primary',
      queueDir: s.queueDir,
      log: (l) => lines.push(l),
    });
    expect(out.repositories.map((r) => [r.name, r.result])).toEqual([
      ['local', 'stored'],
      ['offsite', 'queued'],
    ]);
    expect(queued(s.queueDir, 'offsite').map((e) => [e.walFile, e.sha256])).toEqual([[seg, out.sha256]]);
    expect(lines[0]).toMatch(
      new RegExp(
        `^WARNING: ${seg} archived into local but not into offsite \\(s3://deadbucket/orders\\): .*; queued for catch-up`,
      ),
    );
    const again = await pushToRepositories(s.list, 'c', s.file, { policy: 'primary', queueDir: s.queueDir });
    expect(again.repositories[0]?.result).toBe('already-archived');
    expect(queued(s.queueDir, 'offsite').map((e) => e.walFile)).toEqual([seg]);
    (s.second as { destroy?: () => void }).destroy?.();
  });
});
