// How restore-base-backup's result reads in a step summary (`lifeboat
// status`, the Temporal UI, the evidence): where an earlier directory went,
// and what that means for the operator. Shared by recoverToPointInTime and
// restoreDrill.
import type { RestoreResult } from '../../src/recovery/contract';

/** "; old directory moved to X ..." or "" when nothing was moved or removed. */
export function movedAsideNote(r: RestoreResult, what = 'old directory'): string {
  const parts: string[] = [];
  if (r.movedAside) {
    // On a mount point the contents went into a subdirectory of the data directory itself.
    const inside = r.movedAside.startsWith(`${r.dataDir}/.lifeboat-aside-`);
    parts.push(
      inside
        ? `; ${what} (a mount point, which cannot be renamed) moved into ${r.movedAside}, ` +
            'inside the data directory and on its volume: move it off or remove it once no longer needed ' +
            '(a base backup of this copy would include it)'
        : `; ${what} moved to ${r.movedAside}`,
    );
  }
  if (r.removedPartial)
    parts.push("; this run's interrupted extraction was removed (only bytes from the repository, extracted again)");
  return parts.join('');
}
