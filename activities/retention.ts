// Activities of the expireBackups workflow (shared/DESIGN.md §4): plan what
// retention allows (src/retention/expiry.ts), then delete it
// (src/retention/expiry-apply.ts). Both run on the `lifeboat` queue: they
// need only the repository. Applying heartbeats its progress and stops
// between batches when the workflow is cancelled: what was deleted stays
// deleted, the rest stays.
import { planRunbookExpiry, type ExpiryPlan } from '../src/retention/expiry';
import { applyRunbookExpiry, type ExpiryApplied } from '../src/retention/expiry-apply';
import { cancellableActivity, heartbeat, lifeboatActivity } from './failure';

export type { ExpiryPlan, RepositoryExpiryPlan } from '../src/retention/expiry';
export type { ExpiryApplied, ExpiryProgress, RepositoryExpiryApplied } from '../src/retention/expiry-apply';

/** What retention would delete. Run twice: it only reads. */
export async function planExpiry(input: { runbook: string; keep?: number; repository?: string }): Promise<ExpiryPlan> {
  return lifeboatActivity(() => planRunbookExpiry(input));
}

/**
 * Deletes what the plan and the repository as it is now both allow (in each
 * repository the plan names). Run twice: the second run finds the deleted
 * objects gone and deletes nothing more.
 */
export async function applyExpiry(input: { runbook: string; plan: ExpiryPlan }): Promise<ExpiryApplied> {
  return cancellableActivity((signal) => applyRunbookExpiry(input, { onProgress: heartbeat, signal }));
}
