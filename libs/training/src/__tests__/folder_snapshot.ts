import * as fs from 'fs';
import * as path from 'path';

/** Every file under `dir` with its bytes, in a fixed order: equal snapshots mean an unchanged folder. */
export function folderSnapshot(dir: string): string {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const n of fs.readdirSync(d).sort()) {
      const p = path.join(d, n);
      if (fs.statSync(p).isDirectory()) walk(p);
      else out.push(`${path.relative(dir, p)}:${fs.readFileSync(p).toString('base64')}`);
    }
  };
  walk(dir);
  return out.join('\n');
}
