// One line of plain words beside the numbers a restore or replay heartbeats:
// the Temporal UI shows heartbeat details under Pending Activities as raw
// JSON, and a responder reads "62 %" and "last commit 14:31:02, target
// 14:31:59" there faster than four LSNs.
import { formatBytes } from '../units';
import { parseLsn } from '../wal/names';
import type { ReplayProgress, RestoreProgress } from './contract';

const PHASE_WORDS: Record<RestoreProgress['phase'], string> = {
  preparing: 'preparing the data directory',
  downloading: 'downloading the base backup',
  verifying: 'verifying the restored files',
  done: 'restored',
};

export function restoreText(p: RestoreProgress): string {
  const pct = p.totalBytes > 0 ? ` (${Math.min(100, Math.floor((p.bytes / p.totalBytes) * 100))} %)` : '';
  const amount =
    p.totalBytes > 0 ? `${formatBytes(p.bytes)} of ${formatBytes(p.totalBytes)}${pct}` : formatBytes(p.bytes);
  return p.phase === 'preparing' ? PHASE_WORDS.preparing : `${PHASE_WORDS[p.phase]}: ${amount}`;
}

export function replayText(p: ReplayProgress): string {
  if (p.phase === 'starting') return 'starting PostgreSQL on the restored copy';
  const parts = [p.phase === 'paused' ? `paused at ${p.lsn ?? '?'}` : `replaying at ${p.lsn ?? '?'}`];
  const pct = percent(p.startLsn, p.lsn, p.targetLsn);
  if (p.targetLsn && p.phase !== 'paused') parts[0] += ` of ${p.targetLsn}${pct !== undefined ? ` (${pct} %)` : ''}`;
  if (p.time) parts.push(`last commit ${p.time}${p.targetTime ? `, target ${p.targetTime}` : ''}`);
  else if (p.targetTime) parts.push(`no commit replayed yet, target ${p.targetTime}`);
  return parts.join('; ');
}

function percent(start?: string, at?: string, end?: string): number | undefined {
  try {
    if (!start || !at || !end) return undefined;
    const [s, a, e] = [parseLsn(start), parseLsn(at), parseLsn(end)];
    if (e <= s) return undefined;
    return Math.max(0, Math.min(100, Number(((a - s) * 100n) / (e - s))));
  } catch {
    return undefined;
  }
}
