"""How an evaluation is shown wherever one appears (a job's page, a model's page): its protocol,
clean and robust accuracy, which attack broke how many points, and the checks' flags; and the
leaderboard of registered classifiers, one row per model and protocol."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard.charts import certification_curves, evaluation_curves

CHECK_NAMES = {
    "randomized": "randomized model (two passes differ)",
    "outputs_probabilities": "outputs probabilities, not logits",
    "zero_gradient_share": "share of points with zero gradient",
    "black_box_share": "share broken only by the black-box attack",
}


def breakdown_rows(evaluation: dict) -> pd.DataFrame:
    """One row per attack, in the order they ran: points broken, robust accuracy after it."""
    return pd.DataFrame(
        [
            {"attack": b["attack"], "points broken": b["broken"], "robust accuracy after": b["robust_acc"]}
            for b in evaluation.get("breakdown") or []
        ]
    )


def show_evaluation(evaluation: dict, key: str) -> None:
    """The protocol, the two accuracies, the breakdown, the checks and any warnings."""
    st.markdown(f"**Robust accuracy under:** {evaluation['protocol_label']}")
    c1, c2 = st.columns(2)
    c1.metric("clean accuracy", f"{evaluation['clean_acc']:.1%}")
    c2.metric("robust accuracy", f"{evaluation['robust_acc']:.1%}")
    if evaluation.get("breakdown"):
        st.dataframe(
            breakdown_rows(evaluation),
            hide_index=True,
            key=f"{key}_breakdown",
            column_config={"robust accuracy after": st.column_config.NumberColumn(format="percent")},
        )
    checks = evaluation.get("checks") or {}
    if checks:
        shown = {CHECK_NAMES[k]: v for k, v in checks.items() if k in CHECK_NAMES and v is not None}
        st.caption(
            " · ".join(
                f"{name}: {value:.1%}" if isinstance(value, float) else f"{name}: {'yes' if value else 'no'}"
                for name, value in shown.items()
            )
        )
    for warning in evaluation.get("warnings") or []:
        st.warning(warning)
    if len(evaluation.get("curve") or []) > 2 or evaluation.get("min_norm"):
        st.plotly_chart(evaluation_curves(evaluation), width="stretch", key=f"{key}_curves")


def show_certification(certification: dict, key: str) -> None:
    """Randomized smoothing's result: its settings, the smoothed classifier's accuracy and
    abstentions, and the certified (with the empirical) accuracy per L2 radius."""
    st.markdown(f"**Certified by randomized smoothing:** {certification['label']}")
    c1, c2 = st.columns(2)
    c1.metric("smoothed classifier's accuracy", f"{certification['clean_acc']:.1%}")
    c2.metric("abstained", f"{certification['abstain_rate']:.1%}")
    st.dataframe(
        pd.DataFrame(certification["curve"]).rename(
            columns={"certified_acc": "certified accuracy", "empirical_acc": "empirical accuracy"}
        ),
        hide_index=True,
        key=f"{key}_table",
        column_config={
            "certified accuracy": st.column_config.NumberColumn(format="percent"),
            "empirical accuracy": st.column_config.NumberColumn(format="percent"),
        },
    )
    st.plotly_chart(certification_curves(certification), width="stretch", key=f"{key}_chart")


def leaderboard_rows(models: list[dict]) -> pd.DataFrame:
    """Every registered classifier under every protocol it was evaluated with, and under every
    certification at each of its radii (L2; `robust` is then the empirical attack's accuracy on
    the smoothed classifier, `certified` the certificate's, `clean` the smoothed classifier's)."""
    rows = []
    for m in models:
        summary = m.get("summary") or {}
        recipe = m.get("recipe") or {}
        model = {
            "model": m["name"],
            "dataset": m["dataset"],
            "method": recipe.get("method", "–"),
            "activation": m["activation"],
        }
        for e in summary.get("evaluations") or []:
            rows.append(
                {
                    **model,
                    "norm": e["norm"],
                    "eps": e["eps"],
                    "clean": e["clean_acc"],
                    "robust": e["robust_acc"],
                    "certified": None,
                    "protocol": e["protocol_label"],
                    "images": e["images"],
                    "model id": m["id"],
                }
            )
        for c in summary.get("certifications") or []:
            for point in c["curve"]:
                if point["radius"] == 0:
                    continue
                rows.append(
                    {
                        **model,
                        "norm": "l2",
                        "eps": point["radius"],
                        "clean": c["clean_acc"],
                        "robust": point.get("empirical_acc"),
                        "certified": point["certified_acc"],
                        "protocol": c["label"],
                        "images": c["images"],
                        "model id": m["id"],
                    }
                )
    columns = [
        "model",
        "dataset",
        "method",
        "activation",
        "norm",
        "eps",
        "clean",
        "robust",
        "certified",
        "protocol",
        "images",
        "model id",
    ]
    table = pd.DataFrame(rows, columns=columns)
    return table.sort_values(["robust", "certified"], ascending=False, na_position="last", ignore_index=True)
