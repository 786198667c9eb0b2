// Storage identities per role (least privilege, README "Storage identities"):
// what touches the repository decides which credentials it uses.
//   archive  archive-push (and the copy Lifeboat promotes, which archives):
//            write and read, never delete
//   backup   baseBackup: write and read, never delete
//   restore  archive-get, the prefetcher, restore-base-backup, replay: read
//   expire   expireBackups: list, read and delete
// The runbook names, per role, the environment variables that hold the keys
// (repository.credentials.<role>.accessKeyIdEnv...) or an AWS profile; a
// role it does not name uses the AWS SDK's default chain, as everything
// did before roles existed. The IAM policies are docs/iam/<role>.json.
import { LifeboatError } from '../errors';

export const STORAGE_ROLES = ['archive', 'backup', 'restore', 'expire'] as const;
export type StorageRole = (typeof STORAGE_ROLES)[number];

/** One role's credential source: environment variable names (never values), or an AWS profile name. */
export interface RoleCredentials {
  accessKeyIdEnv?: string;
  secretAccessKeyEnv?: string;
  sessionTokenEnv?: string;
  profile?: string;
}

export type RepositoryCredentials = Partial<Record<StorageRole, RoleCredentials>>;

export interface StaticCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export type ResolvedIdentity =
  | { kind: 'static'; credentials: StaticCredentials; describe: string }
  | { kind: 'profile'; profile: string; describe: string }
  | { kind: 'default'; describe: string };

const DEFAULT_CHAIN =
  'the AWS SDK default chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or an instance role)';

/**
 * The credentials `role` uses: the named variables' values, read now; a
 * variable the runbook names but the environment lacks is an error naming
 * both, never a silent fall back to another (maybe stronger) identity.
 */
export function resolveIdentity(
  role: StorageRole | undefined,
  sources: RepositoryCredentials | undefined,
  runbookField = 'repository',
): ResolvedIdentity {
  const c = role ? sources?.[role] : undefined;
  if (!role || !c)
    return { kind: 'default', describe: role ? `the ${role} identity, from ${DEFAULT_CHAIN}` : DEFAULT_CHAIN };
  const field = `${runbookField}.credentials.${role}`;
  if (c.profile)
    return {
      kind: 'profile',
      profile: c.profile,
      describe: `the ${role} identity (AWS profile ${c.profile}, runbook ${field}.profile)`,
    };
  const names = [c.accessKeyIdEnv, c.secretAccessKeyEnv, c.sessionTokenEnv].filter((n): n is string => !!n);
  const missing = names.filter((n) => !process.env[n]);
  if (!c.accessKeyIdEnv || !c.secretAccessKeyEnv || missing.length > 0) {
    throw new LifeboatError(
      'SECRET_MISSING',
      `the ${role} storage identity (runbook ${field}) needs ${missing.length > 0 ? missing.map((n) => `$${n}`).join(' and ') : 'accessKeyIdEnv and secretAccessKeyEnv'}, which ${missing.length === 1 ? 'is' : 'are'} not set in this process`,
      {
        hints: [
          `set ${names.length > 0 ? names.join(', ') : `${field}.accessKeyIdEnv and .secretAccessKeyEnv`} in the environment of the lifeboat worker (or CLI) that runs this`,
          `remove ${field} from the runbook to use ${DEFAULT_CHAIN} instead`,
        ],
      },
    );
  }
  const credentials: StaticCredentials = {
    accessKeyId: process.env[c.accessKeyIdEnv]!,
    secretAccessKey: process.env[c.secretAccessKeyEnv]!,
    ...(c.sessionTokenEnv ? { sessionToken: process.env[c.sessionTokenEnv]! } : {}),
  };
  return { kind: 'static', credentials, describe: `the ${role} identity ($${c.accessKeyIdEnv}, runbook ${field})` };
}

/** Every environment variable a runbook's credentials name: secrets all (the key id included, paired with them). */
export function credentialEnvNames(credentials: RepositoryCredentials | undefined): string[] {
  const out: string[] = [];
  for (const role of STORAGE_ROLES) {
    const c = credentials?.[role];
    for (const n of [c?.accessKeyIdEnv, c?.secretAccessKeyEnv, c?.sessionTokenEnv])
      if (n && !out.includes(n)) out.push(n);
  }
  return out;
}

/** The S3 permission an operation needs, for the message when the store refuses it. */
export function permissionFor(op: string): string {
  switch (op) {
    case 'PUT':
      return 's3:PutObject';
    case 'GET':
    case 'HEAD':
      return 's3:GetObject';
    case 'LIST':
      return 's3:ListBucket';
    case 'DELETE':
      return 's3:DeleteObject';
    default:
      return `the permission for ${op}`;
  }
}
