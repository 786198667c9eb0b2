// The progress bars of `lifeboat status`: how far a restore and a replay are,
// from the heartbeats of restoreBaseBackup and replayWal (and, for replay,
// the run's target and backup when the heartbeat lacks an end point).
import type { RecoveryStatus, ReplayProgress, RestoreProgress } from '../recovery/contract';
import { formatBytes } from './format';

/** `[##########----------]  50%`; dots and `?%` when the total is not known. */
export function progressBar(fraction: number | undefined, width = 20): string {
  if (fraction === undefined || !Number.isFinite(fraction)) return `[${'.'.repeat(width)}]   ?%`;
  const f = Math.min(1, Math.max(0, fraction));
  // The epsilon keeps 0.29 * 100 from showing as 28%; floor keeps 99.9% from showing as done.
  const filled = Math.floor(f * width + 1e-9);
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${String(Math.floor(f * 100 + 1e-9)).padStart(3)}%`;
}

export function restoreFraction(p: RestoreProgress): number | undefined {
  if (p.phase === 'done') return 1;
  return p.totalBytes > 0 ? p.bytes / p.totalBytes : undefined;
}

export function restoreLine(p: RestoreProgress): string {
  const amount = p.totalBytes > 0 ? `${formatBytes(p.bytes)} of ${formatBytes(p.totalBytes)}` : formatBytes(p.bytes);
  return `${p.phase.padEnd(11)}  ${progressBar(restoreFraction(p))}  ${amount}`;
}

/**
 * How far replay is: by LSN between the backup's start and the target LSN
 * when both are known, else by the last replayed commit time between the
 * backup's start time and the target time.
 */
export function replayFraction(
  p: ReplayProgress,
  status?: Pick<RecoveryStatus, 'target' | 'backup'>,
): number | undefined {
  if (p.phase === 'paused') return 1;
  const from = lsnValue(p.startLsn ?? status?.backup?.startLsn);
  const to = lsnValue(p.targetLsn ?? (status && 'lsn' in status.target ? status.target.lsn : undefined));
  const at = lsnValue(p.lsn);
  if (from !== undefined && to !== undefined && at !== undefined && to > from)
    return Number(at - from) / Number(to - from);
  const start = status?.backup ? Date.parse(status.backup.startTime) : NaN;
  const target = Date.parse(p.targetTime ?? (status && 'time' in status.target ? status.target.time : ''));
  const time = Date.parse(p.time ?? '');
  if (![start, target, time].some(Number.isNaN) && target > start) return (time - start) / (target - start);
  return undefined;
}

export function replayLine(p: ReplayProgress, status?: Pick<RecoveryStatus, 'target' | 'backup'>): string {
  const parts: string[] = [];
  if (p.lsn) parts.push(`at ${p.lsn}${p.targetLsn ? ` of ${p.targetLsn}` : ''}`);
  if (p.time) parts.push(`last commit ${p.time}${p.targetTime ? ` of ${p.targetTime}` : ''}`);
  return `${p.phase.padEnd(11)}  ${progressBar(replayFraction(p, status))}${parts.length > 0 ? `  ${parts.join(', ')}` : ''}`;
}

/** "16/B374D848" as a number of bytes into the WAL. */
export function lsnValue(lsn: string | undefined): bigint | undefined {
  const m = lsn ? /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(lsn) : null;
  return m ? (BigInt(`0x${m[1]}`) << 32n) + BigInt(`0x${m[2]}`) : undefined;
}
