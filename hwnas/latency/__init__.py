"""Measured latency: a timing harness, lookup tables (LUTs), CPU profiles, fidelity.

Taught in: notebooks/04_latency_lut.

The chapter's predictor is a sum over the layers of a table measured once per
target,

    LAT(a) = sum_i LUT(o_i, d_i)

(``o_i`` the operation of layer ``i``, ``d_i`` its input dimensions); for
parallel branches the slowest path counts, and for a soft choice of operations
(DARTS/FBNet) the expected latency is the softmax-weighted sum of the table,
which is differentiable in the architecture weights (:func:`expected_latency`).

How the table is made faithful to whole models
----------------------------------------------
* Same modules: each entry times the module the model runs
  (:func:`hwnas.model.build_layer` for layers, the model's ``Head`` for heads)
  on a contiguous float32 input of the shape it receives in the model. Skip
  layers are timed whole (main branch, shortcut and add run one after another
  in eager PyTorch). The stem and the head are in the table too.
* Harness (:func:`time_callable`), told how to time by one frozen
  :class:`TimingSpec` (passes, time per callable, rep limits, warm-up,
  estimator, round-robin group, seed; presets for the uses that differ):
  fixed thread count (restored after), ``torch.inference_mode``, warm-up calls (oneDNN builds its kernels on the
  first call of a shape), the garbage collector off (re-enabled after, also on
  errors), one ``perf_counter_ns`` pair per call with the cost of timing an
  empty call subtracted; repetitions adapt to the op's speed so that about the
  same time is spent on every entry; median, p90, p99, min and mean kept.
* In context, not in a loop of itself: an op called again and again on the
  same input finds caches and branch predictors primed for it, and runs
  5-40% faster than inside a model (small ops and heads most). The table is
  therefore timed round-robin: groups of different ops, each timed call
  preceded by a call of another op, as a layer follows another layer.
* Drift: other processes and clock changes move timings by tens of percent
  over seconds on a shared machine. Every entry is timed in several short
  bursts spread over the whole build (shuffled passes), so table entries and
  whole models see the same mix of quiet and disturbed moments. Interference
  only ever slows a call down, so the table's default estimate is ``min``, the
  fastest call: what the op costs when nothing disturbs it, and the figure that
  reproduces. On this project's shared 2-core machine (pass medians of one
  model differing 1.7-2.1x), a second timing of the same 200 models agreed with
  the first within ±10% for 93-99% of them with ``min``, 85-99% with
  ``best_median`` (the median of the quietest burst) and 30-97% with the
  pooled ``median``; the benchmark prints this repeatability beside the
  fidelity of all three. ``Timing`` keeps the median, p90 and p99 too: tail
  latency against an SLA is a question about those, not about the table.
* Whole-model overhead: ``TradingNet.forward`` checks the input and loops in
  Python, and the head meets its input in another state than in the table.
  Layers of one model also share caches that isolated timings do not see, a
  cost that grows with the work. Both are calibrated on models drawn from the
  space (128 by default; never the models used to judge the table), timed
  inside the same passes: a robust line ``measured = overhead + scale * sum
  of entries``. The
  profile's table holds the entries times ``scale`` and the overhead under
  ``OpSpec.overhead(batch)``, so it predicts ``overhead + sum of layers``.
* Fidelity (:func:`validate`) times whole models with the same harness and
  compares, beside a FLOPs-only baseline; models passed as ``validation`` to
  :func:`build_lut_detailed` are timed inside the table's passes, so both sides
  see the same machine conditions. :func:`compare_with_flops` does all of it in
  one call (each model timed twice in the table's passes: the second timing is
  the noise floor) and says whether the table beats the FLOPs fit on acc10 and
  Spearman; chapters 04 and 11 assert it.

Layout: :mod:`~hwnas.latency.spec` (how to time: :class:`TimingSpec`),
:mod:`~hwnas.latency.timing` (the harness), :mod:`~hwnas.latency.ops`
(the module each key stands for), :mod:`~hwnas.latency.lut` (building the
table), :mod:`~hwnas.latency.cpu` (CPU profiles), :mod:`~hwnas.latency.coverage`
(what a profile lacks, measured on demand), :mod:`~hwnas.latency.expected`
(soft architectures), :mod:`~hwnas.latency.fidelity` (whole-model checks) and
:mod:`~hwnas.latency.compare` (the table against FLOPs, same models, same passes).
Every timed callable is made by a :class:`~hwnas.runtime.Runtime` (``runtime=``
keyword, eager PyTorch by default); every timing function takes ``timing=`` a
:class:`TimingSpec` instead of loose keywords, and a measured profile records
it in ``conditions["timing"]``.
"""

from .compare import Comparison, compare_with_flops, spread_archs, within
from .coverage import extend_profile, missing_keys
from .cpu import (
    EDGE_MEMORY_BUDGET,
    MOBILE_BUDGET_LIMIT,
    profile_cpu,
    profile_cpu_edge,
    profile_cpu_server,
    runtime_suffix,
)
from .expected import candidate_latencies, expected_latency, expected_latency_from_weights, masked_softmax
from .fidelity import FidelityReport, flops_baseline, measure_models, validate
from .lut import (
    SERVER_MEMORY_BUDGET,
    LUTBuild,
    LUTOptions,
    build_lut,
    build_lut_detailed,
    calibration_archs,
    model_callable,
    whole_or_branches,
)
from .ops import op_module
from .spec import DEFAULT_ESTIMATOR, ESTIMATORS, Estimator, TimingSpec, check_estimator, timing_from_options
from .timing import (
    Timing,
    load_average,
    measure_conditions,
    null_call_ns,
    peak_flops_measured,
    progress_bar,
    run_passes,
    time_callable,
    time_module,
    time_round_robin,
)

__all__ = [
    "Comparison",
    "DEFAULT_ESTIMATOR",
    "EDGE_MEMORY_BUDGET",
    "ESTIMATORS",
    "Estimator",
    "FidelityReport",
    "LUTBuild",
    "LUTOptions",
    "MOBILE_BUDGET_LIMIT",
    "SERVER_MEMORY_BUDGET",
    "Timing",
    "TimingSpec",
    "build_lut",
    "build_lut_detailed",
    "calibration_archs",
    "candidate_latencies",
    "check_estimator",
    "compare_with_flops",
    "expected_latency",
    "extend_profile",
    "expected_latency_from_weights",
    "flops_baseline",
    "load_average",
    "masked_softmax",
    "measure_conditions",
    "measure_models",
    "missing_keys",
    "model_callable",
    "null_call_ns",
    "op_module",
    "peak_flops_measured",
    "profile_cpu",
    "profile_cpu_edge",
    "profile_cpu_server",
    "progress_bar",
    "run_passes",
    "runtime_suffix",
    "spread_archs",
    "time_callable",
    "time_module",
    "time_round_robin",
    "timing_from_options",
    "validate",
    "whole_or_branches",
    "within",
]
