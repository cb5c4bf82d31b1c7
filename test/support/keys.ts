import { generateKeyEntry } from '../../src/crypto/tokenCipher.js';

/** One fixed keyring per test run, so child processes share it with the parent. */
export const TEST_KEYS = process.env.TEST_TOKEN_ENCRYPTION_KEYS ?? generateKeyEntry('test1');
