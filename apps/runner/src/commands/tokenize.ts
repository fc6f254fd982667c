/**
 * `lopt tokenize <corpus> --model FILE [--data-dir DIR]`: writes a language corpus's 32k token-id
 * files (`train.ids`, `test.ids`) from its text files with a sentencepiece model, the way the
 * reference's 32k datasets tokenize (seqio `SentencePieceVocabulary`, T5 `cc_all.32000`). The
 * 32k datasets then read them; see @lopt/tasks `datasets/sentencepiece.ts`.
 */
import { Command } from 'commander';
import { CliContext } from './context';

export function register(program: Command, ctx: CliContext): void {
  program
    .command('tokenize <corpus>')
    .description("tokenize a language corpus's text files (lm1b, wikipedia_en, tiny_shakespeare) into its 32k token-id files with a sentencepiece model")
    .requiredOption('--model <file>', 'the sentencepiece model (the reference uses gs://t5-data/vocabs/cc_all.32000/sentencepiece.model)')
    .option('--data-dir <dir>', 'where <corpus>/ lies (default: $LOPT_DATA_DIR, then ~/.cache/lopt)')
    .action(async (corpus: string, opts: { model: string; dataDir?: string }) => {
      // loaded here, not at the top: importing @lopt/tasks registers every task, which `lopt` does
      // only when a command needs them (tests give the CLI registries of their own)
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { CORPUS_NAMES, tokenizeCorpus } = require('@lopt/tasks') as typeof import('@lopt/tasks');
      const tokenizable = CORPUS_NAMES.filter((c) => c !== 'fortunes');
      if (!(tokenizable as string[]).includes(corpus)) throw new Error(`tokenize: unknown corpus '${corpus}' (allowed: ${tokenizable.join(', ')})`);
      const t0 = Date.now();
      const r = await tokenizeCorpus(corpus as (typeof tokenizable)[number], { model: opts.model, root: opts.dataDir });
      ctx.stdout.write(`${r.examples} examples in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${r.files.join(', ')}\n`);
    });
}
