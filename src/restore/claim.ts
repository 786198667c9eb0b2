// The claim of a restore directory: `<dataDir>.lifeboat-claim`, beside the
// directory, saying which workflow (and run, host, process) holds it now.
//
// The marker inside the directory (marker.ts) says whose copy it is; it can
// only be written once the directory is known to be empty or ours, and that
// check and the write are two acts. Two restores started at the same instant
// both saw an empty directory and both extracted into it (issue 10). The
// claim closes that gap: it is taken with one exclusive create before
// anything in the directory is read or written, so of any number of racers
// exactly one holds it and every other one is refused with the holder's name.
//
// Beside the directory, not in it: a foreign directory must not be written
// into even to be refused, and the claim must stay put while the directory's
// contents are moved aside or removed.
//
// Life of a claim:
//   - taken by restore-base-backup (with `pid`: an activity is working in the
//     directory right now);
//   - a recovery releases it when its restore activity ends: from then on the
//     marker speaks for the copy, and another recovery is refused by it;
//   - a drill hands it over (no `pid`) and keeps it, with drill.port, until
//     teardown releases it: between its restore and its replay a drill copy
//     has no postmaster, and nothing else must move it aside or take the port.
// A claim is taken over, atomically, by the same workflow (a retry, or a
// takeover after its worker died), or when its holder is provably gone: the
// process named by host/pid is dead, or Temporal says the holding run is
// no longer running.
import { randomBytes } from 'node:crypto';
import { link, lstat, mkdir, readdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { LifeboatError, errorMessage } from '../errors';
import type { RestoreInstanceKind } from '../recovery/contract';
import { processAlive, processStartTime } from './process-alive';

export const CLAIM_SUFFIX = '.lifeboat-claim';

export interface Claim {
  workflowId: string;
  runId: string;
  instance: RestoreInstanceKind;
  /** When it was taken. */
  since: string;
  /** Where and by which process; pid is absent once handed over to the workflow. */
  host: string;
  pid?: number;
  /** The process's start time (/proc/<pid>/stat), so a reused pid is not taken for the holder. */
  pidStart?: string;
  /** A drill's port, held with its directory. */
  port?: number;
  /** Unique per taking: tells this claim from a later one at the same path. */
  nonce: string;
}

export function claimPath(dataDir: string): string {
  return `${dataDir}${CLAIM_SUFFIX}`;
}

export async function readClaim(dataDir: string): Promise<Claim | undefined> {
  return parseClaim(claimPath(dataDir));
}

async function parseClaim(file: string): Promise<Claim | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const c = JSON.parse(text) as Partial<Claim>;
    if (typeof c.workflowId === 'string' && typeof c.runId === 'string' && typeof c.nonce === 'string')
      return c as Claim;
  } catch {
    // Not possible for a claim written here (link publishes it whole): somebody else's file.
  }
  return {
    workflowId: '(unreadable claim)',
    runId: '?',
    instance: 'restore',
    since: '?',
    host: '?',
    nonce: `unreadable:${text.length}`,
  };
}

/** "workflow W (run R), on host H pid P, since T". */
export function describeClaim(c: Claim): string {
  const where = c.pid !== undefined ? `, restore activity on host ${c.host} pid ${c.pid}` : '';
  return `${c.instance === 'drill' ? 'restore drill ' : ''}workflow ${c.workflowId} (run ${c.runId})${where}${c.port !== undefined ? `, port ${c.port}` : ''}, since ${c.since}`;
}

export interface ClaimRequest {
  dataDir: string;
  workflowId: string;
  runId: string;
  instance: RestoreInstanceKind;
  port?: number;
  /** The runbook field an operator would change: "restore.dataDir" or "drill.dataDir". */
  field: string;
  /**
   * Whether the run holding a handed-over claim is still running (Temporal's
   * describe); undefined when it cannot be told (no client): then it is held.
   */
  holderRunning?: (c: Claim) => Promise<boolean | undefined>;
}

export interface HeldClaim {
  claim: Claim;
  /** The claim this one took over, when it did (a retry, or a dead holder's). */
  tookOver?: Claim;
  /** Removes the claim if it is still this one. */
  release(): Promise<void>;
  /** Keeps the claim for the workflow beyond this activity (no pid). */
  handOver(): Promise<void>;
}

