"""What one run of the pipeline found: :class:`PipelineResult`, its JSON and its summary.

Taught in: notebooks/12_capstone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..architecture import Architecture
    from ..search.result import SearchResult
    from .plan import TargetPlan

__all__ = ["PipelineResult"]

_SLA_RUNTIMES = {"executorch": "ExecuTorch (XNNPACK)", "onnxruntime": "ONNX Runtime", "eager": "eager PyTorch"}
"""How the summary names the runtime an SLA was measured in."""


@dataclass(eq=False)
class PipelineResult:
    """Everything one :func:`run_pipeline` found, with the stage times and the files written.

    ``scores`` holds the retrained chosen model's primary metric on ``"val"`` and
    ``"test"``; ``baselines`` each baseline's test score, parameters and measured
    latency; ``latency`` the chosen model's prediction and measured fastest calls;
    ``verdict`` the pass/fail on the target with its basis (FAIL with the reason
    when nothing met the budget on this machine now); ``tail`` the p99 /
    fastest-call factor (with its spread when measured); ``search.problem`` what
    was searched, its ``latency_budget_us`` the plan's budget / factor that the
    search held the table's latency to; ``choice`` the rule the model was chosen
    by and whether it met that budget.

    Taught in: notebooks/12_capstone.
    """

    target: str
    plan: TargetPlan
    data_source: str
    profile_label: str
    profile_kind: str
    recipe: str
    search: SearchResult
    arch: Architecture
    search_score: float
    scores: dict[str, float]
    baselines: dict[str, dict[str, Any]]
    latency: dict[str, float | None]
    memory_bytes: int
    export: dict[str, Any]
    precisions: list[dict[str, Any]]
    precision: str
    sla: dict[str, Any]
    verdict: dict[str, Any]
    stage_seconds: dict[str, float]
    tail: dict[str, Any]
    choice: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    scoring: dict[str, Any] = field(default_factory=dict)
    """How the search scored candidates: ``fixed_point`` (``float``, ``qat``, ``ptq``), ``width`` (bits,
    None in float) and ``description`` (:meth:`~hwnas.pipeline.plan.TargetPlan.scoring`)."""

    @property
    def test_score(self) -> float:
        """The retrained chosen model's score on the held-out test period."""
        return self.scores["test"]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (the SLA's raw samples are left out; the search is in its own file)."""
        from ..search.base import nan_to_none

        data = {k: getattr(self, k) for k in ("target", "data_source", "profile_label", "profile_kind",
                                              "recipe", "search_score", "scores", "baselines", "latency",
                                              "memory_bytes", "export", "precisions", "precision", "sla",
                                              "verdict", "stage_seconds", "tail", "choice", "outputs",
                                              "scoring")}
        data["plan"] = vars(self.plan)
        data["problem"] = {k: v for k, v in self.search.problem.to_dict().items() if k not in ("space", "profile")}
        data["arch"] = self.arch.to_dict()
        data["front"] = [{"arch": member.arch.to_dict(), "metrics": member.metrics.to_dict(),
                          "within_budget": member.within_budget} for member in self.search]
        data["evaluations"] = len(self.search.history)
        return dict(nan_to_none(data))

    def row(self) -> dict[str, Any]:
        """One line of the closing table: architecture, score, latency, memory, pass/fail."""
        from ..cost import count_params

        return {"target": self.target, "architecture": self.arch.label(), "params": count_params(self.arch),
                "val": self.scores["val"], "test": self.test_score,
                "lstm test": self.baselines["lstm"]["test"], "persistence test": self.baselines["persistence"]["test"],
                "predicted us": self.latency["predicted_us"], "p50 us": self.sla.get("p50_us"),
                "p99 us": self.sla.get("p99_us"), "memory B": self.memory_bytes, "precision": self.precision,
                "budget us": self.plan.latency_budget_us,
                "table budget us": self.search.problem.latency_budget_us,
                "pass": self.verdict["passed"]}

    def _predicted_basis(self) -> str:
        """The predicted latency's basis: modelled (an analytical model) or a table measured here, with
        its runtime, estimator and precision."""
        profile = self.search.problem.profile
        precision = getattr(profile.precision, "value", profile.precision)
        if profile.is_model:
            return f"modelled, not measured: {self.profile_label}, precision {precision}"
        conditions = dict(profile.conditions)
        estimator = (conditions.get("timing") or {}).get("estimator", "min")
        return (f"a lookup table measured on this CPU in {conditions.get('runtime', 'eager')}, estimator "
                f"{estimator}, precision {precision}: {self.profile_label}")

    def summary(self) -> str:
        """A few lines: data, profile, the choice, scores beside the baselines, SLA, time per stage."""
        b = self.baselines
        total = sum(self.stage_seconds.values())
        stages = ", ".join(f"{k} {v:.1f} s ({100 * v / total:.0f}%)" for k, v in self.stage_seconds.items())
        lines = [
            f"target {self.target}: {self.plan.rule}",
            f"data: {self.data_source}",
            f"profile: {self.profile_label} ({self.profile_kind})",
            f"tail: {self.tail['summary']}; the search held the table to "
            f"{self.search.problem.latency_budget_us:.3g} µs (the p99 budget {self.plan.latency_budget_us:g} µs"
            f" / {self.tail['factor']:.2f})",
            f"search: {self.search.run.strategy}, {len(self.search.history)} evaluations; chosen "
            f"{self.arch.label()} (validation {self.search_score:+.4f} with the proxy recipe) by "
            f"{self.choice.get('rule', 'the best score within the budgets')}; candidates scored in "
            f"{self.scoring.get('description', self.plan.scoring())}",
            f"retrained ({self.recipe}): validation {self.scores['val']:+.4f}, test {self.test_score:+.4f}",
            "test beside baselines (same recipe): " + ", ".join(
                f"{k} {v['test']:+.4f}" for k, v in b.items()),
            f"latency predicted: {_fmt(self.latency['predicted_us'])} µs ({self._predicted_basis()})",
            f"latency measured here, side by side (one call of each model in turn, so each finds its caches "
            f"cold: slower than the SLA's dedicated calls below): this CPU, 1 thread, FP32, fastest call: "
            f"eager PyTorch "
            f"{_fmt(self.latency['eager_us'])} µs, ONNX Runtime {_fmt(self.latency['ort_us'])} µs "
            f"(LSTM {_fmt(b['lstm'].get('ort_us'))} µs, MLP {_fmt(b['mlp'].get('ort_us'))} µs in ONNX Runtime)",
            f"latency SLA measured here: "
            f"{_SLA_RUNTIMES.get(str(self.sla.get('conditions', {}).get('runtime')), 'ONNX Runtime')}"
            f", 1 thread, {self.precision}, p50 "
            f"{_fmt(self.sla.get('p50_us'))} µs, p{self.sla.get('percentile', 99):g} {_fmt(self.sla.get('p99_us'))}"
            f" µs against {self.plan.latency_budget_us:g} µs"
            + ("" if self.target == "cpu" else f" (a stand-in: not the {self.target} verdict's basis)"),
            f"verdict: {'PASS' if self.verdict['passed'] else 'FAIL'} (basis: {self.verdict['basis']})"
            + ("" if self.verdict["passed"] else ": " + "; ".join(self.verdict["reasons"])),
            f"time {total:.1f} s: {stages}",
        ]
        return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:,.1f}"
