"""The dashboard's figures, checked as data."""

from __future__ import annotations

import statistics

import pytest

from dashboard.charts import accuracy_robustness, top_k, top_k_bar, training_curves
from tests.dashboard.fake_api import classifier


def test_training_curves_draw_loss_and_accuracies_only():
    metrics = [
        {"step": s, "name": n, "value": v}
        for s in (2, 1)
        for n, v in (("train_loss", 1 / s), ("robust_acc", 0.1 * s), ("lr", 0.01), ("epoch_seconds", 30.0))
    ]
    fig = training_curves(metrics)
    traces = {t.name: t for t in fig.data}
    assert set(traces) == {"train_loss", "robust_acc"}
    assert list(traces["robust_acc"].x) == [1, 2] and traces["robust_acc"].yaxis == "y2"


def test_scatter_shows_mean_and_std_per_activation():
    models = [
        classifier("a", "relu", 0.80, 0.60),
        classifier("b", "relu", 0.84, 0.64),
        classifier("c", "silu", 0.9, 0.7),
    ]
    means = {t.name: t for t in accuracy_robustness(models).data if "(n=" in t.name}
    relu = means["relu (n=2)"]
    assert relu.x[0] == pytest.approx(0.82) and relu.y[0] == pytest.approx(0.62)
    assert relu.error_y.array[0] == pytest.approx(statistics.stdev([0.60, 0.64]))
    assert means["silu (n=1)"].error_x.array[0] == 0.0


def test_scatter_axes_span_the_accuracies_zero_to_one():
    fig = accuracy_robustness([classifier("a", "relu", 0.98, 0.02), classifier("b", "relu", 0.5, 0.9)])
    for axis in (fig.layout.xaxis, fig.layout.yaxis):
        assert tuple(axis.range) == (0, 1) and axis.tickformat == ".0%"  # not Plotly's autorange past 1


def test_top_k_orders_classes_and_keeps_names_categorical():
    probs = [0.1, 0.5, 0.05, 0.35] + [0.0] * 6
    assert top_k(probs, [str(i) for i in range(10)], 3) == [("1", 0.5), ("3", 0.35), ("0", 0.1)]
    fig = top_k_bar(probs, [str(i) for i in range(10)], "before", k=3)
    assert list(fig.data[0].y) == ["0", "3", "1"] and fig.layout.yaxis.type == "category"  # best on top


def test_an_evaluations_curves_and_a_certifications_are_drawn_with_their_companions():
    from dashboard.charts import certification_curves, evaluation_curves
    from tests.dashboard.fake_api import certification

    evaluation = {"norm": "l2", "curve": [{"eps": 0.0, "robust_acc": 0.9}, {"eps": 0.5, "robust_acc": 0.4}]}
    assert [t.name for t in evaluation_curves(evaluation).data] == ["ensemble"]
    evaluation["min_norm"] = {"norm": "l2", "steps": 50, "curve": [{"eps": 0.0, "robust_acc": 0.9}]}
    fig = evaluation_curves(evaluation)
    assert [t.name for t in fig.data] == ["ensemble", "FMN minimal norms (l2, 50 steps)"]
    assert fig.layout.xaxis.title.text == "ε (L2)" and tuple(fig.layout.yaxis.range) == (0, 1)
    fig = certification_curves(certification())
    assert list(fig.data[0].y) == [0.75, 0.6, 0.4, 0.1] and list(fig.data[1].y) == [0.8, 0.7, 0.5, 0.2]


@pytest.mark.parametrize(
    "label, want",
    [
        ("digits", {"name": "digits", "folder": None, "dataset_id": None}),
        ("uploaded:abc123", {"name": "uploaded", "folder": None, "dataset_id": "abc123"}),
        ("folder:pets", {"name": "folder", "folder": "pets", "dataset_id": None}),
    ],
)
def test_an_evaluation_form_points_its_data_at_the_models_own(label, want):
    """Before, the form set the registry label as the data's name: `uploaded:<id>` is no name."""
    from dashboard.common import model_data

    data = model_data({"name": "fashion-mnist", "test_subset": 500}, {"dataset": label})
    assert data == {**want, "test_subset": 500}
