/**
 * `lopt imagenet-npz --size S --train FILES... --val FILES... [--out DIR]`: converts image-net.org's
 * downsampled ImageNet npz files (`Imagenet{8,16,32,64}_train_npz`, `_val_npz`: the `.npz` files, or
 * the `.zip` downloads holding them) into the `imagenet2012_<S>/` TFRecord shards that the
 * imagenet datasets read. See @lopt/tasks `datasets/imagenet_npz.ts` for the splits and labels.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Command } from 'commander';
import { CliContext } from './context';

/** `--opt a b` and `--opt a --opt b` both collect into one list. */
function collect(value: string, prev: string[] = []): string[] {
  return [...prev, value];
}

/** Adds `lopt imagenet-npz` to the program. */
export function register(program: Command, ctx: CliContext): void {
  program
    .command('imagenet-npz')
    .description("convert image-net.org's downsampled ImageNet npz files into the imagenet2012_<S>/ TFRecord shards the imagenet8/16/32/64 datasets read")
    .requiredOption('--size <S>', 'image size: 8, 16, 32 or 64')
    .requiredOption('--train <files...>', 'the training .npz files (or the .zip downloads holding them), in order', collect)
    .requiredOption('--val <files...>', 'the validation .npz files (or .zip): the test split', collect)
    .option('--out <dir>', 'where imagenet2012_<S>/ is written (default: $LOPT_DATA_DIR, then ~/.cache/lopt)')
    .option('--inner-valid <n>', 'training examples held out as inner_valid (from the end)', '10000')
    .option('--outer-valid <n>', 'training examples held out as outer_valid (the very end)', '10000')
    .option('--shard-size <n>', 'examples per shard', '10000')
    .option('--clsloc <file>', "the devkit's map_clsloc.txt: renumber the labels in sorted-synset order, as the reference's imagenet2012 labels")
    .action((opts: { size: string; train: string[]; val: string[]; out?: string; innerValid: string; outerValid: string; shardSize: string; clsloc?: string }) => {
      // loaded here, not at the top (see tokenize.ts)
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { convertImagenetNpz } = require('@lopt/tasks') as typeof import('@lopt/tasks');
      const size = Number(opts.size);
      if (![8, 16, 32, 64].includes(size)) throw new Error(`imagenet-npz: --size must be 8, 16, 32 or 64, got ${opts.size}`);
      const int = (name: string, v: string) => {
        const n = Number(v);
        if (!Number.isInteger(n) || n < 0) throw new Error(`imagenet-npz: ${name} must be a non-negative integer, got ${v}`);
        return n;
      };
      const outDir = opts.out ?? process.env.LOPT_DATA_DIR ?? path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'lopt');
      const t0 = Date.now();
      const r = convertImagenetNpz({
        size: size as 8 | 16 | 32 | 64,
        train: opts.train,
        val: opts.val,
        outDir,
        innerValid: int('--inner-valid', opts.innerValid),
        outerValid: int('--outer-valid', opts.outerValid),
        shardSize: int('--shard-size', opts.shardSize),
        clsloc: opts.clsloc ? fs.readFileSync(opts.clsloc, 'utf8') : undefined,
        onShard: (f, n) => ctx.stdout.write(`${path.basename(f)}: ${n} examples\n`),
      });
      const counts = Object.entries(r.counts).map(([s, n]) => `${s} ${n}`).join(', ');
      ctx.stdout.write(`${r.folder}: ${counts} (${r.files.length} shards) in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
    });
}
