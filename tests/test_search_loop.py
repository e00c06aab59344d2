"""The search loop: bad input, the store, the front, JSON, what strategies may see, task packing."""

from __future__ import annotations

import hashlib
import math
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_strategies import tiny_setup

import hwnas
from hwnas.pareto import dominates
from hwnas.search import (
    Evaluator,
    Metrics,
    SearchResult,
    Strategy,
    architecture_key,
    pack_task,
    search,
    unpack_task,
)
from hwnas.search.evaluator import Trainer, TrainResult


class StubTrainer(Trainer):
    """Deterministic pseudo-scores from the architecture's hash; counts what it trains."""

    calls: list[str] = []

    def __call__(self, arch: hwnas.Architecture) -> TrainResult:
        key = architecture_key(arch)
        StubTrainer.calls.append(key)
        score = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 16 ** 8
        return TrainResult(score, {"pearson": score}, {"pearson": score / 2}, 0.0)


@pytest.fixture(scope="module")
def setup() -> tuple:
    return tiny_setup()


def stub_evaluator(setup: tuple, profile: hwnas.HardwareProfile | None = None) -> Evaluator:
    evaluator = Evaluator(setup[0], profile or setup[2])
    evaluator.trainer = StubTrainer(setup[0])
    StubTrainer.calls = []
    return evaluator


def quick(setup: tuple, n: int = 20, **kw: Any) -> SearchResult:
    _, space, profile, budget = setup
    kw.setdefault("evaluator", stub_evaluator(setup))
    return search(space, profile, budget, n, strategy=kw.pop("strategy", "random"), progress=False, **kw)


def test_bad_input_names_the_argument(setup: tuple, mentions) -> None:
    task, space, profile, budget = setup
    with pytest.raises(ValueError, match="latency_budget"):
        search(space, profile, 0.0, 5, task=task, progress=False)
    with pytest.raises(ValueError, match="num_iterations"):
        search(space, profile, budget, 0, task=task, progress=False)
    with pytest.raises(ValueError, match=mentions("strategy", "'nope'", "random", "evolution")):
        search(space, profile, budget, 5, task=task, strategy="nope", progress=False)
    with pytest.raises(ValueError, match="batch_size"):
        search(space, profile, budget, 5, task=task, batch_size=0, progress=False)
    with pytest.raises(ValueError, match="constraint"):
        search(space, profile, budget, 5, task=task, constraint="firm", progress=False)
    wrong = hwnas.SearchSpace.default(input_features=task.num_features + 1, lookbacks=(32,))
    with pytest.raises(ValueError, match="input_features"):
        search(wrong, profile, budget, 5, task=task, progress=False)
    longer = hwnas.SearchSpace.default(input_features=task.num_features, lookbacks=(64,))
    with pytest.raises(ValueError, match="lookback"):
        search(longer, profile, budget, 5, task=task, progress=False)


def test_front_is_the_non_dominated_set_of_the_history(setup: tuple) -> None:
    result = quick(setup, 40)
    assert len(result.history) == 40 and len(result) >= 1
    trained = [s.metrics for s in result.history if s.metrics.feasible]
    for _, m in result:
        assert not any(dominates((-o.score, o.latency_us), (-m.score, m.latency_us)) for o in trained)
    front_keys = {architecture_key(a) for a, _ in result}
    for s in result.history:  # everything trained and off the front is dominated by a member
        if s.metrics.feasible and architecture_key(s.arch) not in front_keys:
            assert any(dominates((-m.score, m.latency_us), (-s.metrics.score, s.metrics.latency_us))
                       or (m.score, m.latency_us) == (s.metrics.score, s.metrics.latency_us) for _, m in result)
    assert [m.score for _, m in result] == sorted((m.score for _, m in result), reverse=True)
    curve = result.hypervolume_curve()
    assert np.all(np.diff(curve) >= -1e-12) and curve[-1] == pytest.approx(result.hypervolume())
    expected = hwnas.hypervolume(result.objectives()[np.all(result.objectives() < [0, 1], axis=1)], [0, 1])
    assert result.hypervolume() == pytest.approx(expected)


def test_infeasible_candidates_are_recorded_and_never_trained(setup: tuple) -> None:
    small = hwnas.fpga_profile(hwnas.ZU3EG)  # rejects attention and runs out of DSP slices
    _, space, _, budget = setup
    evaluator = stub_evaluator(setup, small)
    result = search(space, small, budget, 30, strategy="random", evaluator=evaluator, progress=False)
    infeasible = [s for s in result.history if not s.metrics.feasible]
    assert infeasible, "the tiny FPGA should reject some candidates"
    for s in infeasible:
        assert s.metrics.reasons and math.isnan(s.metrics.score)
        assert architecture_key(s.arch) not in StubTrainer.calls
    assert all(m.feasible for _, m in result)


