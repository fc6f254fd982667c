import { hostPortArg, intArg, secondsArg } from '../commands/args';

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
  });
});
