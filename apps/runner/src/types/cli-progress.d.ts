// Minimal typings for cli-progress 3.x (the package ships none and @types/cli-progress is not installed).
declare module 'cli-progress' {
  export interface Options {
    format?: string;
    stream?: NodeJS.WritableStream;
    fps?: number;
    barsize?: number;
    hideCursor?: boolean | null;
    clearOnComplete?: boolean;
    stopOnComplete?: boolean;
    noTTYOutput?: boolean;
    forceRedraw?: boolean;
    etaBuffer?: number;
    barCompleteChar?: string;
    barIncompleteChar?: string;
    autopadding?: boolean;
    [key: string]: unknown;
  }
  export interface Preset {
    barCompleteChar: string;
    barIncompleteChar: string;
    format: string;
  }
  export class SingleBar {
    constructor(opts: Options, preset?: Preset);
    start(total: number, startValue: number, payload?: Record<string, unknown>): void;
    update(current: number, payload?: Record<string, unknown>): void;
    setTotal(total: number): void;
    stop(): void;
  }
  export class MultiBar {
    constructor(opts: Options, preset?: Preset);
    create(total: number, startValue: number, payload?: Record<string, unknown>): SingleBar;
    /** Queues a line to print above the bars (written on the next redraw). */
    log(text: string): void;
    /** Redraws now (flushes queued log lines). */
    update(): void;
    stop(): void;
  }
  export const Presets: { shades_classic: Preset; shades_grey: Preset; legacy: Preset; rect: Preset };
}