def test_store_means_nothing_is_trained_twice(setup: tuple, tmp_path: Path) -> None:
    store = tmp_path / "evals.sqlite"
    first = quick(setup, 16, store=store, seed=1)
    trained_first = list(StubTrainer.calls)
    assert len(trained_first) == len(set(trained_first))
    again = quick(setup, 16, store=store, seed=1)  # the same search: resumed as finished
    assert StubTrainer.calls == [] and again.signature() == first.signature()
    other = quick(setup, 16, store=store, seed=1, strategy="evolution",
                  strategy_options={"population_size": 4, "sample_size": 2})
    assert not set(StubTrainer.calls) & set(trained_first)
    assert sum(s.cached for s in other.history) >= 1  # evolution's random start met random's samples


class Recorder(Strategy):
    """Asks one fixed architecture ``limit`` times, then stops; records what it is told."""

    name = "recorder"

    def __init__(self, problem: Any, *, seed: int = 0, limit: int = 5) -> None:
        super().__init__(problem, seed=seed)
        rng = np.random.default_rng(seed)
        self.arch = problem.space.sample(rng)
        while not problem.profile.is_feasible(self.arch):
            self.arch = problem.space.sample(rng)
        self.limit, self.asked, self.told = limit, 0, []

    def ask(self, n: int = 1) -> list[hwnas.Architecture]:
        k = min(n, self.limit - self.asked)
        self.asked += k
        return [self.arch] * k

    def tell(self, arch: hwnas.Architecture, metrics: Metrics) -> None:
        self.told.append(metrics)

    def state_dict(self) -> dict[str, Any]:
        return {"asked": self.asked}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.asked = state["asked"]


def test_strategy_instance_stops_early_and_never_sees_test_scores(setup: tuple) -> None:
    task, space, profile, budget = setup
    problem = hwnas.search.SearchProblem(space, profile, budget, 10)
    recorder = Recorder(problem, limit=5)
    result = search(space, profile, budget, 10, strategy=recorder, evaluator=stub_evaluator(setup),
                    progress=False, batch_size=2)
    assert len(result.history) == 5  # stopped when ask returned []
    assert len(StubTrainer.calls) == 1  # the same architecture five times: trained once
    assert [s.cached for s in result.history] == [False, True, True, True, True]
    assert all(m.test_scores == {} for m in recorder.told)
    assert result[0][1].test_scores == {"pearson": pytest.approx(result[0][1].score / 2)}
    hidden = search(space, profile, budget, 3, strategy="random", evaluator=stub_evaluator(setup),
                    progress=False, with_test_scores=False)
    assert all(s.metrics.test_scores == {} for s in hidden.history)


def test_result_json_round_trip_and_text(setup: tuple, tmp_path: Path) -> None:
    result = quick(setup, 12, memory_budget=200_000)
    back = SearchResult.from_json(result.to_json())
    assert back.signature() == result.signature() and list(back) == list(result)
    assert back.hypervolume() == result.hypervolume()
    assert result.objectives().shape == (len(result), 3)  # memory is the third objective
    path = result.save(tmp_path / "r.json")
    loaded = SearchResult.load(path)
    assert loaded.run == result.run and loaded.problem.to_dict() == result.problem.to_dict()
    assert "front:" in result.summary() and "random" in repr(result)
    with pytest.raises(ValueError, match="not a search result"):
        SearchResult.from_json('{"format": "other"}')


def test_hard_constraint_front_is_within_budget_and_soft_may_exceed(setup: tuple) -> None:
    _, _, _, budget = setup
    hard = quick(setup, 40, constraint="hard", memory_budget=150_000)
    assert all(m.latency_us <= budget and m.memory_bytes <= 150_000 for _, m in hard)
    soft = quick(setup, 40, strategy_options={"max_tries": 0})
    assert any(m.latency_us > budget for _, m in soft) or soft.hypervolume() <= 1


def test_packed_task_is_small_and_scores_exactly_like_the_full_task(setup: tuple) -> None:
    task, space, _, _ = setup
    packed = pack_task(task)
    full_bytes, packed_bytes = len(pickle.dumps(task)), len(pickle.dumps(packed))
    assert packed_bytes < full_bytes / 4
    rebuilt = unpack_task(pickle.loads(pickle.dumps(packed)))
    for name in ("train", "val", "test"):
        assert rebuilt.subset(name).X.shape == task.subset(name).X.shape
        assert bool((rebuilt.subset(name).X == task.subset(name).X).all())
    arch = space.sample(np.random.default_rng(5))
    direct = hwnas.evaluate_splits(arch, task, 0)
    remote = pickle.loads(pickle.dumps(Trainer(packed, 0)))(arch)
    assert remote.score == direct["val"].score and remote.test_scores == direct["test"].metrics
