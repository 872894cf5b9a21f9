"""Models: the registry with its summary metrics, filters, and links to the jobs."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.contract.names import DATASETS, MODEL_KINDS
from dashboard.common import api, call, job_link, side_by_side_json
from dashboard.evaluation_view import show_certification, show_evaluation


def model_rows(items: list[dict]) -> pd.DataFrame:
    rows = []
    for m in items:
        s = m.get("summary") or {}
        quality = s.get("quality") or {}
        rows.append(
            {
                "name": m["name"],
                "kind": m["kind"],
                "dataset": m["dataset"],
                "architecture": m["architecture"],
                "activation": m["activation"],
                "clean_acc": s.get("clean_acc"),
                "robust_acc": s.get("robust_acc"),
                "protocol": s.get("protocol_label"),
                "eps": s.get("eps"),
                "frechet_distance": quality.get("frechet_distance"),
                "created": m["created_at"][:19].replace("T", " "),
                "id": m["id"],
                "job": m["job_id"],
            }
        )
    return pd.DataFrame(rows)


def render() -> None:
    st.title("Models")
    c1, c2, c3 = st.columns(3)
    kind = c1.selectbox("Kind", ["all", *MODEL_KINDS], key="md_kind")
    dataset = c2.selectbox("Dataset", ["all", *DATASETS], key="md_ds")
    activation = c3.text_input("Activation", key="md_act")
    page = call(
        api().models,
        kind=None if kind == "all" else kind,
        dataset=None if dataset == "all" else dataset,
        activation=activation or None,
        limit=200,
    )
    if page is None:
        return
    if not page["items"]:
        st.info("No models match: train one under New experiment.")
        return
    st.caption(f"{page['total']} models")
    st.dataframe(
        model_rows(page["items"]),
        hide_index=True,
        width="stretch",
        column_config={
            "clean_acc": st.column_config.NumberColumn(format="percent"),
            "robust_acc": st.column_config.NumberColumn(format="percent"),
        },
    )
    chosen = st.selectbox(
        "Details", page["items"], key="md_choice", format_func=lambda m: f"{m['name']} · {m['id'][:8]}"
    )
    if chosen["job_id"]:
        job_link(chosen["job_id"], f"The job that made it ({chosen['job_id'][:8]})")
    for i, evaluation in enumerate((chosen["summary"] or {}).get("evaluations") or []):
        with st.expander(f"Evaluation {i + 1}: {evaluation['protocol_label']}", expanded=i == 0):
            show_evaluation(evaluation, key=f"model_evaluation_{i}")
    for i, certification in enumerate((chosen["summary"] or {}).get("certifications") or []):
        with st.expander(f"Certification {i + 1}: {certification['label']}"):
            show_certification(certification, key=f"model_certification_{i}")
    side_by_side_json(("Summary", chosen["summary"]), ("Recipe", chosen["recipe"]))


render()
