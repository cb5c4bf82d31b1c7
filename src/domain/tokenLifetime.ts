/**
 * How long a token a platform just issued may be believed to live, whatever the platform said.
 *
 * A token answer is the one moment a rotated refresh token reaches us: refusing the whole answer
 * because its lifetime is odd (missing, 0, negative, a string, 10^12 seconds) drops a refresh token
 * the platform has already issued, and on a rotating platform that loses the account. So the
 * tokens are kept and only the lifetime is replaced: by a conservative guess when it is unusable
 * (an early refresh costs one call; a late one can cost the account), or by the platform's
 * documented maximum when it claims more (an access token believed to live for 31,000 years is
 * never refreshed again). Each replacement leaves a note for the ledger.
 */

/** What a platform documents about one kind of token's lifetime. */
export interface LifetimeLimits {
  /** The longest lifetime the platform documents; more is clamped to this. */
  maxSeconds: number;
  /** Believed when the answer's value is unusable: below the shortest lifetime the platform documents. */
  fallbackSeconds: number;
}

/** A lifetime that was replaced, for the ledger: which field, what came, what was used. Never a token. */
export interface LifetimeNote {
  field: string;
  /** What the answer carried, summarised (`missing`, `string "3600"`, `number 1000000000000`). */
  received: string;
  usedSeconds: number;
  why: 'missing' | 'unreadable' | 'number_as_string' | 'not_positive' | 'above_documented_maximum';
}

export interface SettledLifetime {
  seconds: number;
  note: LifetimeNote | null;
}

/**
 * Reads a reported lifetime (`expires_in`, `refresh_expires_in`, …) into whole seconds within the
 * platform's documented limits. A number given as a decimal string ("3600") is read, with a note;
 * anything else unusable gets the fallback.
 */
export function settleLifetime(field: string, reported: unknown, limits: LifetimeLimits): SettledLifetime {
  const fallback = (why: LifetimeNote['why']): SettledLifetime => ({
    seconds: limits.fallbackSeconds,
    note: { field, received: describeReceived(reported), usedSeconds: limits.fallbackSeconds, why },
  });
  if (reported === undefined || reported === null) return fallback('missing');
  let value: number;
  let readFromString = false;
  if (typeof reported === 'number') value = reported;
  else if (typeof reported === 'string' && /^\s*\d+(\.\d+)?\s*$/.test(reported)) {
    value = Number(reported);
    readFromString = true;
  } else return fallback('unreadable');
  if (!Number.isFinite(value)) return fallback('unreadable');
  const seconds = Math.floor(value);
  if (seconds <= 0) return fallback('not_positive');
  if (seconds > limits.maxSeconds) {
    return {
      seconds: limits.maxSeconds,
      note: {
        field,
        received: describeReceived(reported),
        usedSeconds: limits.maxSeconds,
        why: 'above_documented_maximum',
      },
    };
  }
  if (readFromString) {
    return {
      seconds,
      note: { field, received: describeReceived(reported), usedSeconds: seconds, why: 'number_as_string' },
    };
  }
  return { seconds, note: null };
}

/** A short, secret-free description of a value: its type and, for numbers and short strings, the value. */
function describeReceived(value: unknown): string {
  if (value === undefined || value === null) return 'missing';
  if (typeof value === 'number') return `number ${value}`;
  if (typeof value === 'string')
    return value.length <= 24 ? `string ${JSON.stringify(value)}` : 'a long string';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : typeof value;
}
