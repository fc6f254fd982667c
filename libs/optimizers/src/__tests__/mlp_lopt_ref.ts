/**
 * A float64 JavaScript MLPLOpt update, following the reference's `learned_optimizers/mlp_lopt.py`
 * (the update of the optimizer that `MLPLOpt.opt_fn` returns), for checking the tensor code.
 */
export const DECAYS = [0.1, 0.5, 0.9, 0.99, 0.999, 0.9999];
export const TAUS = [1, 3, 10, 30, 100, 300, 1000, 3000, 10000, 30000, 100000];

export interface RefLayer {
  w: number[][]; // [in][out]
  b: number[];
}

/** One leaf: p, g flat arrays; m flat [size*6] (channel last). Returns new p and new m. */
export function refMLPLOptLeafUpdate(
  p: number[],
  g: number[],
  m: number[],
  iteration: number,
  layers: RefLayer[],
  expMult: number,
  stepMult: number,
): { p: number[]; m: number[]; step: number[] } {
  const S = p.length;
  const newM = m.map((v, idx) => {
    const j = idx % 6;
    const e = Math.floor(idx / 6);
    return DECAYS[j] * v + (1 - DECAYS[j]) * g[e];
  });
  const feats: number[][] = [];
  for (let e = 0; e < S; e++) feats.push([g[e], p[e], ...newM.slice(e * 6, e * 6 + 6)]);
  for (let c = 0; c < 8; c++) {
    let ms = 0;
    for (let e = 0; e < S; e++) ms += feats[e][c] ** 2;
    const scale = 1 / Math.sqrt(1e-5 + ms / S);
    for (let e = 0; e < S; e++) feats[e][c] *= scale;
  }
  const time = TAUS.map((t) => Math.tanh(iteration / t - 1));
  const newP: number[] = [];
  const steps: number[] = [];
  for (let e = 0; e < S; e++) {
    let h = [...feats[e], ...time];
    layers.forEach((l, li) => {
      const out = l.b.map((b, o) => {
        let s = b;
        for (let i = 0; i < h.length; i++) s += h[i] * l.w[i][o];
        return s;
      });
      h = li === layers.length - 1 ? out : out.map((x) => Math.max(0, x));
    });
    const step = h[0] * Math.exp(h[1] * expMult) * stepMult;
    steps.push(step);
    newP.push(p[e] - step);
  }
  return { p: newP, m: newM, step: steps };
}
