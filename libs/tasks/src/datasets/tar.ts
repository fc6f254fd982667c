/**
 * A minimal streaming reader of tar archives (POSIX ustar, with the GNU and pax long-name
 * extensions), for the dataset archives lopt-ts unpacks (the lm1b tarball is 1.7 GB gzipped, about
 * 4.3 GB of text): bytes go in as they come from `zlib.createGunzip()`, and every regular file's
 * content comes out in order, so nothing is written to disk but what the caller keeps.
 *
 * The format, as read here: the archive is a sequence of 512-byte blocks. Each member is a header
 * block, then its content padded with zeros to a multiple of 512. Header fields are NUL-terminated
 * ASCII: `name` (bytes 0–99), `size` (124–135, octal; GNU writes sizes ≥ 8 GiB as base-256 with the
 * top bit of the first byte set), `chksum` (148–155, octal: the sum of the header's bytes with this
 * field counted as spaces), `typeflag` (156: `0` or NUL a regular file, `5` a directory, ...),
 * `magic` (257, `ustar`) and, for ustar, `prefix` (345–499), prepended to the name with a `/`.
 * Long names come in a member of their own before the one they name: GNU `L` (the content is the
 * name) or pax `x` (records `"<len> path=<name>\n"`, and `size=` too); pax `g` (global) headers
 * are skipped. A zero block ends the archive (an archive without one is taken as truncated). Links and devices are reported with their type
 * and no content.
 */

/** One archive member, as its header (and any long-name member before it) describes it. */
export interface TarEntry {
  /** The member's path in the archive (`dir/file`), long names resolved. */
  name: string;
  /** The content's size in bytes. */
  size: number;
  /** The ustar typeflag: `'0'` regular file (NUL is read as `'0'`), `'5'` directory, `'2'` symlink, ... */
  type: string;
}

/**
 * What to do with a member's content: a function given its chunks in order (then called with
 * `null` at its end), or `null` to skip it.
 */
export type TarSink = ((chunk: Uint8Array | null) => void) | null;

const BLOCK = 512;

/** A header field as text: its bytes up to the first NUL. */
function field(h: Uint8Array, start: number, len: number): string {
  let end = start;
  while (end < start + len && h[end] !== 0) end++;
  return Buffer.from(h.subarray(start, end)).toString('utf8');
}

/** An octal number field (spaces and NULs around it ignored), or GNU base-256 when the top bit is set. */
function numberField(h: Uint8Array, start: number, len: number): number {
  if (h[start] & 0x80) {
    let v = h[start] & 0x7f;
    for (let i = start + 1; i < start + len; i++) v = v * 256 + h[i];
    return v;
  }
  const s = field(h, start, len).trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw new Error(`tar: bad number field '${s}' at header offset ${start}`);
  return parseInt(s, 8);
}

/** The pax records of an extended header: `"<len> key=value\n"` each. */
function paxRecords(body: Uint8Array): Record<string, string> {
  const out: Record<string, string> = {};
  const buf = Buffer.from(body);
  let i = 0;
  while (i < buf.length) {
    const sp = buf.indexOf(32, i);
    if (sp < 0) break;
    const len = parseInt(buf.subarray(i, sp).toString('ascii'), 10);
    if (!(len > 0)) break;
    const rec = buf.subarray(sp + 1, i + len - 1).toString('utf8'); // without the trailing newline
    const eq = rec.indexOf('=');
    if (eq > 0) out[rec.slice(0, eq)] = rec.slice(eq + 1);
    i += len;
  }
  return out;
}

/**
 * The reader: {@link TarReader.push} the archive's bytes in any chunking, then
 * {@link TarReader.end}. `onEntry` is called at each member's header and returns what to do
 * with its content.
 */
export class TarReader {
  private pending = new Uint8Array(0);
  /** bytes of the current member's content still to come, then its padding */
  private remaining = 0;
  private padding = 0;
  private sink: TarSink = null;
  /** a long-name member's content being gathered (GNU `L`, pax `x`/`g`) */
  private meta: { type: string; parts: Uint8Array[] } | null = null;
  private next: { name?: string; size?: number } = {};
  private done = false;
  /** Regular files seen so far. */
  files = 0;

  constructor(private readonly onEntry: (entry: TarEntry) => TarSink) {}

  /** Feed the next bytes of the archive. */
  push(chunk: Uint8Array): void {
    let off = 0;
    while (off < chunk.length && !this.done) {
      if (this.remaining > 0) {
        const n = Math.min(this.remaining, chunk.length - off);
        const part = chunk.subarray(off, off + n);
        if (this.meta) this.meta.parts.push(part.slice());
        else this.sink?.(part);
        this.remaining -= n;
        off += n;
        if (this.remaining === 0) this.finishMember();
        continue;
      }
      if (this.padding > 0) {
        const n = Math.min(this.padding, chunk.length - off);
        this.padding -= n;
        off += n;
        continue;
      }
      // a header: gather 512 bytes
      const need = BLOCK - this.pending.length;
      const take = chunk.subarray(off, off + need);
      off += take.length;
      if (this.pending.length === 0 && take.length === BLOCK) this.header(take);
      else {
        const joined = new Uint8Array(this.pending.length + take.length);
        joined.set(this.pending);
        joined.set(take, this.pending.length);
        this.pending = joined;
        if (joined.length === BLOCK) {
          this.pending = new Uint8Array(0);
          this.header(joined);
        }
      }
    }
  }

  /** The archive is over: throws if it ended inside a member. */
  end(): void {
    if (this.remaining > 0 || this.pending.length > 0 || this.meta) throw new Error('tar: the archive ends inside a member (truncated download?)');
    if (!this.done) throw new Error('tar: the archive ends without its end-of-archive blocks (truncated?)');
  }

  private header(h: Uint8Array): void {
    if (h.every((b) => b === 0)) {
      this.done = true; // end-of-archive marker
      return;
    }
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : h[i];
    const stored = numberField(h, 148, 8);
    if (stored !== sum) throw new Error(`tar: header checksum ${stored} is not ${sum} (not a tar archive, or a corrupt one)`);
    const typeByte = h[156];
    const type = typeByte === 0 ? '0' : String.fromCharCode(typeByte);
    let size = numberField(h, 124, 12);
    let name = field(h, 0, 100);
    if (field(h, 257, 5) === 'ustar') {
      const prefix = field(h, 345, 155);
      if (prefix) name = `${prefix}/${name}`;
    }
    if (type === 'L' || type === 'x' || type === 'g') {
      this.meta = { type, parts: [] };
      this.sink = null;
    } else {
      if (this.next.name !== undefined) name = this.next.name;
      if (this.next.size !== undefined) size = this.next.size;
      this.next = {};
      // links, devices, directories and FIFOs (1-6) have no content whatever their size field says
      if ('123456'.includes(type)) size = 0;
      const regular = type === '0' || type === '7';
      if (regular) this.files += 1;
      const sink = this.onEntry({ name, size, type });
      this.sink = regular ? sink : null;
    }
    this.remaining = size;
    this.padding = (BLOCK - (size % BLOCK)) % BLOCK;
    if (size === 0) this.finishMember();
  }

  private finishMember(): void {
    if (this.meta) {
      const body = Buffer.concat(this.meta.parts);
      if (this.meta.type === 'L') this.next.name = field(body, 0, body.length);
      else if (this.meta.type === 'x') {
        const rec = paxRecords(body);
        if (rec.path !== undefined) this.next.name = rec.path;
        if (rec.size !== undefined) this.next.size = Number(rec.size);
      }
      this.meta = null;
      return;
    }
    this.sink?.(null);
    this.sink = null;
  }
}
