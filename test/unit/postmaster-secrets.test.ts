// The restored postmaster's environment holds no secret (PostgreSQL prints it
// at debug3 and below); the secrets go into a credentials file only the OS
// user can read, one storage identity at a time.
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { demoRunbookYaml } from '../../src/dev/demo-runbook';
import type { LifeboatError } from '../../src/errors';
import {
  loadCredentialsFile,
  readCredentialsFile,
  repositorySettingsFromFile,
} from '../../src/repository/credentials-file';
import { osUserIds, postmasterEnv, postmasterSecretEnvNames } from '../../src/restore/os-user';
import {
  credentialsFilePath,
  postmasterSecrets,
  removeCredentialsFile,
  writeCredentialsFile,
} from '../../src/restore/secret-file';
import { Runbook } from '../../src/runbook/schema';

const SECRETS = {
  AWS_ACCESS_KEY_ID: 'worker-key-id-canary',
  AWS_SECRET_ACCESS_KEY: 'worker-secret-canary',
  T_ARCHIVE_ID: 'archive-id-canary',
  T_ARCHIVE_SECRET: 'archive-secret-canary',
  T_RESTORE_ID: 'restore-id-canary',
  T_RESTORE_SECRET: 'restore-secret-canary',
  LIFEBOAT_WEBHOOK_URL: 'https://hooks.example/secret-webhook-canary',
  LIFEBOAT_CHATOPS_SIGNING_SECRET: 'chatops-signing-canary',
};
const PLAIN = { AWS_REGION: 'eu-west-3', T_S3_ENDPOINT: 'http://127.0.0.1:9000', LIFEBOAT_NODE: '/usr/bin/node' };

function runbook(credentials?: string): Runbook {
  return Runbook.parse(runbookDoc(credentials ? parseYaml(credentials) : undefined));
}

function runbookDoc(credentials?: unknown): Record<string, unknown> {
  const doc = parseYaml(
    demoRunbookYaml({
      name: 'bank',
      pgPort: 5432,
      repoUrl: 's3://bucket/bank',
      host: 'db1',
      stateDir: '/tmp/x',
      restorePort: 5544,
      drillPort: 5545,
    }),
  ) as {
    repository: Record<string, unknown>;
  };
  doc.repository = { url: 's3://bucket/bank', endpointEnv: 'T_S3_ENDPOINT', ...(credentials ? { credentials } : {}) };
  return doc;
}

const ROLES = `
archive: { accessKeyIdEnv: T_ARCHIVE_ID, secretAccessKeyEnv: T_ARCHIVE_SECRET }
restore: { accessKeyIdEnv: T_RESTORE_ID, secretAccessKeyEnv: T_RESTORE_SECRET }
`;

const RESTORE_NAMES = { accessKeyIdEnv: 'T_RESTORE_ID', secretAccessKeyEnv: 'T_RESTORE_SECRET' };

