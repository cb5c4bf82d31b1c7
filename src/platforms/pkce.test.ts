import { describe, expect, it } from 'vitest';
import { createS256CodeChallenge, createS256HexCodeChallenge, generateCodeVerifier } from './pkce.js';

describe('PKCE', () => {
  it('derives the S256 challenge of RFC 7636 appendix B', () => {
    expect(createS256CodeChallenge('dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk')).toBe(
      'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
    );
  });

  it("derives TikTok's S256 challenge as the lowercase hex SHA-256 of the verifier (Login Kit for Desktop)", () => {
    const challenge = createS256HexCodeChallenge('dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk');
    expect(challenge).toBe('13d31e961a1ad8ec2f16b10c4c982e0876a878ad6df144566ee1894acb70f9c3');
    expect(Buffer.from(challenge, 'hex').toString('base64url')).toBe(
      createS256CodeChallenge('dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk'),
    );
  });

  it('generates 43-character base64url verifiers that differ every time', () => {
    const a = generateCodeVerifier();
    expect(a).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(generateCodeVerifier()).not.toBe(a);
  });
});
