/**
 * What a browser does with an authorize URL against the simulator: follow it to the redirect and
 * read what came back. For tests and the sandbox's scripted connects; no platform logic here.
 */
export interface AuthorizationRedirect {
  location: URL;
  code: string | null;
  state: string | null;
  error: string | null;
  errorDescription: string | null;
}

export async function followAuthorizeRedirect(
  authorizeUrl: URL,
  fetchImpl: typeof fetch = fetch,
): Promise<AuthorizationRedirect> {
  const response = await fetchImpl(authorizeUrl, { redirect: 'manual' });
  await response.body?.cancel();
  const header = response.headers.get('location');
  if (response.status !== 302 || header === null) {
    throw new Error(`authorize answered ${response.status} without a redirect`);
  }
  const location = new URL(header);
  return {
    location,
    code: location.searchParams.get('code'),
    state: location.searchParams.get('state'),
    error: location.searchParams.get('error'),
    errorDescription: location.searchParams.get('error_description'),
  };
}
