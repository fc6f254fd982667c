/**
 * Progress reporting for long runs. On a TTY: a cli-progress bar (step/total, steps/s, loss, ETA)
 * with `log()` lines printed above it. Elsewhere (CI, files, pipes): one plain line every
 * `logEverySeconds` seconds and/or `logEverySteps` steps, plus one at the end.
 */
import * as cliProgress from 'cli-progress';

/**
 * Options of {@link createProgress}: total and starting step, label, output stream, TTY mode and the
 * plain-mode log interval.
 */
export interface ProgressOptions {
  /** Total number of steps (0 or undefined: unknown, no ETA). */
  total?: number;
  /** Step the run starts (resumes) from. */
  startStep?: number;
  label?: string;
  /** Where to write (default process.stderr). */
  stream?: NodeJS.WriteStream | NodeJS.WritableStream;
  /** Force the TTY bar on/off (default: `stream.isTTY`). */
  tty?: boolean;
  /** Plain mode: log a line at least this often (default 10 s). */
  logEverySeconds?: number;
  /** Plain mode: also log every this many steps (default: off). */
  logEverySteps?: number;
  /** Clock in milliseconds (tests). */
  now?: () => number;
}

/** Numbers shown with a progress step: the loss and any other named values. */
export interface ProgressUpdate {
  loss?: number;
  /** Extra named numbers shown after the loss. */
  [key: string]: number | undefined;
}

/** A duration in seconds as `1h05m`, `3m07s` or `42s` (`?` when not finite or negative). */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  if (h) return `${h}h${String(m).padStart(2, '0')}m`;
  if (m) return `${m}m${String(sec).padStart(2, '0')}s`;
  return `${sec}s`;
}

function fmt(v: number | undefined): string {
  if (v === undefined) return '-';
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  return a !== 0 && (a >= 1e5 || a < 1e-3) ? v.toExponential(3) : v.toFixed(4);
}

/**
 * Progress of a run: a live bar on a TTY, otherwise a plain line every `logEverySeconds` and/or
 * `logEverySteps`, and one at the end.
 */
export class ProgressReporter {
  readonly total: number;
  readonly tty: boolean;
  private readonly label: string;
  private readonly stream: NodeJS.WritableStream;
  private readonly now: () => number;
  private readonly logEveryMs: number;
  private readonly logEverySteps: number | undefined;
  private readonly startTime: number;
  private step: number;
  private last: ProgressUpdate = {};
  private lastLogTime: number;
  private lastLogStep: number;
  /** Recent (time, step) samples for the rate. */
  private window: Array<[number, number]> = [];
  private multibar: cliProgress.MultiBar | null = null;
  private bar: cliProgress.SingleBar | null = null;
  private stopped = false;

  constructor(opts: ProgressOptions = {}) {
    this.total = opts.total ?? 0;
    this.label = opts.label ?? 'lopt';
    this.stream = opts.stream ?? process.stderr;
    this.tty = opts.tty ?? Boolean((this.stream as NodeJS.WriteStream).isTTY);
    this.now = opts.now ?? Date.now;
    this.logEveryMs = (opts.logEverySeconds ?? 10) * 1000;
    this.logEverySteps = opts.logEverySteps;
    this.step = this.lastLogStep = opts.startStep ?? 0;
    this.startTime = this.lastLogTime = this.now();
    this.window.push([this.startTime, this.step]);
    if (this.tty) {
      this.multibar = new cliProgress.MultiBar(
        {
          stream: this.stream,
          format: `${this.label} |{bar}| {value}/{total} steps | {rate} steps/s | loss {loss} | ETA {eta}{extra}`,
          hideCursor: true,
          clearOnComplete: false,
          barsize: 30,
          fps: 5,
          autopadding: true,
        },
        cliProgress.Presets.shades_classic,
      );
      this.bar = this.multibar.create(Math.max(this.total, this.step), this.step, this.payload());
    }
  }

  /** Steps per second over the last ~30 s. */
  rate(): number {
    const [t0, s0] = this.window[0];
    const [t1, s1] = this.window[this.window.length - 1];
    return t1 > t0 ? ((s1 - s0) * 1000) / (t1 - t0) : 0;
  }

  /** Seconds left at the current rate (NaN when unknown). */
  eta(): number {
    const r = this.rate();
    return this.total > 0 && r > 0 ? Math.max(0, this.total - this.step) / r : NaN;
  }

  update(step: number, values: ProgressUpdate = {}): void {
    if (this.stopped) return;
    const t = this.now();
    this.step = step;
    this.last = { ...this.last, ...values };
    this.window.push([t, step]);
    while (this.window.length > 2 && t - this.window[0][0] > 30_000) this.window.shift();
    if (this.bar) {
      this.bar.update(step, this.payload());
      return;
    }
    const dueByTime = t - this.lastLogTime >= this.logEveryMs;
    const dueBySteps = this.logEverySteps !== undefined && step - this.lastLogStep >= this.logEverySteps;
    if (dueByTime || dueBySteps) {
      this.writeLine(this.line());
      this.lastLogTime = t;
      this.lastLogStep = step;
    }
  }

  /** A message that should not be swallowed by the bar. */
  log(message: string): void {
    const line = message.endsWith('\n') ? message : message + '\n';
    if (this.multibar && !this.stopped) {
      this.multibar.log(line);
      this.multibar.update(); // print it now, not on the next timed redraw
    }
    else this.stream.write(line);
  }

  /** Stops the bar (or logs a final line). */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.multibar) {
      this.bar!.update(this.step, this.payload());
      this.multibar.update();
      this.multibar.stop();
    } else if (this.step !== this.lastLogStep) {
      this.writeLine(this.line());
    }
  }

  /** The plain progress line (also what non-TTY mode prints). */
  line(): string {
    const parts = [`[${this.label}] step ${this.step}${this.total ? `/${this.total}` : ''}`];
    if (this.total) parts[0] += ` (${((100 * this.step) / this.total).toFixed(1)}%)`;
    parts.push(`${this.rate().toFixed(2)} steps/s`);
    if (this.last.loss !== undefined) parts.push(`loss ${fmt(this.last.loss)}`);
    for (const [k, v] of Object.entries(this.last)) if (k !== 'loss' && v !== undefined) parts.push(`${k} ${fmt(v)}`);
    parts.push(`elapsed ${formatDuration((this.now() - this.startTime) / 1000)}`);
    if (this.total) parts.push(`eta ${formatDuration(this.eta())}`);
    return parts.join('  ');
  }

  private writeLine(line: string): void {
    this.stream.write(line + '\n');
  }

  private payload(): Record<string, unknown> {
    const extra = Object.entries(this.last)
      .filter(([k, v]) => k !== 'loss' && v !== undefined)
      .map(([k, v]) => ` | ${k} ${fmt(v)}`)
      .join('');
    return { rate: this.rate().toFixed(2), loss: fmt(this.last.loss), eta: formatDuration(this.eta()), extra };
  }
}

/** The reporter for `stream` (stderr by default): a bar on a TTY, plain lines otherwise. */
export function createProgress(opts: ProgressOptions = {}): ProgressReporter {
  return new ProgressReporter(opts);
}
