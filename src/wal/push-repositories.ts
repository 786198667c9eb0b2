// archive-push into several repositories (runbook `repositories:`), by the
// runbook's `repositoryPolicy`:
//   all      success only when every repository holds the file; any failure
//            fails the call and PostgreSQL retries it (what got written stays:
//            the retry finds it there with the same sha256).
//   primary  success when the first repository holds it; each other one that
//            fails (or does not answer within SECONDARY_WAIT_MS) gets an entry
//            in its catch-up queue (./catchup.ts) before the call answers, and
//            the next calls drain the queue into it once it answers again.
// The file is read, checksummed and compressed once for all of them.
import { errorMessage, LifeboatError, withContext } from '../errors';
import { closeRepositories, openEntry, type OpenedRepository } from '../repository/multi';
import type { Runbook } from '../runbook/schema';
import type { Repository } from '../repository/types';
import { drainQueue, enqueue, markDown, recentlyDown } from './catchup';
import { pushPrepared, pushWalFile, readWalToPush, type PushOutcome } from './push';
import type { TimelineWatch } from './superseded';

export type RepositoryPolicy = 'all' | 'primary';

/** How long archive-push waits for a repository other than the first under `primary`. */
export const SECONDARY_WAIT_MS = 10_000;
/** Queued files copied per call, per repository that answered. */
const DRAIN_PER_CALL = 16;

export interface RepositoryPushResult {
  name: string;
  url: string;
  result: PushOutcome['result'] | 'queued';
  error?: string;
}

export interface MultiPushOutcome extends PushOutcome {
  repositories: RepositoryPushResult[];
  /** Queued files copied into repositories that answered again. */
  drained: number;
}

class Timeout extends Error {}

function within<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Timeout(`no answer within ${ms / 1000} s`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

export async function pushToRepositories(
  list: OpenedRepository[],
  cluster: string,
  file: string,
  opts: {
    policy: RepositoryPolicy;
    queueDir: string;
    watch?: TimelineWatch;
    secondaryWaitMs?: number;
    log?: (line: string) => void;
  },
): Promise<MultiPushOutcome> {
  const [first, ...others] = list;
  if (!first) throw new LifeboatError('INPUT_INVALID', 'no repository to archive into');
  const wal = await readWalToPush(file);
  const wait = opts.secondaryWaitMs ?? SECONDARY_WAIT_MS;
  const firstPush = pushPrepared(first.repo, cluster, wal, opts.watch);
  const otherPushes = others.map(async (o): Promise<RepositoryPushResult> => {
    if (opts.policy === 'primary' && recentlyDown(opts.queueDir, o.name)) {
      return { name: o.name, url: o.url, result: 'queued', error: 'did not answer a moment ago; not asked again yet' };
    }
    try {
      const p = pushPrepared(o.repo, cluster, wal, null);
      const r = opts.policy === 'primary' ? await within(p, wait) : await p;
      return { name: o.name, url: o.url, result: r.result };
    } catch (err) {
      if (opts.policy === 'all') {
        throw new LifeboatError(
          'REPOSITORY_UNREACHABLE',
          `${wal.walFile} could not be archived into repository ${o.name} (${o.url}): ${errorMessage(err).split('\n', 1)[0]}`,
          {
            hints: [
              'repositoryPolicy all: archive-push succeeds only when every repository holds the file; PostgreSQL keeps it in pg_wal and retries',
              'to keep archiving while one repository is down, set repositoryPolicy: primary (the others catch up from a queue; lifeboat check reports how far behind)',
            ],
            cause: err,
          },
        );
      }
      if (err instanceof Timeout) markDown(opts.queueDir, o.name);
      return { name: o.name, url: o.url, result: 'queued', error: errorMessage(err).split('\n', 1)[0] ?? '' };
    }
  });
  const settled = await Promise.allSettled([firstPush, ...otherPushes]);
  const failure = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failure) {
    const reason: unknown = failure.reason;
    if (settled[0]?.status === 'rejected' && others.length > 0)
      throw withContext(`repository ${first.name}, the first`, reason);
    throw reason;
  }
  const outcome = (settled[0] as PromiseFulfilledResult<PushOutcome>).value;
  const results: RepositoryPushResult[] = [
    { name: first.name, url: first.url, result: outcome.result },
    ...settled.slice(1).map((s) => (s as PromiseFulfilledResult<RepositoryPushResult>).value),
  ];
  // Queued before PostgreSQL hears success: a crash before this line makes it call again.
  for (const r of results) {
    if (r.result !== 'queued') continue;
    enqueue(opts.queueDir, r.name, {
      walFile: wal.walFile,
      sha256: outcome.sha256,
      queuedAt: new Date().toISOString(),
      reason: r.error ?? '',
    });
    opts.log?.(
      `WARNING: ${wal.walFile} archived into ${first.name} but not into ${r.name} (${r.url}): ${r.error}; queued for catch-up (lifeboat check reports how far behind it is)`,
    );
  }
  let drained = 0;
  for (const o of others) {
    const r = results.find((x) => x.name === o.name);
    if (!r || r.result === 'queued') continue;
    // It answered: bring it up to date, a few files per call.
    const d = await drainQueue(opts.queueDir, first.repo, o, cluster, DRAIN_PER_CALL).catch(() => ({ drained: 0 }));
    drained += d.drained;
  }
  return { ...outcome, repositories: results, drained };
}

/**
 * How archive-push and the read-ahead pusher archive one file for a target:
 * into the one repository, or into every repository of the runbook by its
 * policy. `first` is the repository the target already opened (the first).
 */
export async function archiverFor(
  t: { runbook?: Pick<Runbook, 'repositories' | 'repositoryPolicy'> | undefined; repo: Repository; cluster: string },
  queueDir: string,
  log: (line: string) => void,
): Promise<{ push(file: string, watch?: TimelineWatch): Promise<PushOutcome>; close(): void }> {
  const rb = t.runbook;
  if (!rb || rb.repositories.length < 2) {
    return { push: (file, watch) => pushWalFile(t.repo, t.cluster, file, watch), close: () => undefined };
  }
  const [firstEntry] = rb.repositories;
  const rest = await Promise.all(rb.repositories.slice(1).map((e, i) => openEntry(e, i + 1, 'archive')));
  const list: OpenedRepository[] = [{ name: firstEntry!.name, index: 0, url: firstEntry!.url, repo: t.repo }, ...rest];
  return {
    push: (file, watch) =>
      pushToRepositories(list, t.cluster, file, {
        policy: rb.repositoryPolicy,
        queueDir,
        ...(watch ? { watch } : {}),
        log,
      }),
    close: () => closeRepositories(rest),
  };
}
