"""The search contract: ``SearchProblem`` answers "within budget?" and "what is minimised?" for the loop,
the result, the strategies and the pipeline; the batch reaches them; over-budget members are marked."""

from __future__ import annotations

import inspect
import json
import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
from test_search_loop import stub_evaluator
from test_strategies import tiny_setup

import hwnas
from hwnas import Architecture, LayerSpec
from hwnas.pipeline.run import CHOICE_RULES, TAIL_FACTOR_MAX, _choose, bounded_tail
from hwnas.search import (
    Evaluation,
    Evaluator,
    FrontMember,
    Metrics,
    SearchProblem,
    SearchResult,
    SearchRun,
    minimize,
    search,
)
from hwnas.search.random_search import RandomSearch
from hwnas.search.scaling import ScalingStrategy
from hwnas.targets import gpu_profile


@pytest.fixture(scope="module")
def setup() -> tuple:
    return tiny_setup()


def _m(score: float, latency: float, memory: int = 1_000, feasible: bool = True) -> Metrics:
    return Metrics(score=score, latency_us=latency, memory_bytes=memory, flops=1, params=1, feasible=feasible)


def _result(problem: SearchProblem, metrics: list[Metrics]) -> SearchResult:
    rng = np.random.default_rng(0)
    history = [Evaluation(i, problem.space.sample(rng), m, False, 0.0) for i, m in enumerate(metrics)]
    return SearchResult(history, problem, SearchRun("random"))


# ---------------------------------------------------------------- the two questions


def test_within_budget_and_objectives_are_the_problems_answers(setup: tuple) -> None:
    _, space, profile, _ = setup
    problem = SearchProblem(space, profile, 100.0, 5, memory_budget_bytes=2_000)
    assert problem.within_budget(_m(0.3, 100.0, 2_000))
    assert not problem.within_budget(_m(0.3, 100.5, 10))
    assert not problem.within_budget(_m(0.3, 50.0, 2_001))
    assert not problem.within_budget(_m(0.3, 50.0, 10, feasible=False))
    assert problem.objectives(_m(0.3, 50.0, 500)) == [-0.3, 50.0, 500.0]  # the one negation
    assert problem.objectives(_m(0.3, 50.0, 500), normalised=True) == [-0.3, 0.5, 0.25]
    assert problem.budget_excess(_m(0.3, 150.0, 500)) == pytest.approx([0.5, -0.75])
    assert problem.objective_names == ("-score", "latency_us", "memory_bytes")
    assert SearchProblem(space, profile, 100, 5).latency_budget_us == 100.0
    with pytest.raises(ValueError, match="latency_budget_us"):
        SearchProblem(space, profile, -1.0, 5)


@dataclass(frozen=True, eq=False)
class _Strict(SearchProblem):
    """A problem with its own rule: within budget only below 0.7 of the latency budget (stricter, reachable)."""

    def within_budget(self, metrics: Metrics) -> bool:
        return metrics.feasible and metrics.latency_us <= self.latency_budget_us * 0.7


@dataclass(frozen=True, eq=False)
class _ScoreOnly(SearchProblem):
    """A problem minimising the negated score alone (latency is no objective)."""

    @property
    def objective_names(self) -> tuple[str, ...]:
        return ("-score",)

    def objectives(self, metrics: Metrics, normalised: bool = False) -> list[float]:
        return [-metrics.score]


def test_the_result_front_and_best_ask_the_problem(setup: tuple) -> None:
    _, space, profile, _ = setup
    metrics = [_m(0.5, 90.0), _m(0.4, 40.0), _m(0.2, 10.0)]
    plain = _result(SearchProblem(space, profile, 100.0, 3, constraint="hard"), metrics)
    assert len(plain) == 3 and plain.best().metrics.score == 0.5
    strict = _result(_Strict(space, profile, 100.0, 3, constraint="hard"), metrics)
    assert [m.score for _, m in strict] == [0.4, 0.2]  # the subclass's rule decided
    score_only = _result(_ScoreOnly(space, profile, 100.0, 3), metrics)
    assert [m.score for _, m in score_only] == [0.5]


