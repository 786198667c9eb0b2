// Lifeboat's workflows (shared/DESIGN.md §4): deterministic orchestration only.
// This folder is bundled into Temporal's workflow sandbox: no pg, child
// processes, files, S3, Date.now or Math.random here (eslint holds that line);
// every side effect is an activity in ../activities.
export { baseBackup } from './base-backup';
export { expireBackups } from './expire-backups';
export { recoverToPointInTime } from './recover-to-point-in-time';
export { restoreDrill } from './restore-drill';
export { migrationCheckpoint } from './migration-checkpoint';
export { repairFromPointInTime } from './repair-from-point-in-time';
