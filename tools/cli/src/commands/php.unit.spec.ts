import { describe, expect, it } from 'vitest';
import { isCpsError } from '@cps/core';
import { downloadTarget, parseSettings, settingLines, settingsOf, versionRows } from './php.js';

/** The error `f` throws, as a CpsError's code and issues. */
const refusal = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    if (!isCpsError(e)) throw e;
    return { code: e.code, issues: e.issues.map((i) => ({ path: i.path, code: i.code })) };
  }
  throw new Error('did not throw');
};

describe('cps php config: key=value words', () => {
  it('are the settings, values as strings split at the first =', () => {
    expect(
      parseSettings(['memory_limit=256M', 'date.timezone=Europe/Amsterdam', 'x=a=b', 'display_errors=']),
    ).toEqual({
      memory_limit: '256M',
      'date.timezone': 'Europe/Amsterdam',
      x: 'a=b',
      display_errors: '',
    });
    expect(parseSettings([])).toEqual({});
  });

  it('refuse a word without =, a bad name and a name given twice, naming the word', () => {
    expect(refusal(() => parseSettings(['memory_limit']))).toEqual({
      code: 'validation',
      issues: [{ path: 'memory_limit', code: 'invalid_setting' }],
    });
    for (const w of ['=1', '1abc=2', 'a b=1', 'a;b=1', '__proto__ x=1'])
      expect(refusal(() => parseSettings([w]))).toEqual({
        code: 'validation',
        issues: [{ path: w, code: 'invalid_name' }],
      });
    expect(refusal(() => parseSettings(['a=1', 'a=2']))).toEqual({
      code: 'validation',
      issues: [{ path: 'a=2', code: 'duplicate' }],
    });
  });

  it('keep a name that an object has of its own (__proto__, constructor) as a plain setting', () => {
    const s = parseSettings(['__proto__=x', 'constructor=y']);
    expect(Object.keys(s)).toEqual(['__proto__', 'constructor']);
    expect(settingLines(s)).toEqual(['__proto__=x', 'constructor=y']);
  });
});

describe('cps php config: the settings answered', () => {
  it('are read from { settings }, or from the whole answer when asked to', () => {
    expect(
      settingsOf({ settings: { memory_limit: '128M', max_execution_time: 30, on: true, n: null } }),
    ).toEqual({
      memory_limit: '128M',
      max_execution_time: '30',
      on: 'true',
      n: '',
    });
    expect(settingsOf({ updated: true })).toBeUndefined();
    expect(settingsOf({ memory_limit: '128M' }, { whole: true })).toEqual({ memory_limit: '128M' });
    for (const odd of [null, 'text', 3, ['a']]) expect(settingsOf(odd, { whole: true })).toBeUndefined();
  });

  it('print as key=value lines, in their order', () => {
    expect(settingLines({ b: '2', a: '1' })).toEqual(['b=2', 'a=1']);
  });
});

describe('cps php versions and download', () => {
  it('marks the current version with *', () => {
    const stored = '2026-01-02T03:04:05.000Z';
    expect(
      versionRows([
        { version: 'v1', size: 10, digest: 'aa', stored, current: false },
        { version: 'v2', size: 20, digest: 'bb', stored, current: true },
      ]),
    ).toEqual([
      { version: 'v1', size: 10, stored, current: '' },
      { version: 'v2', size: 20, stored, current: '*' },
    ]);
  });

  it('writes to -o, else to stdout unless it is a terminal', () => {
    expect(downloadTarget('site.tgz', true)).toBe('site.tgz');
    expect(downloadTarget(undefined, false)).toBeUndefined();
    expect(refusal(() => downloadTarget(undefined, true))).toMatchObject({ code: 'validation' });
  });
});
