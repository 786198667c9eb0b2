// Escaping for the HTML report: every string that comes from an evidence
// record (a comment, an approver's name, an incident reference) is text, never
// markup; the report also forbids scripts outright (its CSP), so a record
// that slips a tag past this still cannot run anything.

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(value: unknown): string {
  const s = value === undefined || value === null ? '' : String(value);
  return s.replace(/[&<>"']/g, (c) => ENTITIES[c] ?? c);
}
