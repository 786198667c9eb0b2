// The custom search attributes recoverToPointInTime keeps current, so that
// responders can find the runs that wait for them (`lifeboat pending`, or a
// filter in the Temporal UI's workflow list):
//   LifeboatRunbook   Keyword       the runbook recovered, set when the run starts
//   LifeboatAwaiting  KeywordList   the step ids waiting on a human (an approval, or a
//                                   failed step waiting for retry/skip/abort); empty when none
// Temporal refuses to upsert an attribute the namespace does not know, which
// would fail the workflow task and stall the run: the dev server registers
// them at start (src/dev/temporal-server.ts) and every worker makes sure they
// exist before it polls (ensureSearchAttributes, called from src/worker.ts).
//
// Workflow code imports the keys from here, so this file must stay
// sandbox-safe: @temporalio/common only, and types of anything else.
import { defineSearchAttributeKey, type SearchAttributeType } from '@temporalio/common';
import type { temporal } from '@temporalio/proto';
import { LifeboatError } from '../errors';

export const RUNBOOK_ATTRIBUTE = defineSearchAttributeKey('LifeboatRunbook', 'KEYWORD');
export const AWAITING_ATTRIBUTE = defineSearchAttributeKey('LifeboatAwaiting', 'KEYWORD_LIST');

export const LIFEBOAT_SEARCH_ATTRIBUTES: ReadonlyArray<{ name: string; type: SearchAttributeType }> = [
  RUNBOOK_ATTRIBUTE,
  AWAITING_ATTRIBUTE,
];

/** The patch id around the upserts: histories recorded before them replay without (workflow `patched()`). */
export const SEARCH_ATTRIBUTES_PATCH = 'lifeboat-search-attributes';

/** `temporal server start-dev` flags that register the attributes (the CLI spells the types in PascalCase). */
export function devServerSearchAttributeArgs(): string[] {
  const cli: Record<string, string> = { KEYWORD: 'Keyword', KEYWORD_LIST: 'KeywordList' };
  return LIFEBOAT_SEARCH_ATTRIBUTES.flatMap((a) => ['--search-attribute', `${a.name}=${cli[a.type] ?? a.type}`]);
}

// temporal.api.enums.v1.IndexedValueType, by number: the proto enum object is
// not something workflow code may import, and the SDK does not export its encoder.
const INDEXED_VALUE_TYPE: Partial<Record<SearchAttributeType, number>> = { KEYWORD: 2, KEYWORD_LIST: 7 };

type OperatorService = Pick<
  temporal.api.operatorservice.v1.OperatorService,
  'listSearchAttributes' | 'addSearchAttributes'
>;

/**
 * Adds the attributes the namespace lacks; a no-op when they are there.
 * Returns the names it added. A server that does not let this worker add
 * them (Temporal Cloud, a locked-down namespace) gets an error saying the
 * one command an administrator must run, before any run can stall on it.
 */
export async function ensureSearchAttributes(operator: OperatorService, namespace: string): Promise<string[]> {
  const existing = await operator.listSearchAttributes({ namespace });
  const known = { ...existing.customAttributes, ...existing.systemAttributes };
  const missing = LIFEBOAT_SEARCH_ATTRIBUTES.filter((a) => !(a.name in known));
  if (missing.length === 0) return [];
  const searchAttributes: Record<string, temporal.api.enums.v1.IndexedValueType> = {};
  for (const a of missing)
    searchAttributes[a.name] = INDEXED_VALUE_TYPE[a.type] as temporal.api.enums.v1.IndexedValueType;
  try {
    await operator.addSearchAttributes({ namespace, searchAttributes });
  } catch (err) {
    // Two workers starting at once both see the attribute missing; the
    // loser's "already exists" is the outcome it wanted.
    if (/already exists/i.test(String(err))) return [];
    const cli = missing
      .map((a) => `--name ${a.name} --type ${a.type === 'KEYWORD_LIST' ? 'KeywordList' : 'Keyword'}`)
      .join(' ');
    throw new LifeboatError(
      'SEARCH_ATTRIBUTES_MISSING',
      `namespace ${namespace} lacks the search attributes ${missing.map((a) => a.name).join(', ')} and this worker may not add them: ${String(err)}`,
      {
        hints: [
          `an administrator of the namespace adds them once: temporal operator search-attribute create --namespace ${namespace} ${cli}`,
          'recoverToPointInTime sets them to show which runs wait for a decision (lifeboat pending); without them its workflow tasks fail',
        ],
        cause: err,
      },
    );
  }
  return missing.map((a) => a.name);
}
