/**
 * From the results of one checkpoint's evaluation jobs to the scalars the chief writes (reference
 * `run_eval_chief.py`, `DEFAULT_METRICS_FN`), under the reference's names (the chief prefixes them
 * with `<chiefName>/`):
 *
 * - per job (`metrics_fn_for_each_task`): `<name>/nonorm_avg_loss`, `<name>/nonorm_min_loss`,
 *   `<name>/nonorm_last_loss` and the `norm_` ones, from the job's `eval/train/loss` curve;
 * - over all jobs (`metrics_fn_for_aggregate_(un)normalized_losses`): `train/norm_avg_loss`,
 *   `train/norm_min_loss`, `train/norm_last_loss`, `train/nonorm_*`, and `outer_valid/...` when the
 *   jobs evaluated that split: the mean over jobs of each job's mean / min / last;
 * - `aux_mean|aux_min|aux_last/<split>/<aux>` for the tasks' auxiliary values (`metrics_fn_for_aux`);
 * - `<name>/time` (seconds the job trained, `metrics_fn_for_time`) and `checkpoint` (the index n of
 *   `params_<n>`, `metrics_fn_for_checkpoint`).
 *
 * A job is one seed (one task trained), so the reference's `[n_tasks, n_evals]` arrays are one row
 * here: "last" is the evaluation after the last inner step, "avg" the mean over all evaluations —
 * `lopt eval`'s "final" and "mean" of that seed.
 */
import type { EvalTaskConfig } from './evaluation_set';

/** What an eval worker sends back for one job. Curves are JSON-safe (a NaN is stored as null). */
export interface EvalJobResult {
  /** The outer step of the θ evaluated (the checkpoint's `step`). */
  step: number;
  /** Seconds the job took. */
  totalTime: number;
  /** `eval/xs`, `eval/<split>/loss`, `eval/<split>/loss_normalized`, `eval/<split>/<aux>`. */
  curves: Record<string, Array<number | null>>;
  /** Set when the job failed for good (its task could not be built, θ did not fit, ...). */
  error?: string;
}

const num = (v: number | null) => (v === null ? NaN : v);
const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
const finite = (v: number[]) => v.filter((x) => !Number.isNaN(x));
const nanMean = (v: number[]) => (finite(v).length ? mean(finite(v)) : NaN);
const nanMin = (v: number[]) => (finite(v).length ? Math.min(...finite(v)) : NaN);
const last = (v: number[]) => v[v.length - 1];

/** The reference's `_mean_mean`, `_mean_min`, `_mean_last` over jobs. */
function aggregate(curves: number[][]): { avg: number; min: number; last: number } {
  return { avg: mean(curves.map(nanMean)), min: mean(curves.map(nanMin)), last: mean(curves.map(last)) };
}

const LOSS_KEYS = new Set(['loss', 'loss_normalized']);

/** Every metric of one finished checkpoint (without the chief-name prefix). */
export function evalMetrics(checkpointIndex: number, tasks: readonly EvalTaskConfig[], results: readonly EvalJobResult[]): Record<string, number> {
  const ok = results.map((r, i) => ({ r, t: tasks[i] })).filter((x) => !x.r.error);
  const m: Record<string, number> = {};
  const put = (k: string, v: number) => {
    if (k in m) throw new Error(`continuous eval: duplicate metric key '${k}'`);
    m[k] = v;
  };
  const curve = (r: EvalJobResult, k: string) => (r.curves[k] ?? []).map(num);

  for (const { r, t } of ok) {
    const v = curve(r, 'eval/train/loss');
    const nv = curve(r, 'eval/train/loss_normalized');
    // onp.mean (not nanmean) for avg, as the reference's per-task metric
    put(`${t.name}/nonorm_avg_loss`, mean(v));
    put(`${t.name}/nonorm_min_loss`, nanMin(v));
    put(`${t.name}/nonorm_last_loss`, last(v));
    put(`${t.name}/norm_avg_loss`, mean(nv));
    put(`${t.name}/norm_min_loss`, nanMin(nv));
    put(`${t.name}/norm_last_loss`, last(nv));
  }
  if (ok.length) {
    for (const split of ['train', 'outer_valid']) {
      if (!ok.every(({ r }) => r.curves[`eval/${split}/loss`])) continue;
      for (const [kind, key] of [['norm', 'loss_normalized'], ['nonorm', 'loss']] as const) {
        const a = aggregate(ok.map(({ r }) => curve(r, `eval/${split}/${key}`)));
        put(`${split}/${kind}_avg_loss`, a.avg);
        put(`${split}/${kind}_min_loss`, a.min);
        put(`${split}/${kind}_last_loss`, a.last);
      }
      const prefix = `eval/${split}/`;
      const auxNames = Object.keys(ok[0].r.curves)
        .filter((k) => k.startsWith(prefix) && !LOSS_KEYS.has(k.slice(prefix.length)))
        .map((k) => k.slice(prefix.length));
      for (const aux of auxNames) {
        if (!ok.every(({ r }) => r.curves[prefix + aux])) continue;
        const a = aggregate(ok.map(({ r }) => curve(r, prefix + aux)));
        put(`aux_mean/${split}/${aux}`, a.avg);
        put(`aux_min/${split}/${aux}`, a.min);
        put(`aux_last/${split}/${aux}`, a.last);
      }
    }
  }
  for (const { r, t } of ok) put(`${t.name}/time`, r.totalTime);
  put('checkpoint', checkpointIndex);
  return m;
}