def test_the_loop_asks_the_problem(setup: tuple) -> None:
    task, space, profile, budget = setup
    problem = _Strict(space, profile, budget, 12, task=task, constraint="hard")
    result = minimize(problem, "random", evaluator=stub_evaluator(setup), progress=False,
                      strategy_options={"max_tries": 2_000})
    assert isinstance(result.problem, _Strict)
    assert result and all(m.latency_us <= budget * 0.7 for _, m in result)
    # random's rejection sampling asked the same rule: every draw within half the budget
    assert all(s.metrics.latency_us <= budget * 0.7 for s in result.history)


def test_random_rejection_sampling_asks_the_problem(setup: tuple) -> None:
    _, space, profile, budget = setup
    asked = []

    @dataclass(frozen=True, eq=False)
    class Counting(SearchProblem):
        def within_budget(self, metrics: Metrics) -> bool:
            asked.append(metrics.latency_us)
            return metrics.latency_us <= self.latency_budget_us

    strategy = RandomSearch(Counting(space, profile, budget, 10, constraint="hard"), seed=1)
    archs = strategy.ask(5)
    assert asked and all(profile.predict_latency(a) <= budget for a in archs)


def test_the_pipeline_choice_asks_the_problem(setup: tuple) -> None:
    _, space, profile, _ = setup
    metrics = [_m(0.5, 90.0), _m(0.4, 40.0), _m(math.nan, 5.0, feasible=False)]
    result = _result(_Strict(space, profile, 100.0, 3, constraint="hard"), metrics)
    arch, chosen, within = _choose(result)
    assert within and chosen.score == 0.4 and arch == result.history[1].arch
    over = _result(SearchProblem(space, profile, 1.0, 3, constraint="hard"), metrics)
    arch, chosen, within = _choose(over)  # nothing within: the fastest trained candidate, said so
    assert not within and chosen.latency_us == 40.0 and "lowest predicted latency" in CHOICE_RULES[within]


# ---------------------------------------------------------------- the batch reaches the strategies


def _gpu_base() -> Architecture:
    return Architecture((LayerSpec("fc", 8, 32), LayerSpec("conv", 32, 32, kernel_size=5),
                         LayerSpec("conv", 32, 64, kernel_size=5)), 8, 32)


def test_scaling_chooses_its_family_at_the_problems_batch_of_256() -> None:
    profile = gpu_profile(measure=False)
    problem = SearchProblem(hwnas.SearchSpace.gpu(), profile, 150.0, 16, batch=256, constraint="hard")
    strategy = ScalingStrategy(problem, seed=0, base=_gpu_base())
    while archs := strategy.ask(4):
        for arch in archs:
            m = problem.predict(arch)
            strategy.tell(arch, replace(m, score=0.1 + 1e-4 * m.params))
    assert strategy.family
    for _, phi, budget, arch in strategy.family:
        # per batch of 256: the budget holds at the batch the search is for, not at batch 1
        assert profile.predict_latency(arch, 256) <= budget, (phi, budget)
    largest = max(strategy.family, key=lambda f: f[1])[3]
    assert profile.predict_latency(largest, 1) < profile.predict_latency(largest, 256)


def test_the_batch_reaches_the_problem_and_the_evaluator(setup: tuple) -> None:
    task, space, profile, budget = setup
    evaluator = Evaluator(task, profile, batch=4)
    evaluator.trainer = stub_evaluator(setup).trainer
    result = search(space, profile, budget * 4, 4, strategy="random", evaluator=evaluator, progress=False)
    assert result.problem.batch == 4
    assert all(s.metrics.latency_us == profile.predict_latency(s.arch, 4) for s in result.history)
    by_keyword = search(space, profile, budget, 3, strategy="random", evaluator=stub_evaluator(setup),
                        batch=1, progress=False)
    assert by_keyword.problem.batch == 1
    with pytest.raises(ValueError, match="batch"):
        minimize(SearchProblem(space, profile, budget, 3, task=task, batch=8), "random", evaluator=evaluator,
                 progress=False)


