// How the CLI, the chat-ops server and `status` report a failed Lifeboat
// workflow or a refused update: a failed run arrives as WorkflowFailedError > (ActivityFailure >) ApplicationFailure;
// the innermost ApplicationFailure has the operator's message with its HINT
// lines, and its type (a code of src/errors.ts) decides the exit status.
import { LifeboatError, errorMessage, isErrorCode } from '../errors';

export interface WorkflowFailure {
  type?: string;
  message: string;
}

export function innermostFailure(err: unknown): WorkflowFailure {
  let inner: unknown = err;
  let app: { type?: string | null; message: string } | undefined;
  let deepest = errorMessage(err);
  for (let i = 0; i < 10 && inner instanceof Error; i++) {
    if (inner.name === 'ApplicationFailure') app = inner as { type?: string | null; message: string };
    deepest = inner.message;
    inner = inner.cause;
  }
  return app ? { ...(app.type ? { type: app.type } : {}), message: app.message } : { message: deepest };
}

/** The failure as an error the CLI prints: "<workflow> <id> failed: <message with hints>". */
export function workflowError(err: unknown, workflowType: string, workflowId: string): Error {
  const f = innermostFailure(err);
  const message = `${workflowType} ${workflowId} failed: ${f.message}`;
  // A code that means bad usage (INPUT_INVALID ...) would make the CLI exit 2:
  // the operation failed in the workflow, so it is always exit 1 here.
  return isErrorCode(f.type) && f.type !== 'INPUT_INVALID'
    ? new LifeboatError(f.type, message, { cause: err })
    : new Error(message, { cause: err });
}

/** The refusal or failure as one line for an operator: "<CODE>: <message>", or the deepest message when no ApplicationFailure is inside. */
export function failureMessage(err: unknown): string {
  const f = innermostFailure(err);
  return isErrorCode(f.type) && !f.message.startsWith(`${f.type}: `) ? `${f.type}: ${f.message}` : f.message;
}