let saved: Record<string, string | undefined>;
beforeEach(() => {
  saved = {};
  for (const k of [...Object.keys(SECRETS), ...Object.keys(PLAIN), 'AWS_SESSION_TOKEN', 'LIFEBOAT_CREDENTIALS_FILE'])
    saved[k] = process.env[k];
  delete process.env.AWS_SESSION_TOKEN;
  delete process.env.LIFEBOAT_CREDENTIALS_FILE;
  Object.assign(process.env, SECRETS, PLAIN);
});
afterEach(() => {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

describe("the restored postmaster's environment", () => {
  it('carries the endpoint, region, LIFEBOAT_NODE and the credentials file path, and no secret value at all', () => {
    const rb = runbook(ROLES);
    const env = postmasterEnv(rb, '/data/pg_wal/.lifeboat-credentials/credentials.json');
    const text = Object.entries(env)
      .map(([k, v]) => `${k}=${v}`)
      .join('\n');
    for (const value of Object.values(SECRETS)) expect(text).not.toContain(value);
    expect(env).toMatchObject({
      AWS_REGION: 'eu-west-3',
      AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:9000',
      T_S3_ENDPOINT: 'http://127.0.0.1:9000',
      LIFEBOAT_NODE: '/usr/bin/node',
      LIFEBOAT_CREDENTIALS_FILE: '/data/pg_wal/.lifeboat-credentials/credentials.json',
    });
    expect(postmasterSecretEnvNames(rb)).toEqual(
      expect.arrayContaining([
        'AWS_ACCESS_KEY_ID',
        'AWS_SECRET_ACCESS_KEY',
        'AWS_SESSION_TOKEN',
        'T_ARCHIVE_ID',
        'T_ARCHIVE_SECRET',
        'T_RESTORE_ID',
        'T_RESTORE_SECRET',
      ]),
    );
  });

  it('gives the copy one identity: the restore keys for replay, the archive keys once promoted, under the SDK names and the runbook names', () => {
    const rb = runbook(ROLES);
    expect(postmasterSecrets(rb, 'restore')).toEqual({
      AWS_ACCESS_KEY_ID: 'restore-id-canary',
      AWS_SECRET_ACCESS_KEY: 'restore-secret-canary',
      T_RESTORE_ID: 'restore-id-canary',
      T_RESTORE_SECRET: 'restore-secret-canary',
    });
    expect(postmasterSecrets(rb, 'archive')).toEqual({
      AWS_ACCESS_KEY_ID: 'archive-id-canary',
      AWS_SECRET_ACCESS_KEY: 'archive-secret-canary',
      T_ARCHIVE_ID: 'archive-id-canary',
      T_ARCHIVE_SECRET: 'archive-secret-canary',
    });
    // A role the runbook does not name: the worker's default chain keys, as before roles existed.
    expect(postmasterSecrets(runbook(), 'restore')).toEqual({
      AWS_ACCESS_KEY_ID: 'worker-key-id-canary',
      AWS_SECRET_ACCESS_KEY: 'worker-secret-canary',
    });
  });

  it('refuses a role whose named variable is not set, naming the variable and the runbook field, instead of falling back to another identity', () => {
    delete process.env.T_RESTORE_SECRET;
    const err = (() => {
      try {
        postmasterSecrets(runbook(ROLES), 'restore');
      } catch (e) {
        return e as LifeboatError;
      }
      throw new Error('expected a refusal');
    })();
    expect(err.code).toBe('SECRET_MISSING');
    expect(err.message.split('\n')[0]).toBe(
      'the restore storage identity (runbook repository.credentials.restore) needs $T_RESTORE_SECRET, which is not set in this process',
    );
  });

  it('refuses credentials that mix a profile with key variables, naming the field', () => {
    const r = Runbook.safeParse(runbookDoc({ expire: { profile: 'x', accessKeyIdEnv: 'A', secretAccessKeyEnv: 'B' } }));
    expect(r.success).toBe(false);
    expect(r.error!.issues[0]).toMatchObject({
      path: ['repository', 'credentials', 'expire'],
      message:
        'expected either accessKeyIdEnv and secretAccessKeyEnv (and optionally sessionTokenEnv), or profile, not both',
    });
  });
});

describe('the credentials file', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'lifeboat-creds-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('is written under pg_wal, 0600 in a 0700 directory, owned by the OS user, and removed with its directory', async () => {
    const dataDir = path.join(dir, 'data');
    mkdirSync(path.join(dataDir, 'pg_wal'), { recursive: true });
    const file = await writeCredentialsFile(
      runbook(ROLES),
      { dataDir, pgBin: '/usr/lib/postgresql/15/bin', osUser: 'postgres' },
      'restore',
    );
    expect(file).toBe(credentialsFilePath(dataDir));
    expect(file).toBe(path.join(dataDir, 'pg_wal', '.lifeboat-credentials', 'credentials.json'));
    const { uid } = await osUserIds('postgres');
    const st = statSync(file);
    expect({ mode: (st.mode & 0o777).toString(8), uid: st.uid }).toEqual({
      mode: '600',
      uid: process.getuid?.() === 0 ? uid : process.getuid?.(),
    });
    expect((statSync(path.dirname(file)).mode & 0o777).toString(8)).toBe('700');
    expect(readCredentialsFile(file)).toEqual({
      lifeboat: 'credentials',
      role: 'restore',
      env: {
        AWS_ACCESS_KEY_ID: 'restore-id-canary',
        AWS_SECRET_ACCESS_KEY: 'restore-secret-canary',
        T_RESTORE_ID: 'restore-id-canary',
        T_RESTORE_SECRET: 'restore-secret-canary',
      },
      // Each repository's own settings, names only and only the file's role's identity (restore_command's --fallback-repo opens each with them).
      repositories: [
        {
          name: 'repo1',
          url: 's3://bucket/bank',
          options: { endpointEnv: 'T_S3_ENDPOINT', credentials: { restore: RESTORE_NAMES } },
        },
      ],
    });
    await removeCredentialsFile(dataDir);
    expect(() => statSync(path.dirname(file))).toThrow();
  });

  it('lists every repository with its own settings; one on the default chain after a static first gets the worker keys under names of its own', async () => {
    const doc = runbookDoc(parseYaml(ROLES));
    delete doc.repository;
    doc.repositories = [
      {
        name: 'local',
        url: 's3://bucket/bank',
        endpointEnv: 'T_S3_ENDPOINT',
        credentials: parseYaml(ROLES) as unknown,
      },
      {
        name: 'offsite',
        url: 's3://other/bank',
        endpointEnv: 'T_S3_ENDPOINT',
        encryption: { keyId: 'k1', keyEnv: 'T_KEY2' },
      },
    ];
    const rb = Runbook.parse(doc);
    const dataDir = path.join(dir, 'data');
    mkdirSync(path.join(dataDir, 'pg_wal'), { recursive: true });
    const file = await writeCredentialsFile(
      rb,
      { dataDir, pgBin: '/usr/lib/postgresql/15/bin', osUser: 'postgres' },
      'restore',
    );
    const read = readCredentialsFile(file);
    expect(read.repositories).toEqual([
      {
        name: 'local',
        url: 's3://bucket/bank',
        options: { endpointEnv: 'T_S3_ENDPOINT', credentials: { restore: RESTORE_NAMES } },
      },
      {
        name: 'offsite',
        url: 's3://other/bank',
        options: {
          endpointEnv: 'T_S3_ENDPOINT',
          encryption: { keyId: 'k1', keyEnv: 'T_KEY2' },
          credentials: {
            restore: {
              accessKeyIdEnv: 'LIFEBOAT_REPO2_AWS_ACCESS_KEY_ID',
              secretAccessKeyEnv: 'LIFEBOAT_REPO2_AWS_SECRET_ACCESS_KEY',
            },
          },
        },
      },
    ]);
    // The SDK names hold the first's restore identity; the second's default chain (the worker's keys) travels under its own names.
    expect(read.env).toMatchObject({
      AWS_ACCESS_KEY_ID: 'restore-id-canary',
      LIFEBOAT_REPO2_AWS_ACCESS_KEY_ID: 'worker-key-id-canary',
      LIFEBOAT_REPO2_AWS_SECRET_ACCESS_KEY: 'worker-secret-canary',
    });
    // What archive-get finds for a --fallback-repo URL, once the file is loaded.
    process.env.LIFEBOAT_CREDENTIALS_FILE = file;
    expect(repositorySettingsFromFile('s3://other/bank')?.name).toBe('offsite');
    expect(repositorySettingsFromFile('s3://nowhere/bank')).toBeUndefined();
    for (const k of Object.keys(read.env)) if (k.startsWith('LIFEBOAT_REPO2_')) delete process.env[k];
  });

  it('sets its variables in the reading process, over the environment', () => {
    const file = path.join(dir, 'c.json');
    writeFileSync(
      file,
      JSON.stringify({ lifeboat: 'credentials', env: { AWS_SECRET_ACCESS_KEY: 'from-the-file', T_NEW: 'x' } }),
      { mode: 0o600 },
    );
    expect(loadCredentialsFile(file)).toBe(file);
    expect(process.env.AWS_SECRET_ACCESS_KEY).toBe('from-the-file');
    expect(process.env.LIFEBOAT_CREDENTIALS_FILE).toBe(file);
    delete process.env.T_NEW;
  });

  it('refuses a file others may read, and one that is not a credentials file, without quoting it', () => {
    const file = path.join(dir, 'open.json');
    writeFileSync(file, JSON.stringify({ lifeboat: 'credentials', env: { AWS_SECRET_ACCESS_KEY: 'open-secret' } }));
    chmodSync(file, 0o644);
    expect(() => readCredentialsFile(file)).toThrow(
      /must be a regular file owned by the user reading it \(uid \d+\) with mode 0600; it is a file owned by uid \d+, mode 0644/,
    );
    const bad = path.join(dir, 'bad.json');
    writeFileSync(bad, '{"lifeboat": "credentials", "env": {"AWS_SECRET_ACCESS_KEY": "not-quoted-secret"', {
      mode: 0o600,
    });
    const err = (() => {
      try {
        readCredentialsFile(bad);
      } catch (e) {
        return e as LifeboatError;
      }
      throw new Error('expected a refusal');
    })();
    expect(err.code).toBe('SECRET_MISSING');
    expect(err.message.split('\n')[0]).toBe(
      `the credentials file ${bad} (--credentials-file or $LIFEBOAT_CREDENTIALS_FILE) is not valid JSON`,
    );
  });
});
