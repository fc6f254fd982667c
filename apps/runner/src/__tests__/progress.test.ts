import { ProgressReporter, formatDuration } from '../progress';
import { sink } from './support/sink';


describe('ProgressReporter (plain mode)', () => {
  it('logs every N seconds with step, rate, loss and ETA', () => {
    let clock = 0;
    const out = sink(false);
    const p = new ProgressReporter({ total: 100, stream: out, logEverySeconds: 5, now: () => clock, label: 'test' });
    expect(p.tty).toBe(false);
    for (let step = 1; step <= 20; step++) {
      clock += 1000; // 1 step/s
      p.update(step, { loss: 1 / step });
    }
    const lines = out.text().trim().split('\n');
    expect(lines).toHaveLength(4); // at steps 5, 10, 15, 20
    expect(lines[0]).toMatch(/^\[test\] step 5\/100 \(5\.0%\)  1\.00 steps\/s  loss 0\.2000  elapsed 5s  eta 1m35s$/);
    expect(lines[3]).toContain('step 20/100');
    p.stop();
    expect(out.text().trim().split('\n')).toHaveLength(4); // nothing new since the last line
  });

  it('logs every N steps, shows extra values and a final line on stop', () => {
    let clock = 0;
    const out = sink(false);
    const p = new ProgressReporter({ stream: out, logEverySeconds: 1e9, logEverySteps: 10, now: () => clock, startStep: 100 });
    for (let step = 101; step <= 125; step++) {
      clock += 500;
      p.update(step, { loss: 0.5, grad_norm: 12 });
    }
    p.stop();
    const lines = out.text().trim().split('\n');
    expect(lines.map((l) => /step (\d+)/.exec(l)![1])).toEqual(['110', '120', '125']);
    expect(lines[0]).toContain('2.00 steps/s');
    expect(lines[0]).toContain('grad_norm 12.0000');
    expect(lines[0]).not.toContain('eta'); // total unknown
    p.update(130, {}); // ignored after stop
    expect(out.text().trim().split('\n')).toHaveLength(3);
  });

  it('log() writes messages through', () => {
    const out = sink(false);
    const p = new ProgressReporter({ stream: out });
    p.log('hello');
    expect(out.text()).toBe('hello\n');
  });
});

describe('ProgressReporter (TTY mode)', () => {
  it('draws a bar with step, rate and loss', () => {
    let clock = 0;
    const out = sink(true);
    const p = new ProgressReporter({ total: 50, stream: out, now: () => clock });
    expect(p.tty).toBe(true);
    for (let step = 1; step <= 50; step++) {
      clock += 250;
      p.update(step, { loss: 0.125 });
    }
    p.log('a message');
    p.stop();
    const text = out.text();
    expect(text).toContain('50/50 steps');
    expect(text).toContain('4.00 steps/s');
    expect(text).toContain('loss 0.1250');
    expect(text).toContain('a message');
  });
});

describe('formatDuration', () => {
  it('formats seconds, minutes and hours', () => {
    expect(formatDuration(5)).toBe('5s');
    expect(formatDuration(95)).toBe('1m35s');
    expect(formatDuration(3 * 3600 + 7 * 60)).toBe('3h07m');
    expect(formatDuration(NaN)).toBe('?');
  });
});
