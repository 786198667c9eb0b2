// Workflow inputs are validated with zod at the top of each workflow: a bad
// input fails the run at once with a message naming the field, instead of
// failing somewhere in the middle with a confusing error.
import { ApplicationFailure } from '@temporalio/workflow';
import type { z } from 'zod';

export function parseWorkflowInput<T extends z.ZodType>(schema: T, input: unknown, workflow: string): z.output<T> {
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;
  const lines = parsed.error.issues.map((i) => {
    const at = i.path.length ? i.path.join('.') : '(input)';
    // A misspelt field is the commonest mistake in a hand-typed UI input: name it.
    if (i.code === 'unrecognized_keys')
      return `${i.keys.join(', ')}: unknown field${i.keys.length > 1 ? 's' : ''} in ${at}`;
    return `${at}: ${i.message}`;
  });
  throw ApplicationFailure.create({
    type: 'INPUT_INVALID',
    nonRetryable: true,
    message:
      `${workflow} input is not valid:\n  ${lines.join('\n  ')}\n` +
      'HINT: the input is one JSON object, e.g. {"runbook": "orders"}',
  });
}
