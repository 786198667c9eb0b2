// Lifeboat's activities: every side effect, grouped by the system it touches.
// One worker registers all of them; which ones run where is decided by the
// task queue a workflow schedules them on (`lifeboat` or `lifeboat-host-<host>`).
export * from './backup';
export * from './retention';
