import { MAX_SEED, hostPortArg, intArg, intParser, secondsArg } from '../commands/args';

describe('command-line values are checked before a command does anything', () => {
  test('host:port for --learner', () => {
    expect(hostPortArg('--learner', '127.0.0.1:7077')).toBe('127.0.0.1:7077');
    expect(hostPortArg('--learner', 'learner-0.svc:80')).toBe('learner-0.svc:80');
    expect(hostPortArg('--learner', '[::1]:7077')).toBe('[::1]:7077');
    expect(() => hostPortArg('--learner', 'garbage')).toThrow(/--learner must be host:port \(e\.g\. 127\.0\.0\.1:7077\), got 'garbage'/);
    expect(() => hostPortArg('--learner', '127.0.0.1:70000')).toThrow(/--learner must be host:port/);
    expect(() => hostPortArg('--learner', '127.0.0.1:')).toThrow(/--learner must be host:port/);
  });

  test('seconds for --linger-seconds and --give-up-seconds', () => {
    expect(secondsArg('--linger-seconds', '5')).toBe(5);
    expect(secondsArg('--linger-seconds', '0.5')).toBe(0.5);
    expect(secondsArg('--linger-seconds', undefined)).toBeUndefined();
    for (const bad of ['abc', '', '-1', 'Infinity', 'NaN']) {
      expect(() => secondsArg('--linger-seconds', bad)).toThrow(new RegExp(`--linger-seconds must be a number of seconds >= 0, got '${bad}'`));
    }
    expect(() => secondsArg('--give-up-seconds', '0', 0.001)).toThrow(/>= 0\.001/);
  });

  test('integers', () => {
    expect(intArg('--port', '7077', 0)).toBe(7077);
    expect(() => intArg('--port', '1e20', 0)).toThrow(/--port must be an integer >= 0, got '1e20'/);
    expect(() => intArg('--workers', '1.5', 1)).toThrow(/--workers must be an integer >= 1/);
    expect(() => intArg('--staleness', '', 0)).toThrow(/--staleness must be an integer >= 0, got ''/); // Number('') is 0
    expect(() => intArg('--steps', '9007199254740993', 1)).toThrow(/--steps must be an integer >= 1/);
    expect(intArg('--port', '65535', 0, 65535)).toBe(65535);
    expect(() => intArg('--port', '65536', 0, 65535)).toThrow(/--port must be an integer in 0\.\.65535, got '65536'/);
    const seed = intParser('--seed', 0, MAX_SEED);
    expect(seed('4294967295')).toBe(4294967295);
    expect(() => seed('4294967296')).toThrow(/--seed must be an integer in 0\.\.4294967295/);
  });
});
