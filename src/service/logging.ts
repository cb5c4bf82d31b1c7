import { pino } from 'pino';
import type { Logger } from '../domain/logger.js';

/**
 * pino, with redaction as a second line of defence: the code never hands a token to the logger,
 * and if a field with a token's name ever slips in, it is censored.
 */
export const REDACTED_PATHS = [
  'accessToken',
  'refreshToken',
  'access_token',
  'refresh_token',
  'token',
  'clientSecret',
  'client_secret',
  'code_verifier',
  '*.accessToken',
  '*.refreshToken',
  '*.access_token',
  '*.refresh_token',
  '*.token',
  '*.clientSecret',
  '*.client_secret',
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
];

export function createLogger(options: { level?: string; destination?: number } = {}): Logger & pino.Logger {
  return pino(
    { level: options.level ?? 'info', redact: { paths: REDACTED_PATHS, censor: '[redacted]' } },
    pino.destination({ fd: options.destination ?? 1, sync: true }),
  );
}
