import type { ProviderName } from '../domain/providerName.js';
import {
  type KeepAlivePolicySettings,
  type KeepAliveState,
  keepAliveRefreshAt,
  pointOfNoReturn,
} from '../domain/refreshPolicy.js';
import { capabilitiesOf, PROVIDER_CAPABILITIES } from '../platforms/capabilities.js';
import type { ProviderCapabilities } from '../platforms/provider.js';
import type { RefreshSchedule, ScheduleInput } from '../store/accountRepository.js';

/** The policy's view of a stored account: which credential keeps it alive depends on the platform. */
export function keepAliveStateOf(input: ScheduleInput, capabilities: ProviderCapabilities): KeepAliveState {
  return {
    hasCredential: capabilities.refreshesAccessTokenItself ? input.hasAccessToken : input.hasRefreshToken,
    expiresAt: input.expiresAt,
    refreshTokenExpiresAt: input.refreshTokenExpiresAt,
    tokenIssuedAt: input.tokenIssuedAt,
    lastRefreshAt: input.lastRefreshAt,
  };
}

/**
 * The repository's schedule: the pure keep-alive policy, fed each platform's capability record and
 * a random draw for the jitter.
 */
export function createRefreshSchedule(
  settings: KeepAlivePolicySettings,
  options: {
    random?: () => number;
    capabilities?: Readonly<Record<ProviderName, ProviderCapabilities>>;
  } = {},
): RefreshSchedule {
  const random = options.random ?? Math.random;
  const table = options.capabilities ?? PROVIDER_CAPABILITIES;
  return (input, now) => {
    const capabilities = table[input.provider] ?? capabilitiesOf(input.provider);
    return keepAliveRefreshAt(keepAliveStateOf(input, capabilities), capabilities, settings, {
      now,
      random: random(),
    });
  };
}

/** The point of no return of a stored account, for the retry planner and for reports. */
export function deadlineOf(input: ScheduleInput): number | null {
  const capabilities = capabilitiesOf(input.provider);
  return pointOfNoReturn(keepAliveStateOf(input, capabilities), capabilities).at;
}
