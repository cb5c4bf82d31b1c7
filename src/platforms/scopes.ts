/** Platforms report granted scopes as one string joined by their own separator (TikTok ",", Google " "). */
export function splitScopes(scope: string, separator: ',' | ' '): string[] {
  return scope
    .split(separator)
    .map((s) => s.trim())
    .filter((s) => s !== '');
}
