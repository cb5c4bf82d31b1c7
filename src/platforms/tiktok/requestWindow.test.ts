import { describe, expect, it } from 'vitest';
import { RequestWindow } from './requestWindow.js';

describe('RequestWindow: n calls per minute per token, waited for rather than refused', () => {
  it('lets `limit` calls through at once, then makes the next wait until the oldest leaves the window', () => {
    const window = new RequestWindow(60_000);
    const waits = Array.from({ length: 8 }, () => window.reserve('init:a', 6, 1_000));
    expect(waits).toEqual([0, 0, 0, 0, 0, 0, 60_000, 60_000]);
  });

  it('spaced calls never wait', () => {
    const window = new RequestWindow(60_000);
    for (let i = 0; i < 20; i++) expect(window.reserve('status:a', 30, i * 2_000)).toBe(0);
  });

  it('each key (endpoint and token) has its own window', () => {
    const window = new RequestWindow(60_000);
    for (let i = 0; i < 6; i++) window.reserve('init:a', 6, 0);
    expect(window.reserve('init:b', 6, 0)).toBe(0);
    expect(window.reserve('init:a', 6, 30_000)).toBe(30_000);
  });
});
