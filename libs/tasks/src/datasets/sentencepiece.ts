/**
 * Sentencepiece tokenization for the 32k language datasets (reference `tasks/datasets/language.py`:
 * seqio's `SentencePieceVocabulary` of the T5 `cc_all.32000` model, `encode` = the model's
 * `EncodeAsIds`, no EOS). The tokenizer is Google's sentencepiece compiled to WebAssembly
 * (`@agnai/sentencepiece-js`, Apache-2.0), which gives the same ids as the Python library seqio
 * calls (checked on test/golden/sentencepiece.json, made by tools/reference/golden_sentencepiece.py).
 *
 * Loading the wasm module is asynchronous and the batch streams are not, so a corpus is tokenized
 * once, ahead of training, into the `.ids` files the 32k datasets read (`lopt tokenize <corpus>
 * --model FILE`): one example per line, its ids separated by spaces.
 */
import * as fs from 'fs';
import * as path from 'path';
import { DatasetNotFoundError } from './fashion_mnist';
import { corpusLayout, findCorpusFiles, languageSearchRoots, readCorpusFile, splitRecords, type CorpusName, type RecordFormat } from './language';

/** The one method of the wasm sentencepiece processor that tokenization needs. */
export interface SentencePieceEncoder {
  /** `EncodeAsIds(text)`: the model's normalisation, then its segmentation. */
  encodeIds(text: string): number[];
}

/** Loads a sentencepiece `.model` file (a serialized ModelProto) into the wasm tokenizer. */
export async function loadSentencePiece(modelFile: string): Promise<SentencePieceEncoder> {
  if (!fs.existsSync(modelFile)) throw new DatasetNotFoundError(`sentencepiece model not found: ${modelFile} (the reference's 32k datasets use the T5 vocabulary gs://t5-data/vocabs/cc_all.32000/sentencepiece.model)`);
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- a CommonJS package without type definitions
  const { SentencePieceProcessor } = require('@agnai/sentencepiece-js') as { SentencePieceProcessor: new () => SentencePieceEncoder & { load(file: string): Promise<void> } };
  const sp = new SentencePieceProcessor();
  await sp.load(path.resolve(modelFile));
  return sp;
}

/** The ids of every record of a text file, one line of space-separated ids per record. */
export function encodeRecords(bytes: Uint8Array, format: RecordFormat, sp: SentencePieceEncoder): string {
  const records = splitRecords(bytes, format);
  const lines: string[] = [];
  for (let i = 0; i < records.length; i++) lines.push(sp.encodeIds(records.text(i)).join(' '));
  return lines.length ? lines.join('\n') + '\n' : '';
}

/**
 * Tokenizes a corpus's text files (`bytes` vocabulary: e.g. `lm1b/train.txt`, `test.txt`, or
 * `wikipedia_en/train.jsonl`) with a sentencepiece model into its `32k` files beside them
 * (`train.ids`, `test.ids`), written as they are encoded, whole (temp file, then rename). Large
 * files are read by example ({@link readCorpusFile}). `root` defaults to the first search root
 * holding the text files.
 */
export async function tokenizeCorpus(
  corpus: Exclude<CorpusName, 'fortunes'>,
  opts: { model: string; root?: string; log?: (line: string) => void },
): Promise<{ files: string[]; examples: number }> {
  const layout = corpusLayout(corpus);
  const text = findCorpusFiles(corpus, 'bytes', opts.root ? [opts.root] : languageSearchRoots());
  const dir = path.dirname(text.train);
  const sp = await loadSentencePiece(opts.model);
  const written: string[] = [];
  let examples = 0;
  for (const split of ['train', 'test'] as const) {
    const from = text[split];
    const name = layout.files['32k'][split];
    if (!from || !name) continue;
    const to = path.join(dir, name);
    const records = readCorpusFile(from, layout.format);
    const fd = fs.openSync(`${to}.tmp`, 'w');
    try {
      let lines: string[] = [];
      for (let i = 0; i < records.length; i++) {
        lines.push(sp.encodeIds(records.text(i)).join(' '));
        if (lines.length === 10000 || i === records.length - 1) {
          fs.writeSync(fd, lines.join('\n') + '\n');
          lines = [];
        }
        if (opts.log && (i + 1) % 1000000 === 0) opts.log(`  ${split}: ${i + 1} of ${records.length} examples tokenized`);
      }
    } finally {
      fs.closeSync(fd);
    }
    examples += records.length;
    fs.renameSync(`${to}.tmp`, to);
    written.push(to);
  }
  return { files: written, examples };
}