# ---------------------------------------------------------------- the soft constraint, marked


def test_a_soft_front_over_budget_is_marked_everywhere(setup: tuple, tmp_path: Path) -> None:
    _, space, profile, _ = setup
    problem = SearchProblem(space, profile, 30.0, 3)  # soft: the front may hold over-budget models
    result = _result(problem, [_m(0.5, 90.0), _m(0.4, 40.0), _m(0.2, 35.0)])
    assert len(result) == 3 and not result.within_budget
    assert all(isinstance(m, FrontMember) and m.over_budget for m in result)
    best = result.best()
    assert best is not None and best.over_budget and best.metrics.score == 0.5
    assert result.hypervolume() == 0.0
    text = result.summary()
    assert "NOTHING MET THE BUDGET" in text and text.count(" OVER ") == 3
    data = json.loads(result.to_json())
    assert [f["within_budget"] for f in data["front"]] == [False, False, False]
    assert "OVER BUDGET" in repr(best)
    mixed = _result(problem, [_m(0.5, 90.0), _m(0.4, 40.0), _m(0.2, 25.0)])
    assert mixed.best().metrics.score == 0.2 and mixed.best().within_budget  # prefers within budget
    assert "NOTHING MET" not in mixed.summary()
    arch, metrics = mixed.best()  # still a pair
    assert metrics.latency_us == 25.0


def test_result_json_round_trip_holds_the_problem(setup: tuple, tmp_path: Path) -> None:
    _, space, profile, _ = setup
    problem = SearchProblem(space, profile, 30.0, 3, memory_budget_bytes=5_000, batch=2, constraint="hard")
    result = _result(problem, [_m(0.5, 20.0), _m(0.4, 10.0), _m(0.6, 40.0)])
    back = SearchResult.load(result.save(tmp_path / "r.json"))
    assert back.problem.to_dict() == problem.to_dict() and back.run == result.run
    assert back.problem.space == space and back.problem.batch == 2
    assert back.problem.profile.predict_latency(result.history[0].arch) == profile.predict_latency(
        result.history[0].arch)
    assert list(back) == list(result) and back.hypervolume() == result.hypervolume()
    assert not hasattr(back, "info")
    with pytest.raises(ValueError, match="path"):
        SearchResult.load(tmp_path / "missing.json")
    gpu = replace(problem, profile=gpu_profile(measure=False))
    assert type(SearchProblem.from_dict(gpu.to_dict()).profile) is type(gpu.profile)


# ---------------------------------------------------------------- the public form


def test_hwnas_search_shows_its_real_signature() -> None:
    signature = inspect.signature(hwnas.search)
    assert list(signature.parameters)[:4] == ["search_space", "hardware", "latency_budget", "num_iterations"]
    assert signature.parameters["strategy"].kind is inspect.Parameter.KEYWORD_ONLY
    assert signature == inspect.signature(search)
    assert "search(search_space" in (hwnas.search.__doc__ or "")


# ---------------------------------------------------------------- the tail, bounded


def test_the_tail_factor_is_bounded_and_its_spread_shown() -> None:
    quiet = bounded_tail({"ratios": [2.1, 2.6, 3.0], "conditions": {"load_avg_1min": 0.3}})
    assert quiet["factor"] == 3.0 and quiet["spread"] == [2.1, 3.0] and not quiet["too_noisy"]
    loaded = bounded_tail({"ratios": [30.0, 245.0, 80.0], "conditions": {}})
    assert loaded["factor"] == TAIL_FACTOR_MAX and loaded["measured_factor"] == 245.0 and loaded["too_noisy"]
    assert "too noisy" in loaded["line"]
    disagree = bounded_tail({"ratios": [1.5, 7.0], "conditions": {}})
    assert disagree["too_noisy"] and disagree["factor"] == 7.0 and "disagree" in disagree["line"]
