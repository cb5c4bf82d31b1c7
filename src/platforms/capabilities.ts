/**
 * Every platform's capability record by name, whether or not its credentials are configured: the
 * refresh schedule of a stored account does not depend on this process being able to refresh it.
 * Derived from the registry (src/platforms/registry.ts).
 */
export { capabilitiesOf, PROVIDER_CAPABILITIES } from './registry.js';
