/**
 * `lopt data <corpus>`: prepares a large language corpus where the language datasets find it
 * (`$LOPT_DATA_DIR`, else `~/.cache/lopt`, or `--data-dir`):
 * - `lopt data lm1b [--archive FILE] [--model SP]`: downloads (resuming) and checks the One
 *   Billion Word tarball TFDS `lm1b` uses, and writes `lm1b/train.txt`, `test.txt` in TFDS's
 *   stored order; with `--model`, the 32k `.ids` files too. See @lopt/tasks `datasets/lm1b.ts`.
 * - `lopt data wikipedia_en --from EXPORT [--format jsonl|lines] [--model SP]`: writes
 *   `wikipedia_en/train.jsonl` (or `train.txt`) from an export of TFDS `wikipedia/20201201.en`.
 *   See @lopt/tasks `datasets/wikipedia.ts`.
 */
import { Command } from 'commander';
import { CliContext } from './context';

export function register(program: Command, ctx: CliContext): void {
  program
    .command('data <corpus>')
    .description('prepare a language corpus for the reference datasets: lm1b (downloaded, TFDS order) or wikipedia_en (from an export of TFDS wikipedia/20201201.en)')
    .option('--data-dir <dir>', 'where <corpus>/ is written (default: $LOPT_DATA_DIR, then ~/.cache/lopt)')
    .option('--model <file>', 'also write the 32k token-id files with this sentencepiece model (the reference uses gs://t5-data/vocabs/cc_all.32000/sentencepiece.model)')
    .option('--archive <file>', 'lm1b: a copy of the tarball already on disk (checked, not downloaded)')
    .option('--url <url>', 'lm1b: download the tarball from here (a mirror) instead of statmt.org')
    .option('--no-verify', 'lm1b: do not check the tarball against the size and sha256 TFDS records')
    .option('--delete-archive', 'lm1b: delete the downloaded tarball once the corpus is written')
    .option('--from <file>', 'wikipedia_en: the export to read')
    .option('--format <format>', 'wikipedia_en: jsonl (one {"text": ...} per line) or lines (one article per line); default from the file name')
    .action(
      async (
        corpus: string,
        opts: { dataDir?: string; model?: string; archive?: string; url?: string; verify: boolean; deleteArchive?: boolean; from?: string; format?: 'jsonl' | 'lines' },
      ) => {
        // loaded here, not at the top: importing @lopt/tasks registers every task (see tokenize.ts)
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const tasks = require('@lopt/tasks') as typeof import('@lopt/tasks');
        const log = (line: string) => ctx.stderr.write(`${line}\n`);
        const t0 = Date.now();
        if (corpus === 'lm1b') {
          const r = await tasks.prepareLm1b({
            root: opts.dataDir,
            archive: opts.archive,
            url: opts.url,
            ...(opts.verify ? {} : { size: null, sha256: null }),
            deleteArchive: opts.deleteArchive,
            log,
          });
          for (const [split, s] of Object.entries(r.splits)) {
            ctx.stdout.write(`${split}: ${s.written} examples in ${s.file}${s.empty ? ` (${s.empty} empty ones dropped)` : ''}\n`);
          }
        } else if (corpus === 'wikipedia_en') {
          if (!opts.from) {
            throw new Error(
              `data wikipedia_en: --from EXPORT is required: an export of TFDS ${tasks.WIKIPEDIA_TFDS_NAME} (JSON Lines, one {"text": ...} per article, in TFDS's stored order); docs/datasets.md shows the Python lines that write it`,
            );
          }
          const r = tasks.prepareWikipedia({ from: opts.from, format: opts.format, root: opts.dataDir, log });
          ctx.stdout.write(`train: ${r.articles} articles in ${r.file}${r.emptyDropped ? ` (${r.emptyDropped} empty lines dropped)` : ''}\n`);
        } else {
          throw new Error(`data: unknown corpus '${corpus}' (allowed: lm1b, wikipedia_en; tiny_shakespeare downloads itself, fortunes is the Debian package)`);
        }
        if (opts.model) {
          const r = await tasks.tokenizeCorpus(corpus as 'lm1b' | 'wikipedia_en', { model: opts.model, root: opts.dataDir, log });
          ctx.stdout.write(`32k: ${r.examples} examples in ${r.files.join(', ')}\n`);
        }
        ctx.stdout.write(`done in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
      },
    );
}
