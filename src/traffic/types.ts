// What every kind of traffic switch offers (pgbouncer.ts, command.ts): point
// the application's connections at the promoted instance, and say what was
// done, step by step, for the evidence.
import type { TrafficResult } from '../recovery/contract';
import type { Runbook } from '../runbook/schema';

export type TrafficConfig = NonNullable<Runbook['traffic']>;

/** Where clients go: the promoted instance as clients reach it. */
export interface RestoredTarget {
  host: string;
  port: number;
  database: string;
}

/** Heartbeat details of resume-traffic. */
export interface TrafficProgress {
  phase: 'checking' | 'pausing' | 'switching' | 'resuming' | 'verifying' | 'running-hook';
  /** While pausing: client connections pgbouncer is still waiting for. */
  waitingForClients?: number;
}

export interface TrafficContext {
  progress(p: TrafficProgress): void;
  signal?: AbortSignal;
}

export interface TrafficSwitcher {
  readonly kind: TrafficResult['kind'];
  switchTo(target: RestoredTarget, ctx: TrafficContext): Promise<TrafficResult>;
  /**
   * Preflight: will switchTo be able to talk to what it switches (pgbouncer's
   * console answers SHOW VERSION, the hook's program is executable)?
   * Changes nothing. Returns what answered; throws ENDPOINT_UNREACHABLE.
   */
  check(): Promise<string>;
}

export function describeTarget(t: RestoredTarget): string {
  return `${t.host}:${t.port}/${t.database}`;
}
