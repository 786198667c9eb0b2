// The primary overlay: where a side-by-side recovery re-pointed the cluster's
// primary (<repo>/<cluster>/primary.json).
//
// After a side-by-side recovery promotes, the cluster's primary is the
// promoted copy at restore.address:restore.port, while the runbook still
// names the old server. The recovery writes this overlay; `backup`, `check`,
// `drill`, `checkpoint` and the next recovery read it, so none of them goes
// on copying, checking or fencing the server the archive no longer follows.
//
// The overlay applies only while the runbook still names the server it
// replaced (`replaced`): once someone edits cluster.primary, the runbook
// wins again, whatever it names. Only host and port are re-pointed: the
// copy came from the primary's own backup, so it has the same roles,
// passwords and databases.
import { LifeboatError, withContext } from '../errors';
import { keys } from '../repository/layout';
import type { Repository } from '../repository/types';
import type { Runbook } from '../runbook/schema';

export interface PrimaryOverlay {
  cluster: string;
  runbook: string;
  /** The promoted copy: the cluster's primary now. */
  host: string;
  port: number;
  /** The runbook's cluster.primary when the recovery promoted; the overlay applies while the runbook still names it. */
  replaced: { host: string; port: number };
  /** The timeline the promoted copy writes. */
  timeline: number;
  promotedAt: string;
  /** When the overlay was written. */
  since: string;
  workflowId: string;
  runId: string;
}

/** The overlay of a cluster, or undefined when no recovery re-pointed it. */
export async function readPrimaryOverlay(repo: Repository, cluster: string): Promise<PrimaryOverlay | undefined> {
  const key = keys.primaryOverlay(cluster);
  let got: Awaited<ReturnType<Repository['get']>>;
  try {
    got = await repo.get(key);
  } catch (err) {
    throw withContext(`while reading the primary overlay ${key} in ${repo.url}`, err);
  }
  if (!got) return undefined;
  return parsePrimaryOverlay(got.body.toString('utf8'), `${repo.url}/${key}`);
}

export function parsePrimaryOverlay(text: string, source: string): PrimaryOverlay {
  const bad = (why: string) =>
    new LifeboatError('REPOSITORY_INVALID', `primary overlay ${source} cannot be used: ${why}`, {
      hints: [
        'a side-by-side recovery writes it when it promotes; compare it with the evidence of that recovery (lifeboat evidence)',
        'once cluster.primary in the runbook names the current primary, the file may be moved aside',
      ],
    });
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw bad(`not valid JSON (${err instanceof Error ? err.message : String(err)})`);
  }
  if (v === null || typeof v !== 'object') throw bad('not a JSON object');
  const o = v as Record<string, unknown>;
  const str = (k: string) => {
    if (typeof o[k] !== 'string' || o[k] === '') throw bad(`${k} must be a non-empty string`);
    return o[k];
  };
  const port = (x: unknown, k: string) => {
    if (typeof x !== 'number' || !Number.isInteger(x) || x < 1 || x > 65535) throw bad(`${k} must be a port number`);
    return x;
  };
  const r = o.replaced as Record<string, unknown> | undefined;
  if (!r || typeof r !== 'object' || typeof r.host !== 'string')
    throw bad('replaced must name the host and port the runbook named');
  if (typeof o.timeline !== 'number' || !Number.isInteger(o.timeline) || o.timeline < 1)
    throw bad('timeline must be a positive integer');
  return {
    cluster: str('cluster'),
    runbook: str('runbook'),
    host: str('host'),
    port: port(o.port, 'port'),
    replaced: { host: r.host, port: port(r.port, 'replaced.port') },
    timeline: o.timeline,
    promotedAt: str('promotedAt'),
    since: str('since'),
    workflowId: str('workflowId'),
    runId: str('runId'),
  };
}

/** Writes (or replaces: a later recovery re-points again) the overlay. */
export async function writePrimaryOverlay(repo: Repository, overlay: PrimaryOverlay): Promise<string> {
  const key = keys.primaryOverlay(overlay.cluster);
  const body = Buffer.from(`${JSON.stringify(overlay, null, 2)}\n`);
  const { createHash } = await import('node:crypto');
  try {
    await repo.put(key, body, {
      sha256: createHash('sha256').update(body).digest('hex'),
      contentType: 'application/json',
    });
  } catch (err) {
    throw withContext(`while writing the primary overlay ${key} to ${repo.url}`, err);
  }
  return key;
}

const sameServer = (a: { host: string; port: number }, b: { host: string; port: number }) =>
  a.host === b.host && a.port === b.port;

