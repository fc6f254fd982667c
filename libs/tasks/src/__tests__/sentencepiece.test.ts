/**
 * Sentencepiece tokenization for the 32k language datasets: the wasm tokenizer gives the ids that
 * seqio's `SentencePieceVocabulary.encode` gives with the same model (test/golden/sentencepiece.json,
 * a 300-piece model trained on the fortunes by tools/reference/golden_sentencepiece.py, with the
 * T5 model's normalisation and id layout); `tokenizeCorpus` writes a corpus's `.ids` files that
 * the 32k datasets then serve; missing inputs are named.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { clearDatasetCache, cropOrPad, encodeRecords, languageDatasets, loadSentencePiece, tokenizeCorpus } from '../index';
import { useTestBackend } from './helpers';

const GOLDEN = JSON.parse(fs.readFileSync(path.join(__dirname, '../../../../test/golden/sentencepiece.json'), 'utf8')) as {
  model: string;
  texts: Array<{ text: string; ids: number[] }>;
};
const MODEL = path.join(__dirname, '../../../..', GOLDEN.model);

beforeAll(async () => {
  await useTestBackend();
});

test('the ids of every golden text equal seqio SentencePieceVocabulary.encode', async () => {
  const sp = await loadSentencePiece(MODEL);
  for (const { text, ids } of GOLDEN.texts) expect([text, sp.encodeIds(text)]).toEqual([text, ids]);
  // the normalisation (nmt_nfkc) and unknown pieces are exercised: the full-width text and ✓
  expect(GOLDEN.texts.some((t) => t.ids.includes(2))).toBe(true);
});

test('encodeRecords: one line of ids per record, in the record format of the corpus', async () => {
  const sp = await loadSentencePiece(MODEL);
  const [a, b] = GOLDEN.texts.filter((t) => t.text && !t.text.includes('\n'));
  const bytes = new TextEncoder().encode(`${a.text}\n\n${b.text}\n`);
  expect(encodeRecords(bytes, 'lines', sp)).toBe(`${a.ids.join(' ')}\n${b.ids.join(' ')}\n`);
  expect(encodeRecords(new Uint8Array(0), 'lines', sp)).toBe('');
});

describe('tokenizeCorpus and the 32k datasets', () => {
  let root: string;
  const old = process.env.LOPT_DATA_DIR;
  beforeAll(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'lopt-sp-'));
    fs.mkdirSync(path.join(root, 'tiny_shakespeare'));
    // paragraphs (blank-line separated), one with an inner newline
    const paragraphs = GOLDEN.texts.filter((t) => t.text.trim() !== '').map((t) => t.text.trim());
    fs.writeFileSync(path.join(root, 'tiny_shakespeare', 'input.txt'), paragraphs.join('\n\n') + '\n');
    process.env.LOPT_DATA_DIR = root;
    clearDatasetCache();
  });
  afterAll(() => {
    if (old === undefined) delete process.env.LOPT_DATA_DIR;
    else process.env.LOPT_DATA_DIR = old;
    fs.rmSync(root, { recursive: true, force: true });
  });

  test('writes input.ids, one paragraph per line, and the 32k dataset serves exactly those ids', async () => {
    const r = await tokenizeCorpus('tiny_shakespeare', { model: MODEL });
    const file = path.join(root, 'tiny_shakespeare', 'input.ids');
    expect(r).toEqual({ files: [file], examples: 6 });
    const sp = await loadSentencePiece(MODEL);
    const lines = fs.readFileSync(file, 'utf8').trimEnd().split('\n');
    expect(lines.length).toBe(6);
    // the inner newline stays inside its paragraph's example
    const inner = GOLDEN.texts.find((t) => t.text.startsWith('A line'))!;
    expect(lines).toContain(sp.encodeIds(inner.text).join(' '));
    // every row the 32k stream serves is one example's ids, cropped or padded to L + 1
    const L = 8;
    const want = new Set(lines.map((l) => Array.from(cropOrPad(Int32Array.from(l.split(' ').map(Number)), L + 1)).join(',')));
    const batch = languageDatasets('tiny_shakespeare', '32k', 4, L).split('train').next() as { obs: tf.Tensor; target: tf.Tensor };
    const obs = batch.obs.arraySync() as number[][];
    const target = batch.target.arraySync() as number[][];
    obs.forEach((o, i) => expect(want.has([...o, target[i][L - 1]].join(','))).toBe(true));
    tf.dispose([batch.obs, batch.target]);
  });

  test('a missing model or corpus is named', async () => {
    await expect(tokenizeCorpus('tiny_shakespeare', { model: path.join(root, 'nope.model') })).rejects.toThrow(/sentencepiece model not found: .*nope\.model/);
    await expect(tokenizeCorpus('lm1b', { model: MODEL })).rejects.toThrow(/lm1b \(bytes\) not found: looked for lm1b\/\{train\.txt, test\.txt\}/);
  });
});