/** How often a racer re-reads a claim that changed under it before giving up, and how long it waits between. */
const ATTEMPTS = 100;
const PAUSE_MS = 20;
/**
 * A takeover holds `<claim>.taken-<nonce>` for the few milliseconds between a
 * link and two unlinks. One older than this was left by a taker that died
 * there; it would block every later takeover of that claim.
 */
const TAKEN_STALE_MS = 30_000;

/**
 * Takes the claim of dataDir, or throws DATA_DIR_NOT_EMPTY naming its holder.
 * Never reads or writes anything inside dataDir.
 */
export async function takeClaim(req: ClaimRequest): Promise<HeldClaim> {
  const file = claimPath(req.dataDir);
  const mine: Claim = {
    workflowId: req.workflowId,
    runId: req.runId,
    instance: req.instance,
    since: new Date().toISOString(),
    host: os.hostname(),
    pid: process.pid,
    ...(await processStartTime(process.pid).then((s) => (s ? { pidStart: s } : {}))),
    ...(req.port !== undefined ? { port: req.port } : {}),
    nonce: randomBytes(8).toString('hex'),
  };
  // Its parent may not exist yet on a fresh host (the restore made it later, before the claim).
  await mkdir(path.dirname(file), { recursive: true }).catch(() => undefined);
  await sweepDeadTemps(file);
  let tookOver: Claim | undefined;
  let holder: Claim | undefined;
  for (let i = 0; i < ATTEMPTS; i++) {
    if (await createExclusive(file, mine, req)) {
      return held(file, mine, tookOver);
    }
    holder = await parseClaim(file);
    if (!holder) continue; // released between our create and our read: try again
    const why = await staleReason(holder, req);
    if (!why) throw heldBy(req, holder);
    if (await removeIfStill(file, holder)) tookOver = holder;
    // Won the takeover, or another racer is taking it over: either way, race for the create again.
    else await sleep(PAUSE_MS);
  }
  throw heldBy(req, holder, 'the claim kept changing while it was being taken');
}

/**
 * Read only, for preflight: the claim takeClaim would refuse the request
 * with, thrown as the same DATA_DIR_NOT_EMPTY; nothing when the claim is
 * absent or would be taken over (its holder is this workflow, or gone).
 */
export async function requireClaimable(req: ClaimRequest, then: string): Promise<void> {
  const holder = await readClaim(req.dataDir);
  if (!holder || (await staleReason(holder, req))) return;
  const err = heldBy(req, holder);
  throw new LifeboatError(err.code, err.what, {
    hints: [...err.hints, `once it is released, ${then}`],
    details: err.details,
  });
}

/** Removes `<claim>.<pid>.<hex>.tmp` files of writers that died between writing and linking them. */
async function sweepDeadTemps(file: string): Promise<void> {
  const dir = path.dirname(file);
  const prefix = `${path.basename(file)}.`;
  for (const e of await readdir(dir).catch(() => [] as string[])) {
    const m = /^(\d+)\.[0-9a-f]{12}\.tmp$/.exec(e.startsWith(prefix) ? e.slice(prefix.length) : '');
    if (m && !(await processAlive(Number(m[1])))) await unlink(path.join(dir, e)).catch(() => undefined);
  }
}

/**
 * The exclusive create: the claim is written whole under a name of this
 * writer's own, then link(2)ed to the claim's name. link fails with EEXIST
 * when the name exists, exactly like open(O_CREAT|O_EXCL) ('wx'), and in
 * addition nobody can ever read a half-written claim.
 */
async function createExclusive(file: string, claim: Claim, req: ClaimRequest): Promise<boolean> {
  const tmp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, `${JSON.stringify(claim, null, 2)}\n`, { flag: 'wx', mode: 0o644 });
    await link(tmp, file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new LifeboatError(
      (err as NodeJS.ErrnoException).code === 'ENOSPC' ? 'DISK_FULL' : 'DATA_DIR_NOT_EMPTY',
      `could not take the claim ${file} of ${req.field} ${req.dataDir}: ${errorMessage(err)}`,
      {
        hints: [
          'the claim is written beside the data directory: the worker must be able to create files in its parent directory',
          'nothing in the data directory was read or changed',
        ],
        cause: err,
        details: { dataDir: req.dataDir },
      },
    );
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
}

