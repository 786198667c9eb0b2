// How a started recovery names itself in the Temporal UI: the one-line
// summary in the list of runs and the table of its input on the run's page
// (the start's staticSummary and staticDetails).
import type { z } from 'zod';
import { describeTarget, type RecoveryInput } from '../recovery/contract';

/** A RecoveryInput after validation (xid as a string). */
export type ParsedInput = z.output<typeof RecoveryInput>;

/** The one-line staticSummary shown in the Temporal UI's list of runs (markdown), or the same line as plain text. */
export function recoverySummary(input: ParsedInput, markdown = true): string {
  const md = markdown ? mdText : (s: string) => s;
  const flags = [input.mode, input.dryRun ? 'dry run' : undefined].filter(Boolean).join(', ');
  const incident = input.incident ? (markdown ? `**${md(input.incident)}** ` : `${input.incident}: `) : '';
  const runbook = markdown ? `\`${input.runbook}\`` : input.runbook;
  return `${incident}recover ${runbook} to ${md(describeTarget(input.target))}${flags ? ` (${flags})` : ''}`;
}

/** The staticDetails of a run: its input as a small markdown table. */
export function recoveryDetails(input: ParsedInput, startedBy?: string): string {
  const rows: Array<[string, string | undefined]> = [
    ['runbook', input.runbook],
    ['target', describeTarget(input.target)],
    ['incident', input.incident],
    ['reason', input.reason],
    ['mode', input.mode ?? "the runbook's restore.mode"],
    ['dry run', input.dryRun ? 'yes: preflight, forensics and invariants only; no gate, no traffic' : 'no'],
    ['backup', input.backupId ?? 'chosen by preflight'],
    ['started by', startedBy],
  ];
  return [
    '| | |',
    '|---|---|',
    ...rows.filter(([, v]) => v !== undefined).map(([k, v]) => `| ${k} | ${mdText(v!)} |`),
  ].join('\n');
}

function mdText(s: string): string {
  return s.replace(/([\\`*_[\]<>|])/g, '\\$1').replace(/\s+/g, ' ');
}
