/** An error a person reads: what is wrong and what to do. Printed without a stack trace. */
export class CliError extends Error {
  constructor(message: string, readonly hint?: string, readonly exitCode = 1) {
    super(message);
    this.name = 'CliError';
  }
}

/**
 * An error's message with the messages of its causes. Temporal's client errors say what
 * failed ("Failed to start Workflow") and keep why in `cause` (the server's gRPC error).
 */
export function causeText(err: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = err, depth = 0; e && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    parts.push(e instanceof Error ? e.message : String(e));
  }
  return parts.join(': ');
}
