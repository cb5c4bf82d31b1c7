export type { AnswerRewrite, FaultAction, FaultPlan, PlatformAnswer, RouteKind } from './faults.js';
export { FaultInjector, seededRandom } from './faults.js';
export { runSandbox, type SandboxOptions } from './main.js';
export type { SimulatorSettings } from './platformRoutes.js';
export {
  type ProviderSimulator,
  type ProviderSimulatorOptions,
  startProviderSimulator,
} from './simulator.js';
export type {
  ClientCredentials,
  Consent,
  RefreshLogEntry,
  SeedAccountInput,
  SeededTokens,
  SimulatorLifetimes,
} from './state.js';
export { DEFAULT_LIFETIMES } from './state.js';
