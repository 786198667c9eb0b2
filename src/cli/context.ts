// What CLI commands share: which runbook and repository they act on, and the
// Temporal connection. Options come from flags first, then the environment.
import { LifeboatError } from '../errors';
import type { Runbook } from '../runbook/schema';
import { openRepository } from '../repository';
import type { Repository } from '../repository/types';
import type { StorageRole } from '../repository/roles';
import type { TemporalFlags, TemporalTarget } from '../client/temporal-config';

export interface RepoOptions {
  runbook?: string;
  repo?: string;
  cluster?: string;
  runbooksDir?: string;
  /** --encryption-key id=VARIABLE (repeated; the first writes) and --read-unencrypted, with --repo. */
  encryptionKey?: string[];
  readUnencrypted?: boolean;
  /** --credentials-file: the secrets file (src/repository/credentials-file.ts) instead of the environment's. */
  credentialsFile?: string;
}

export interface RepoTarget {
  runbook?: Runbook;
  repo: Repository;
  cluster: string;
}

/**
 * `--runbook orders` or `--repo <url> --cluster <name>` (shared/DESIGN.md §6).
 * `role`: the storage identity the command acts as (src/repository/roles.ts).
 */
export async function resolveRepoTarget(opts: RepoOptions, role?: StorageRole): Promise<RepoTarget> {
  // Named in the environment, the file also reaches processes started from here (prefetcher, pusher).
  if (opts.credentialsFile)
    process.env.LIFEBOAT_CREDENTIALS_FILE = (await import('node:path')).resolve(opts.credentialsFile);
  if (opts.runbook) {
    if (opts.repo) {
      throw new LifeboatError('INPUT_INVALID', '--runbook and --repo were both given; pass one of them', {
        hints: ['--runbook orders reads the repository from the runbook; --repo/--cluster name it directly'],
      });
    }
    if (opts.encryptionKey?.length || opts.readUnencrypted) {
      throw new LifeboatError(
        'INPUT_INVALID',
        '--encryption-key and --read-unencrypted go with --repo; a runbook names its keys in repository.encryption',
        {
          hints: ['drop them, or name the repository with --repo <url> --cluster <name> instead of --runbook'],
        },
      );
    }
    // Loaded here, not at the top: yaml and the schema cost archive-push with
    // --repo/--cluster start-up time it does not need.
    const { loadRunbook } = await import('../runbook/load');
    const { clusterName } = await import('../runbook/schema');
    const runbook = await loadRunbook(opts.runbook, opts.runbooksDir);
    const repo = await openRepository(runbook.repository.url, { ...runbook.repository, ...(role ? { role } : {}) });
    return { runbook, repo, cluster: opts.cluster ?? clusterName(runbook) };
  }
  if (opts.repo) {
    if (!opts.cluster) {
      throw new LifeboatError('INPUT_INVALID', '--repo needs --cluster <name>', {
        hints: ['the repository holds several clusters under <repo>/<cluster>/'],
      });
    }
    const { encryptionFromArgs } = await import('../repository/keys');
    const encryption = encryptionFromArgs(opts.encryptionKey, opts.readUnencrypted);
    return { repo: await openRepository(opts.repo, encryption ? { encryption } : {}), cluster: opts.cluster };
  }
  throw new LifeboatError('INPUT_INVALID', 'no repository: pass --runbook <name> or --repo <url> --cluster <name>', {
    hints: [
      'e.g. lifeboat backups --runbook orders',
      'or lifeboat backups --repo file:///var/lib/lifeboat/repo --cluster orders',
    ],
  });
}

export async function requireRunbook(opts: RepoOptions, command: string): Promise<Runbook> {
  if (!opts.runbook) {
    throw new LifeboatError('INPUT_INVALID', `${command} needs --runbook <name>`, {
      hints: [`e.g. lifeboat ${command} --runbook orders`],
    });
  }
  const { loadRunbook } = await import('../runbook/load');
  return loadRunbook(opts.runbook, opts.runbooksDir);
}

/** --address, --namespace, --profile, --config-file, --tls, --tls-*-path, --tls-server-name (src/cli/program/options.ts), and --ui-url. */
export interface TemporalOptions extends TemporalFlags {
  uiUrl?: string;
}

/**
 * The Temporal server to talk to: flags, then the environment, then the
 * profile (src/client/temporal-config.ts). Loaded when called: archive-push
 * and archive-get import this file and never talk to Temporal.
 */
export async function temporalTarget(opts: TemporalOptions): Promise<TemporalTarget> {
  const { resolveTemporal } = await import('../client/temporal-config');
  return resolveTemporal(opts);
}

/** Parses a positive integer flag; bad values are usage errors naming the flag. */
export function intOption(value: unknown, flag: string, min = 1): number {
  const n = typeof value === 'number' ? value : Number(value);
  if (!Number.isInteger(n) || n < min) {
    throw new LifeboatError(
      'INPUT_INVALID',
      `${flag}: expected an integer of at least ${min}, got ${JSON.stringify(value)}`,
    );
  }
  return n;
}
