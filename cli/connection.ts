/** Where every command finds Temporal; the same CLI drives the embedded server or a real cluster. */
export function temporalAddress(env: NodeJS.ProcessEnv = process.env): string {
  return env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233';
}

export function temporalNamespace(env: NodeJS.ProcessEnv = process.env): string {
  return env.TEMPORAL_NAMESPACE ?? 'default';
}
