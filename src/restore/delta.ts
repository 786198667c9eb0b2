// engine.delta: true (pgbackrest restore --delta) and the data directory:
// which directory a delta restore may write over, and the refusal of the
// rest. The same judgement as data-dir.ts (judgeDataDir), for the engine
// branch of the restore (engine-restore.ts) and the preflight (site-check.ts).
import { LifeboatError } from '../errors';
import {
  field,
  judgeDataDir,
  keptEntries,
  notEmpty,
  prepareDataDir,
  promotedOurs,
  reuseOrStop,
  type PrepareInput,
  type Prepared,
} from './data-dir';
import { postmasterRunning } from './postmaster';

/**
 * The directory an engine's delta restore (engine.delta: true, pgbackrest
 * restore --delta) may write over: delta overwrites files in place and
 * removes those the backup lacks, so nothing in the directory survives as it
 * was. Lifeboat promises to keep what it did not restore itself, so delta is
 * used only over this recovery's (or drill's) own earlier, unpromoted copy,
 * with no kept entry inside it (a `.lifeboat-aside-*` subdirectory holding
 * the primary's old data, a lost+found: delta would remove them). Anything
 * else that is not empty is refused (deltaRefused), with nothing stopped,
 * moved or written: an empty or absent directory is a plain restore.
 */
export type DeltaPrepared =
  | Prepared
  /** dataDir holds this run's own earlier copy, its postmaster stopped: pgBackRest writes only what differs. */
  | { kind: 'delta'; movedAside?: string; stoppedPostmaster: boolean };

export async function prepareForDelta(input: PrepareInput): Promise<DeltaPrepared> {
  const { dataDir } = input.pg;
  const found = await judgeDataDir(input);
  switch (found.kind) {
    case 'empty':
      return prepareDataDir(input);
    case 'foreign':
      throw await notEmpty(input, found.entries, found.marker);
    case 'earlier-drill':
      // Provably an earlier drill's: moved aside whole as always, then a plain restore.
      return prepareDataDir(input);
    case 'in-place':
      throw deltaRefused(input, "the primary's directory");
    case 'ours': {
      const marker = found.marker;
      if (marker.state === 'promoted') throw promotedOurs(input, marker, 'retry the step');
      const kept = await keptEntries(dataDir);
      if (kept.length > 0) throw deltaRefused(input, `this recovery's copy beside kept entries (${kept.join(', ')})`);
      const earlier = await reuseOrStop(
        input,
        marker,
        await postmasterRunning(input.pg),
        "delta restore: this recovery's earlier copy must be down before it is rewritten",
      );
      if (earlier.kind === 'reuse') return earlier;
      return {
        kind: 'delta',
        ...(marker.movedAside ? { movedAside: marker.movedAside } : {}),
        stoppedPostmaster: earlier.stoppedPostmaster,
      };
    }
  }
}

/** engine.delta: true over a directory whose data Lifeboat promised to keep: refused, nothing touched. */
export function deltaRefused(input: PrepareInput, what: string, then = 'retry the step'): LifeboatError {
  return new LifeboatError(
    'DATA_DIR_NOT_EMPTY',
    `${field(input)} ${input.pg.dataDir} holds ${what}; engine.delta: true in runbook ${input.runbookName} would overwrite it in place (pgbackrest restore --delta), and Lifeboat keeps what it did not restore itself`,
    {
      hints: [
        'nothing was stopped, moved or written',
        `set engine.delta: false (or leave it out) in runbook ${input.runbookName}: the directory is then moved aside whole and pgBackRest restores into an empty one, then ${then}`,
        'delta is used only over this recovery\'s own earlier, unpromoted copy (a restore again after a retarget), README "Using pgBackRest as the backup engine"',
      ],
      details: { dataDir: input.pg.dataDir },
    },
  );
}
