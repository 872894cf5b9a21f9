"""Plotly figures built from API data. Pure functions of plain dicts, so tests can check them."""

from __future__ import annotations

import statistics
from collections import defaultdict

import plotly.graph_objects as go

TRAINING_CURVES = ("train_loss", "clean_acc", "robust_acc")


def training_curves(metrics: list[dict]) -> go.Figure:
    """Per-epoch curves of one job: training loss on the left axis, accuracies on the right
    (other metrics, such as the learning rate or epoch seconds, stay in the job's metrics)."""
    fig = go.Figure()
    names = [n for n in (*TRAINING_CURVES, "train_acc") if any(m["name"] == n for m in metrics)]
    for name in names:
        points = sorted((m["step"], m["value"]) for m in metrics if m["name"] == name)
        axis = "y2" if name.endswith("_acc") else "y"
        fig.add_trace(
            go.Scatter(x=[p[0] for p in points], y=[p[1] for p in points], name=name, mode="lines+markers", yaxis=axis)
        )
    fig.update_layout(
        xaxis_title="epoch",
        yaxis_title="loss",
        height=360,
        yaxis2={"title": "accuracy", "overlaying": "y", "side": "right", "range": [0, 1]},
        margin={"t": 30, "b": 40},
    )
    return fig


def robustness_curves(models: list[dict]) -> go.Figure:
    """Robust accuracy against ε, one line per model (its stored curve)."""
    fig = go.Figure()
    for m in models:
        curve = (m.get("summary") or {}).get("curve") or []
        fig.add_trace(
            go.Scatter(
                x=[p["eps"] for p in curve], y=[p["robust_acc"] for p in curve], mode="lines+markers", name=m["name"]
            )
        )
    fig.update_layout(
        xaxis_title="ε (L∞)", yaxis_title="robust accuracy", yaxis_range=[0, 1], height=380, margin={"t": 30, "b": 40}
    )
    return fig


def accuracy_robustness(models: list[dict]) -> go.Figure:
    """Clean accuracy across, robust accuracy up: one faint point per model and, per activation,
    the mean with ± one standard deviation in both directions (Xie et al.'s figure)."""
    by_activation: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for m in models:
        s = m.get("summary") or {}
        if "clean_acc" in s and "robust_acc" in s:
            by_activation[m["activation"]].append((s["clean_acc"], s["robust_acc"]))
    fig = go.Figure()
    for activation, points in sorted(by_activation.items()):
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="markers",
                opacity=0.35,
                name=f"{activation} (runs)",
                legendgroup=activation,
                showlegend=False,
                marker={"size": 7},
            )
        )
        sx = statistics.stdev(xs) if len(xs) > 1 else 0.0
        sy = statistics.stdev(ys) if len(ys) > 1 else 0.0
        fig.add_trace(
            go.Scatter(
                x=[statistics.fmean(xs)],
                y=[statistics.fmean(ys)],
                mode="markers",
                name=f"{activation} (n={len(xs)})",
                legendgroup=activation,
                error_x={"type": "data", "array": [sx]},
                error_y={"type": "data", "array": [sy]},
                marker={"size": 13, "symbol": "diamond"},
            )
        )
    # Accuracies live in [0, 1]: fixed axes, or Plotly's autorange pads markers and error bars past 1.
    accuracy_axis = {"range": [0, 1], "tickformat": ".0%"}
    fig.update_layout(
        xaxis={"title": "clean accuracy", **accuracy_axis},
        yaxis={"title": "robust accuracy", **accuracy_axis},
        height=420,
        margin={"t": 30, "b": 40},
    )
    return fig


def top_k(probabilities: list[float], classes: list[str], k: int = 5) -> list[tuple[str, float]]:
    order = sorted(range(len(probabilities)), key=lambda i: -probabilities[i])[:k]
    names = classes if len(classes) == len(probabilities) else [str(i) for i in range(len(probabilities))]
    return [(names[i], probabilities[i]) for i in order]


def top_k_bar(probabilities: list[float], classes: list[str], title: str, k: int = 5) -> go.Figure:
    """The k most probable classes, the most probable on top."""
    pairs = top_k(probabilities, classes, k)[::-1]
    fig = go.Figure(
        go.Bar(
            x=[p for _, p in pairs],
            y=[n for n, _ in pairs],
            orientation="h",
            text=[f"{p:.1%}" for _, p in pairs],
            textposition="auto",
        )
    )
    fig.update_layout(
        title=title,
        xaxis_title="probability",
        xaxis_range=[0, 1],
        height=300,
        yaxis={"type": "category"},
        margin={"t": 40, "b": 40},
    )
    return fig


def class_histogram(classes: list[str], drawn: list[int], kept: list[int]) -> go.Figure:
    """A generated dataset's images per class: drawn from the diffusion model, and kept by its filter."""
    fig = go.Figure([go.Bar(x=classes, y=drawn, name="drawn"), go.Bar(x=classes, y=kept, name="kept")])
    fig.update_layout(barmode="group", yaxis_title="images", height=320, margin={"t": 30, "b": 40})
    return fig


def evaluation_curves(evaluation: dict) -> go.Figure:
    """One evaluation's robust accuracy against ε: the fixed-ε ensemble at each radius it ran, and
    beside it FMN's minimal-norm curve when the evaluation has one (in the same norm)."""
    fig = go.Figure()
    curve = evaluation.get("curve") or []
    fig.add_trace(
        go.Scatter(
            x=[p["eps"] for p in curve], y=[p["robust_acc"] for p in curve], mode="lines+markers", name="ensemble"
        )
    )
    min_norm = evaluation.get("min_norm")
    if min_norm:
        fig.add_trace(
            go.Scatter(
                x=[p["eps"] for p in min_norm["curve"]],
                y=[p["robust_acc"] for p in min_norm["curve"]],
                mode="lines+markers",
                line={"dash": "dash"},
                name=f"FMN minimal norms ({min_norm['norm']}, {min_norm['steps']} steps)",
            )
        )
    norm = {"linf": "L∞", "l2": "L2", "l1": "L1"}.get(evaluation.get("norm", "linf"), "")
    layout = {"yaxis_range": [0, 1], "height": 340, "margin": {"t": 30, "b": 40}}
    fig.update_layout(xaxis_title=f"ε ({norm})", yaxis_title="robust accuracy", **layout)
    return fig


def certification_curves(certification: dict) -> go.Figure:
    """Certified accuracy against the L2 radius, with the empirical attack's accuracy on the same
    smoothed classifier above it (the certificate is a lower bound of it)."""
    curve = certification.get("curve") or []
    fig = go.Figure()
    radii, certified = [p["radius"] for p in curve], [p["certified_acc"] for p in curve]
    fig.add_trace(go.Scatter(x=radii, y=certified, mode="lines+markers", name="certified"))
    empirical = [p for p in curve if p.get("empirical_acc") is not None]
    if empirical:
        fig.add_trace(
            go.Scatter(
                x=[p["radius"] for p in empirical],
                y=[p["empirical_acc"] for p in empirical],
                mode="lines+markers",
                line={"dash": "dash"},
                name="empirical (APGD + EOT, judged by PREDICT)",
            )
        )
    fig.update_layout(
        xaxis_title="radius (L2)", yaxis_title="accuracy", yaxis_range=[0, 1], height=340, margin={"t": 30, "b": 40}
    )
    return fig