/** Why holder may be taken over, or undefined while it holds. */
async function staleReason(holder: Claim, req: ClaimRequest): Promise<string | undefined> {
  if (holder.workflowId === req.workflowId) return 'same workflow';
  if (holder.pid !== undefined) {
    if (holder.host === os.hostname())
      return (await processAlive(holder.pid, holder.pidStart)) ? undefined : `process ${holder.pid} is gone`;
    // A process on another host (a directory on shared storage) cannot be
    // seen from here; its run can: once Temporal says the run is over, its
    // activity is cancelled at its next heartbeat.
    const running = await req.holderRunning?.(holder).catch(() => undefined);
    return running === false ? `run ${holder.runId} is no longer running` : undefined;
  }
  if (holder.nonce.startsWith('unreadable:')) return undefined;
  const running = await req.holderRunning?.(holder).catch(() => undefined);
  return running === false ? `run ${holder.runId} is no longer running` : undefined;
}

/**
 * Removes the claim file when it is still `expected`, atomically against
 * other racers: the claim is first linked to a name unique to `expected`
 * (link fails with EEXIST for everyone but the first), then checked, then
 * unlinked. Only the winner of that link unlinks the claim, so a claim taken
 * meanwhile by someone else is never removed.
 */
async function removeIfStill(file: string, expected: Claim): Promise<boolean> {
  const aside = `${file}.taken-${expected.nonce.replace(/[^0-9a-z]/gi, '_')}`;
  try {
    await link(file, aside);
  } catch (err) {
    // Another racer is taking it over (or it is gone); or a dead taker's leftover blocks it.
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      const st = await lstat(aside).catch(() => undefined);
      if (st && Date.now() - st.ctimeMs > TAKEN_STALE_MS) await unlink(aside).catch(() => undefined);
    }
    return false;
  }
  try {
    const linked = await parseClaim(aside);
    if (linked?.nonce !== expected.nonce) return false;
    await unlink(file).catch(() => undefined);
    return true;
  } finally {
    await unlink(aside).catch(() => undefined);
  }
}

function held(file: string, claim: Claim, tookOver: Claim | undefined): HeldClaim {
  return {
    claim,
    ...(tookOver ? { tookOver } : {}),
    async release() {
      const now = await parseClaim(file);
      if (now?.nonce === claim.nonce) await removeIfStill(file, now);
    },
    async handOver() {
      // Replaced atomically (write, then rename over it) by its own holder: nobody
      // else ever renames onto the claim's name, they only create or remove it.
      const now = await parseClaim(file);
      if (now?.nonce !== claim.nonce) return;
      const { pid: _pid, pidStart: _start, ...rest } = claim;
      const tmp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
      try {
        await writeFile(tmp, `${JSON.stringify(rest, null, 2)}\n`, { flag: 'wx', mode: 0o644 });
        await rename(tmp, file);
      } finally {
        await unlink(tmp).catch(() => undefined);
      }
    },
  };
}

/** Releases the claim of dataDir held by workflowId (a drill's teardown); a claim of anyone else stays. */
export async function releaseClaimOf(dataDir: string, workflowId: string): Promise<boolean> {
  const file = claimPath(dataDir);
  const c = await parseClaim(file);
  if (!c || c.workflowId !== workflowId) return false;
  return removeIfStill(file, c);
}

function heldBy(req: ClaimRequest, holder: Claim | undefined, extra?: string): LifeboatError {
  const file = claimPath(req.dataDir);
  const who = holder ? describeClaim(holder) : 'another restore';
  return new LifeboatError(
    'DATA_DIR_NOT_EMPTY',
    `${req.field} ${req.dataDir} is claimed by ${who}, not by workflow ${req.workflowId}${extra ? ` (${extra})` : ''}`,
    {
      hints: [
        'two restores never share a directory: nothing in it was read or changed by this one',
        holder?.pid !== undefined
          ? `the claim is released when that restore activity ends; if its worker is gone for good, a claim of a dead process on ${holder.host} is taken over by the next attempt on that host`
          : `the claim is released when that run ends (a drill at its teardown); if that run is over and the claim stayed, remove ${file} by hand`,
        `or set ${req.field} in the runbook to a directory of its own for this workflow`,
      ],
      details: {
        dataDir: req.dataDir,
        holder: holder ? { workflowId: holder.workflowId, runId: holder.runId, since: holder.since } : undefined,
      },
    },
  );
}