export interface OverlaidRunbook {
  /** The runbook, with cluster.primary re-pointed when the overlay applies. */
  runbook: Runbook;
  overlay?: PrimaryOverlay;
  /** Whether cluster.primary was replaced. */
  applied: boolean;
  /** One line for the operator, when the overlay matters. */
  note?: string;
}

/** The runbook as the overlay says it is now: cluster.primary replaced while the runbook still names the replaced server. */
export function applyPrimaryOverlay(runbook: Runbook, overlay: PrimaryOverlay | undefined): OverlaidRunbook {
  if (!overlay) return { runbook, applied: false };
  const named = runbook.cluster.primary;
  const by = `recovery ${overlay.workflowId} at ${overlay.promotedAt}`;
  if (sameServer(named, overlay)) return { runbook, overlay, applied: false };
  if (!sameServer(named, overlay.replaced)) {
    return {
      runbook,
      overlay,
      applied: false,
      note:
        `primary overlay ignored: ${by} re-pointed the primary from ${overlay.replaced.host}:${overlay.replaced.port} to ${overlay.host}:${overlay.port}, ` +
        `but the runbook now names ${named.host}:${named.port}, so the runbook wins`,
    };
  }
  return {
    runbook: {
      ...runbook,
      cluster: { ...runbook.cluster, primary: { ...named, host: overlay.host, port: overlay.port } },
    },
    overlay,
    applied: true,
    note:
      `primary re-pointed to ${overlay.host}:${overlay.port} (timeline ${overlay.timeline}) by ${by}; ` +
      `edit cluster.primary in runbook ${runbook.name} to make it permanent (and move restore.dataDir/restore.port: the new primary runs there)`,
  };
}

/** Reads the overlay of the runbook's cluster and applies it. */
export async function withPrimaryOverlay(runbook: Runbook, repo?: Repository): Promise<OverlaidRunbook> {
  const { clusterName } = await import('../runbook/schema');
  const { openRepository } = await import('../repository');
  const r = repo ?? (await openRepository(runbook.repository.url, runbook.repository));
  return applyPrimaryOverlay(runbook, await readPrimaryOverlay(r, clusterName(runbook)));
}

/** For activities that talk to the primary: the runbook by name, re-pointed by the overlay when it applies. */
export async function loadRunbookWithPrimary(name: string): Promise<OverlaidRunbook> {
  const { loadRunbook } = await import('../runbook/load');
  const runbook = await loadRunbook(name);
  try {
    return await withPrimaryOverlay(runbook);
  } catch (err) {
    // The repository may be what is down tonight: fencing the primary, a
    // backup or a checkpoint must not wait for it. The runbook's own primary
    // is used, and the note says why.
    const { errorMessage } = await import('../errors');
    return {
      runbook,
      applied: false,
      note: `primary overlay not read (${errorMessage(err).split('\n')[0]}): cluster.primary used as the runbook names it`,
    };
  }
}

/**
 * For the CLI commands whose workflows talk to the primary (backup, drill,
 * checkpoint): one line on stderr when the overlay re-points it. The
 * activities apply the overlay themselves; a CLI without the repository's
 * credentials says nothing rather than fail.
 */
export async function reportPrimaryOverlay(
  runbook: Runbook,
  write: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
): Promise<void> {
  try {
    const { note } = await withPrimaryOverlay(runbook);
    if (note) write(note);
  } catch {
    /* the worker reads it again and applies it */
  }
}

/**
 * A side-by-side recovery must not restore where the cluster's primary now
 * runs: after a side-by-side recovery the overlay's primary is the previous
 * restore site (restore.address:restore.port, restore.dataDir), and the
 * runbook still names it as the place to restore to. Refused in preflight,
 * before anything is touched, with the runbook edit that fixes it.
 */
export function restoreOverPrimary(o: OverlaidRunbook): LifeboatError | undefined {
  if (!o.applied || !o.overlay) return undefined;
  const r = o.runbook.restore;
  const p = o.runbook.cluster.primary;
  if (r.address !== p.host || r.port !== p.port) return undefined;
  const ov = o.overlay;
  return new LifeboatError(
    'RUNBOOK_INVALID',
    `runbook ${o.runbook.name} would restore side by side into the cluster's primary: restore is ${r.address}:${r.port} (${r.dataDir}), ` +
      `where recovery ${ov.workflowId} promoted the copy that is the primary since ${ov.promotedAt} (timeline ${ov.timeline})`,
    {
      hints: [
        `edit runbook ${o.runbook.name}: cluster.primary to { host: ${ov.host}, port: ${ov.port} }, and restore.dataDir and restore.port to a free directory and port for the next copy`,
        `or recover in place (mode: in-place), which moves the primary's directory aside after the fence`,
        'nothing was touched: no gate, no traffic, no data directory',
      ],
    },
  );
}
