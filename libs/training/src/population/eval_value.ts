/**
 * `population.value: eval`: the value a member reports is its continuous-evaluation chief's result
 * for the checkpoint it just wrote (the reference's `run_eval_chief.write_result_to_population`
 * with `log_to_population_tag`).
 */
import type { SavedCheckpoint } from '../checkpoints';
import type { WrittenGroup } from '../continuous_eval/chief';

/**
 * Turns a member's eval chief results into the values it reports (`population.value: eval`): pass
 * `onWritten` to the chief (`hostEvalChief({ onWritten })`), then `valueOf(saved)` asks the chief
 * to take the checkpoint now (`poll(true)`) and resolves with `metrics[tag]` of its evaluation
 * (the reference's `write_result_to_population` with `log_to_population_tag`).
 */
export class EvalValueWaiter {
  private readonly waiters = new Map<number, Array<{ resolve: (g: WrittenGroup) => void; reject: (e: Error) => void }>>();
  private readonly written = new Map<number, WrittenGroup>();
  private failure: Error | null = null;

  constructor(readonly tag: string) {}

  /** The chief's `onWritten` hook. */
  readonly onWritten = (g: WrittenGroup): void => {
    this.written.set(g.index, g);
    const ws = this.waiters.get(g.index) ?? [];
    this.waiters.delete(g.index);
    ws.forEach((w) => w.resolve(g));
  };

  /** The chief's evaluation failed for good (ContinuousEval's `onFailure`): every wait, now or later, rejects with `error`. */
  readonly fail = (error: Error): void => {
    this.failure ??= error;
    for (const ws of this.waiters.values()) ws.forEach((w) => w.reject(this.failure!));
    this.waiters.clear();
  };

  /** The value of the checkpoint `saved` (its `params_<n>`), once the chief has evaluated it. */
  async valueOf(saved: SavedCheckpoint, poll: (force?: boolean) => Promise<unknown>): Promise<number> {
    const m = saved.paramsPath ? /params_(\d+)$/.exec(saved.paramsPath) : null;
    if (!m) throw new Error(`population.value 'eval': checkpoint at step ${saved.step} has no params_<n> for the eval chief`);
    const index = Number(m[1]);
    const done = new Promise<WrittenGroup>((resolve, reject) => {
      const g = this.written.get(index);
      if (g) return resolve(g);
      if (this.failure) return reject(this.failure);
      this.waiters.set(index, [...(this.waiters.get(index) ?? []), { resolve, reject }]);
    });
    done.catch(() => undefined); // rejected while poll runs: surfaces at the await below
    await poll(true);
    const g = await done;
    this.written.delete(index);
    if (!(this.tag in g.metrics)) throw new Error(`population.evalTag: no tag '${this.tag}' in the eval chief's results (tags: ${Object.keys(g.metrics).join(', ')})`);
    return g.metrics[this.tag];
  }
}
