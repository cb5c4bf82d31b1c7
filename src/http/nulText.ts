import { Stream } from 'node:stream';

/**
 * Whether a parsed request value holds U+0000 anywhere (PostgreSQL refuses it in text). Without
 * recursion: 64 KiB of `[` nests deeper than the call stack goes. `keys` also checks object keys
 * (values the route stores whole, such as a publication's metadata).
 */
export function containsNul(root: unknown, options: { keys?: boolean } = {}): boolean {
  const pending: unknown[] = [root];
  while (pending.length > 0) {
    const value = pending.pop();
    if (typeof value === 'string') {
      if (value.includes('\u0000')) return true;
    } else if (typeof value === 'object' && value !== null && !(value instanceof Stream)) {
      if (options.keys && Object.keys(value).some((key) => key.includes('\u0000'))) return true;
      pending.push(...Object.values(value));
    }
  }
  return false;
}
