"""Golden traces of the reference's population controller and its three mutators.

Run in the reference environment (learned_optimization and its dependencies):

    $REF_DIR/venv/bin/python tools/reference/golden_population.py

(REF_DIR is ~/.cache/lopt-reference). Writes test/golden/population.json. Nothing here draws a
random number: generation ids come from a counter ("g0", "g1", ... in creation order, patched in
for the module's uuid4 ids) and every mutate_fn is a deterministic function of its arguments and
of how many times it was called, so lopt-ts can replay each scenario and must answer every call
the same way.

Each scenario simulates members with the reference's learner protocol
(outer_train.train_learner / population/examples): every round, each member polls
maybe_get_worker_data with what it runs (generation, step, checkpoint, hyper-parameters), takes
what the controller hands back, trains `every` steps, then calls set_eval with a checkpoint name
and a value computed from its hyper-parameter and step (VALUE below). Recorded: every poll's answer
(null, or hyper-parameter, step, checkpoint, generation), and at the end the active workers and
the whole cache (per generation: step, value, parent, hyper-parameter, checkpoint).

Scenarios:
  wta_mean       WinnerTakeAllGenetic(steps_per_exploit=4), 4 members from [0, 0.5, 1, 1.5],
                 every=2, 12 rounds; mutate_fn p + 0.1*((n mod 5) - 2), n = calls so far
  wta_last       the same with average_over_samples=False, steps_per_exploit=3, 3 members from
                 [2, -1, 0.25], every=1, 10 rounds
  explore        BranchingSingleMachine(mutate_fn, exploit_steps=4, explore_steps=2), one member
                 from 1.0, every=2, 40 rounds; mutate_fn p +/- 0.1/(1+phase_idx)
  fixed_schedule FixedSchedule({0: 1, 10: 2, 30: 3}), one member from 0.5, every=3, 15 rounds
  sync           the reference test test_do_have_to_reload_params' calls (returns as null/not null)
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from golden_common import GOLDEN_DIR, meta  # noqa: E402

from learned_optimization.population import population as pop_mod  # noqa: E402
from learned_optimization.population.mutators import fixed_schedule  # noqa: E402
from learned_optimization.population.mutators import single_worker_explore  # noqa: E402
from learned_optimization.population.mutators import winner_take_all_genetic  # noqa: E402

_gen_counter = [0]


def _make_gen_id():
  g = f"g{_gen_counter[0]}"
  _gen_counter[0] += 1
  return g


pop_mod.make_gen_id = _make_gen_id  # the mutators call population.make_gen_id at call time


def VALUE(meta_param, step, worker):
  return (meta_param - 0.3) ** 2 + 0.01 * ((step * 7 + worker * 3) % 4)


def simulate(mutator, initial, every, rounds):
  _gen_counter[0] = 0
  controller = pop_mod.PopulationController(initial, mutator)
  k = len(initial)
  gen = [None] * k
  step = [0] * k
  params = [None] * k
  hp = [None] * k
  polls = []
  for r in range(rounds):
    for i in range(k):
      new = controller.maybe_get_worker_data(i, gen[i], step[i], params[i], hp[i])
      if new is None:
        polls.append(None)
      else:
        polls.append({"meta_params": new.meta_params, "step": new.step, "params": new.params,
                      "generation_id": new.generation_id})
        gen[i], step[i], params[i], hp[i] = new.generation_id, new.step, new.params, new.meta_params
      step[i] += every
      params[i] = f"w{i}r{r}s{step[i]}"
      controller.set_eval(i, gen[i], step[i], params[i], VALUE(hp[i], step[i], i))
  active = [{"meta_params": a.meta_params, "step": a.step, "params": a.params,
             "generation_id": a.generation_id} for a in controller._active_workers]
  cache = {}
  for g, d in controller._cached.items():
    cache[g] = [{"step": c.step, "value": c.value, "parent": list(c.parent) if c.parent else None,
                 "meta_params": c.meta_params, "params": c.params} for c in d.values()]
  return {"polls": polls, "active": active, "cache": cache}


def main():
  out = {}

  calls = [0]

  def wta_mutate(p):
    n = calls[0]
    calls[0] += 1
    return p + 0.1 * ((n % 5) - 2)

  calls[0] = 0
  out["wta_mean"] = simulate(
      winner_take_all_genetic.WinnerTakeAllGenetic(wta_mutate, steps_per_exploit=4),
      [0.0, 0.5, 1.0, 1.5], every=2, rounds=12)
  calls[0] = 0
  out["wta_last"] = simulate(
      winner_take_all_genetic.WinnerTakeAllGenetic(wta_mutate, steps_per_exploit=3,
                                                   average_over_samples=False),
      [2.0, -1.0, 0.25], every=1, rounds=10)

  def explore_mutate(p, direction, phase_idx):
    return p + (0.1 if direction == "pos" else -0.1) / (1 + phase_idx)

  out["explore"] = simulate(
      single_worker_explore.BranchingSingleMachine(explore_mutate, 4, 2), [1.0], every=2,
      rounds=40)
  out["fixed_schedule"] = simulate(
      fixed_schedule.FixedSchedule({0: 1.0, 10: 2.0, 30: 3.0}), [0.5], every=3, rounds=15)

  # test_do_have_to_reload_params: which polls answer null.
  _gen_counter[0] = 0
  calls[0] = 0
  c = pop_mod.PopulationController(
      [1.0, 1.0, 1.0], winner_take_all_genetic.WinnerTakeAllGenetic(wta_mutate, 2))
  first = c.maybe_get_worker_data(0, None, 0, None, None)
  g, s = first.generation_id, first.step
  seq = [(0, g), (0, g), (0, "some other id"), (0, g), (1, g)]
  out["sync"] = {"first": first.generation_id,
                 "calls": [[w, gid, c.maybe_get_worker_data(w, gid, s, None, 1.0) is None]
                           for w, gid in seq]}

  out["_meta"] = meta("tools/reference/golden_population.py")
  path = os.path.join(GOLDEN_DIR, "population.json")
  with open(path, "w") as f:
    json.dump(out, f, separators=(",", ":"))
  print("wrote", os.path.relpath(path))


if __name__ == "__main__":
  main()
