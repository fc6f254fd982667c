import { Writable } from 'stream';

/** A captured output stream: what the CLI writes to it is kept for `text()`; `isTTY` picks the progress mode. */
export type Sink = Writable & { text: () => string; isTTY: boolean; columns: number };

/** A stream that records everything written to it (the CLI's stdout/stderr in tests). */
export function sink(isTTY = false): Sink {
  const chunks: string[] = [];
  const w = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  }) as Sink;
  w.isTTY = isTTY;
  w.columns = 160;
  w.text = () => chunks.join('');
  return w;
}
