// repository.idleTimeoutSeconds: how long an s3:// request may go without a
// byte before it fails (test/faults/frozen-store.test.ts holds a request to
// show that it does). Only S3 has requests to time out.
import { describe, expect, it } from 'vitest';
import { Repository, Runbook } from '../../src/runbook/schema';

function issues(repository: unknown): string[] {
  const parsed = Repository.safeParse(repository);
  return parsed.success ? [] : parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

describe('repository.idleTimeoutSeconds', () => {
  it('takes whole seconds from 1 to 3600 on an s3:// repository', () => {
    expect(issues({ url: 's3://pg-backups/orders', idleTimeoutSeconds: 20 })).toEqual([]);
    expect(Repository.parse({ url: 's3://pg-backups/orders', idleTimeoutSeconds: 3600 }).idleTimeoutSeconds).toBe(3600);
    for (const bad of [0, 2.5, 3601, '60']) {
      expect(issues({ url: 's3://pg-backups/orders', idleTimeoutSeconds: bad })).toEqual([
        'idleTimeoutSeconds: expected a whole number of seconds from 1 to 3600',
      ]);
    }
  });

  it('is refused on a file:// repository, naming the field', () => {
    const parsed = Runbook.safeParse({
      name: 'f',
      cluster: { primary: { host: '127.0.0.1', database: 'd', user: 'u' } },
      repositories: [
        { url: 's3://pg-backups/orders' },
        { url: 'file:///var/lib/lifeboat/repo', idleTimeoutSeconds: 5 },
      ],
      restore: { host: 'h', dataDir: '/d', port: 5433 },
      objectives: { rpoSeconds: 300, rtoSeconds: 2700 },
    });
    expect(parsed.error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`)).toEqual([
      'repositories.1.idleTimeoutSeconds: expected no idleTimeoutSeconds on a file:// repository: it is an S3 setting (s3://bucket/prefix); a file system read or write has no request to time out',
    ]);
  });
});
