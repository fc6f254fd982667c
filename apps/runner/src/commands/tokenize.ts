/**
 * `lopt tokenize <corpus> --model FILE [--data-dir DIR]`: writes a language corpus's 32k token-id
 * files (`train.ids`, `test.ids`) from its text files with a sentencepiece model, the way the
 * reference's 32k datasets tokenize (seqio `SentencePieceVocabulary`, T5 `cc_all.32000`). The
 * 32k datasets then read them; see @lopt/tasks `datasets/sentencepiece.ts`.
 */
import { Command } from 'commander';
import { CORPUS_NAMES, tokenizeCorpus } from '@lopt/tasks';
import { CliContext } from './context';

/** The corpora that have text files to tokenize (not the byte-only fortunes). */
const TOKENIZABLE = CORPUS_NAMES.filter((c) => c !== 'fortunes');

export function register(program: Command, ctx: CliContext): void {
  program
    .command('tokenize <corpus>')
    .description(`tokenize a language corpus's text files into its 32k token-id files with a sentencepiece model (corpus: ${TOKENIZABLE.join(', ')})`)
    .requiredOption('--model <file>', 'the sentencepiece model (the reference uses gs://t5-data/vocabs/cc_all.32000/sentencepiece.model)')
    .option('--data-dir <dir>', 'where <corpus>/ lies (default: $LOPT_DATA_DIR, then ~/.cache/lopt)')
    .action(async (corpus: string, opts: { model: string; dataDir?: string }) => {
      if (!(TOKENIZABLE as string[]).includes(corpus)) throw new Error(`tokenize: unknown corpus '${corpus}' (allowed: ${TOKENIZABLE.join(', ')})`);
      const t0 = Date.now();
      const r = await tokenizeCorpus(corpus as (typeof TOKENIZABLE)[number], { model: opts.model, root: opts.dataDir });
      ctx.stdout.write(`${r.examples} examples in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${r.files.join(', ')}\n`);
    });
}
