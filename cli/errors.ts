/** An error a person reads: what is wrong and what to do. Printed without a stack trace. */
export class CliError extends Error {
  constructor(message: string, readonly hint?: string, readonly exitCode = 1) {
    super(message);
    this.name = 'CliError';
  }
}
