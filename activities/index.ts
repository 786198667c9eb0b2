// Lifeboat's activities: every side effect, grouped by the system it touches.
// One worker registers all of them; which ones run where is decided by the
// task queue a workflow schedules them on (`lifeboat` or `lifeboat-host-<host>`).
import type { RecoveryActivities } from '../src/recovery/activity-types';
import * as caches from './caches';
import * as forensics from './forensics';
import * as gates from './gates';
import * as invariants from './invariants';
import * as notify from './notify';
import * as oneRecovery from './one-recovery';
import * as outbox from './outbox';
import * as primary from './primary';
import * as recovery from './recovery';
import * as restore from './restore';
import * as standby from './standby';
import * as traffic from './traffic';

export * from './backup';
export * from './retention';
export * from './recovery';
export * from './one-recovery';
export * from './restore';
export * from './gates';
export * from './forensics';
export * from './invariants';
export * from './outbox';
export * from './caches';
export * from './traffic';
export * from './notify';
export * from './drill';
export * from './checkpoint';
export * from './primary';
export * from './standby';
export * from './repair';

// What recoverToPointInTime proxies must be what the worker registers: a
// mismatch fails to compile here rather than at 3 a.m. in a workflow task.
const recoveryActivities: RecoveryActivities = {
  ...recovery,
  ...oneRecovery,
  ...restore,
  ...gates,
  ...forensics,
  ...invariants,
  ...outbox,
  ...caches,
  ...traffic,
  ...primary,
  ...standby,
  ...notify,
};
void recoveryActivities;
