/**
 * Writes small tar archives for tests of the tar reader, with each way a long member name can be
 * stored: the ustar `prefix` field, a GNU `L` member, or a pax `x` header.
 */

/** A member of a test archive. */
export interface FixtureMember {
  name: string;
  data?: string | Uint8Array;
  /** typeflag, default '0' (a directory: '5') */
  type?: string;
  /** how a name over 100 bytes is stored */
  longName?: 'prefix' | 'gnu' | 'pax';
}

function header(name: string, size: number, type: string, prefix = ''): Buffer {
  const h = Buffer.alloc(512);
  const put = (s: string, at: number, len: number) => {
    const b = Buffer.from(s, 'utf8');
    if (b.length > len) throw new Error(`tar fixture: '${s}' is over ${len} bytes`);
    b.copy(h, at);
  };
  put(name, 0, 100);
  put('0000644\0', 100, 8);
  put('0000000\0', 108, 8);
  put('0000000\0', 116, 8);
  put(size.toString(8).padStart(11, '0') + '\0', 124, 12);
  put('14212345670\0', 136, 12);
  put('        ', 148, 8);
  put(type, 156, 1);
  put('ustar\0' + '00', 257, 8);
  put(prefix, 345, 155);
  let sum = 0;
  for (const b of h) sum += b;
  put(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8);
  return h;
}

function padded(data: Buffer): Buffer {
  return Buffer.concat([data, Buffer.alloc((512 - (data.length % 512)) % 512)]);
}

/** The archive's bytes: every member, then the two zero blocks that end an archive. */
export function packTar(members: FixtureMember[]): Buffer {
  const parts: Buffer[] = [];
  for (const m of members) {
    const data = Buffer.from(m.data ?? '');
    const type = m.type ?? '0';
    let name = m.name;
    let prefix = '';
    if (Buffer.byteLength(name) > 100) {
      if (m.longName === 'gnu') {
        const body = Buffer.from(name + '\0');
        parts.push(header('././@LongLink', body.length, 'L'), padded(body));
        name = name.slice(0, 100);
      } else if (m.longName === 'pax') {
        const rec = (len: number) => `${len} path=${m.name}\n`;
        let len = rec(0).length;
        while (rec(len).length !== len) len = rec(len).length;
        const body = Buffer.from(rec(len));
        parts.push(header('PaxHeader/x', body.length, 'x'), padded(body));
        name = name.slice(-100);
      } else {
        const cut = name.lastIndexOf('/', name.length - 2);
        prefix = name.slice(0, cut);
        name = name.slice(cut + 1);
      }
    }
    parts.push(header(name, type === '0' ? data.length : 0, type, prefix));
    if (type === '0') parts.push(padded(data));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}
