/**
 * Reference `population/mutators/single_worker_explore.py` (`BranchingSingleMachine`): one member
 * explores its hyper-parameters by branching. From a branch checkpoint it trains `exploreSteps`
 * with the current hyper-parameters (center), then again from the branch point with them moved
 * one way, then the other way; it then continues from the end of the best of the three (lowest
 * value at branch step + exploreSteps) for `exploitSteps`, and branches again.
 *
 * Kept from the reference: the phase after the center one is called `explore_neg` but runs
 * `mutateFn(meta, 'pos')`, and `explore_pos` runs `mutateFn(meta, 'neg')`; the scores are
 * compared in the order center, neg, pos. The member must report a value at exactly branch step +
 * exploreSteps in each of the three branches. One change: when all three values are NaN (the
 * reference's `nanargmin` raises), the center branch is kept.
 */
import { type ActiveWorker, type Cache, type Checkpoint, type GenerationId, type Mutator, type MutatorContext, addGeneration } from '../population';

/** Phase of {@link BranchingSingleMachine}: the three explore branches, then exploit. */
export type ExplorePhase = 'explore_center' | 'explore_neg' | 'explore_pos' | 'exploit';

/**
 * State of {@link BranchingSingleMachine} (reference `single_worker_explore.py`): the three branch
 * generations, the branch checkpoint, the phase and where exploiting started.
 */
export interface BranchingState {
  neg: GenerationId | null;
  pos: GenerationId | null;
  center: GenerationId | null;
  branchCheckpoint: Checkpoint | null;
  startExploit: number;
  phase: ExplorePhase;
  phaseIdx: number;
}

/** `mutate_fn(meta_params, direction, phase_idx)`: deterministic. */
export type DirectedMutateFn = (metaParams: any, direction: 'pos' | 'neg', phaseIdx: number) => any;

/** Steps per explore branch and per exploit phase of {@link BranchingSingleMachine}. */
export interface BranchingSingleMachineOptions {
  exploitSteps: number;
  exploreSteps: number;
}

/**
 * The branching explore/exploit mutator for one member (reference
 * `population/mutators/single_worker_explore.py`, `BranchingSingleMachine`).
 */
export class BranchingSingleMachine implements Mutator<BranchingState> {
  readonly name = 'BranchingSingleMachine';

  constructor(
    private readonly mutateFn: DirectedMutateFn,
    readonly opts: BranchingSingleMachineOptions,
  ) {
    for (const k of ['exploitSteps', 'exploreSteps'] as const) {
      if (!Number.isSafeInteger(opts[k]) || opts[k] < 0) throw new RangeError(`BranchingSingleMachine: ${k} must be an integer >= 0, got ${opts[k]}`);
    }
  }

  init(): BranchingState {
    return { neg: null, pos: null, center: null, branchCheckpoint: null, startExploit: 0, phase: 'explore_center', phaseIdx: 0 };
  }

  update(prev: BranchingState, currentWorkers: readonly ActiveWorker[], cache: Cache, ctx: MutatorContext): [BranchingState, ActiveWorker[]] {
    const state: BranchingState = { ...prev };
    if (currentWorkers.length !== 1) throw new RangeError(`BranchingSingleMachine drives a single member, the population has ${currentWorkers.length}`);
    const steps = cache.get(currentWorkers[0].generationId);
    if (!steps || !steps.size) return [state, [...currentWorkers]];

    // A new generation from `from` with `meta`, starting at `from`'s step and weights.
    const branch = (from: Checkpoint, meta: unknown): ActiveWorker[] => {
      const worker: ActiveWorker = { params: from.params, metaParams: meta, generationId: ctx.makeGenId(), step: from.step };
      addGeneration(cache, worker, from, ctx.now());
      return [worker];
    };

    if (state.branchCheckpoint === null) {
      // (the reference reads the generation's step 0: the initial population's checkpoint)
      state.branchCheckpoint = steps.get(0) ?? steps.first()!;
      state.center = state.branchCheckpoint.generationId;
    }
    const last = steps.last()!;

    if (state.phase === 'exploit') {
      if (last.step - state.startExploit < this.opts.exploitSteps) return [state, [...currentWorkers]];
      // Exploitation done: branch again from here, starting with the center.
      const next = branch(last, last.metaParams);
      state.branchCheckpoint = last;
      state.center = next[0].generationId;
      state.phase = 'explore_center';
      return [state, next];
    }

    const b = state.branchCheckpoint;
    if (last.step - b.step < this.opts.exploreSteps) return [state, [...currentWorkers]];
    if (state.phase === 'explore_center') {
      const next = branch(b, this.mutateFn(b.metaParams, 'pos', state.phaseIdx));
      state.neg = next[0].generationId;
      state.phase = 'explore_neg';
      return [state, next];
    }
    if (state.phase === 'explore_neg') {
      const next = branch(b, this.mutateFn(b.metaParams, 'neg', state.phaseIdx));
      state.pos = next[0].generationId;
      state.phase = 'explore_pos';
      return [state, next];
    }
    if (state.phase !== 'explore_pos') throw new Error(`BranchingSingleMachine: unknown phase '${state.phase}'`);
    // All three branches explored: keep the best.
    const at = b.step + this.opts.exploreSteps;
    const branches = (['center', 'neg', 'pos'] as const).map((name) => {
      const d = cache.get(state[name]!);
      const ck = d?.get(at);
      if (!d || !ck) throw new Error(`BranchingSingleMachine: the ${name} branch has no evaluation at step ${at} (steps: ${d?.keys().join(', ') ?? 'none'})`);
      return { d, score: ck.value };
    });
    state.center = state.neg = state.pos = null;
    state.startExploit = last.step;
    state.phase = 'exploit';
    state.phaseIdx += 1;
    let best = 0;
    branches.forEach((br, i) => {
      const s = br.score ?? NaN;
      const bs = branches[best].score ?? NaN;
      if (!Number.isNaN(s) && (Number.isNaN(bs) || s < bs)) best = i;
    });
    const bestCk = branches[best].d.last()!;
    return [state, branch(bestCk, bestCk.metaParams)];
  }
}
