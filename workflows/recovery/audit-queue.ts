// The run's audit trail on its way to the repository (appendAudit, one line
// at a time, in order): decisions, refused messages and step notes are
// queued as they happen, in handlers that cannot await, and written by one
// loop for as long as the run lives.
import { condition, log } from '@temporalio/workflow';
import type { AuditLine } from '../../src/recovery/contract';

export class AuditQueue {
  private readonly lines: AuditLine[] = [];
  private seq = 0;
  private closed = false;

  push(line: AuditLine): void {
    this.lines.push(line);
  }

  /** Writes each line with the next sequence number; returns once closed and empty. */
  async drain(append: (seq: number, line: AuditLine) => Promise<void>): Promise<void> {
    for (;;) {
      await condition(() => this.lines.length > 0 || this.closed);
      const line = this.lines.shift();
      if (!line) return;
      this.seq += 1;
      try {
        await append(this.seq, line);
      } catch (err) {
        // Retried at length by the activity's policy; a store down for longer
        // must not stop a recovery. The decision is still in status and history.
        log.error('audit line not written', { seq: this.seq, error: String(err) });
      }
    }
  }

  close(): void {
    this.closed = true;
  }
}
