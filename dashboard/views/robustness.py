"""Robustness: curves of the chosen models, the accuracy–robustness scatter, the study table,
purification defenses' three numbers side by side, and generated datasets."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard.charts import accuracy_robustness, class_histogram, robustness_curves
from dashboard.common import api, call, model_label, show_image

WAY_NAMES = {
    "non_adaptive": "non-adaptive (attack the classifier, then purify)",
    "bpda": "BPDA + EOT",
    "adaptive": "adaptive (exact gradients + EOT)",
}

STUDY_REFRESH_SECONDS = 10


@st.fragment(run_every=STUDY_REFRESH_SECONDS)
def study_table() -> None:
    """The chosen study's table and scatter, reloaded while its runs finish."""
    studies = call(api().studies) or []
    if not studies:
        st.info("No studies yet: start a SAT study under New experiment.")
        return
    chosen = st.selectbox(
        "Study",
        studies,
        key="rb_study",
        format_func=lambda s: f"{s['name']} · {s['preset']} · {s['created_at'][:16]} · {s['id'][:8]}",
    )
    study = call(api().study, chosen["id"])
    if study is None:
        return
    st.caption("jobs: " + ", ".join(f"{n} {status}" for status, n in sorted(study["jobs"].items())))
    if study["table"]:
        st.caption("Robust accuracy under: " + "; ".join(study.get("protocols") or ["(not recorded)"]))
        st.dataframe(pd.DataFrame(study["table"]), hide_index=True, width="stretch")
    else:
        st.info("No run of this study has finished yet.")
    jobs = call(api().jobs, study=chosen["id"], status="succeeded", limit=200) or {"items": []}
    ids = {j["result"]["model_id"] for j in jobs["items"] if j.get("result")}
    models = [m for m in all_classifiers() if m["id"] in ids]
    if models:
        st.plotly_chart(accuracy_robustness(models), width="stretch", key="study_scatter")


def all_classifiers() -> list[dict]:
    page = call(api().models, kind="classifier", limit=200)
    return page["items"] if page else []


def defense_rows(models: list[dict]) -> list[dict]:
    """One row per evaluation of a defended model: its three robust accuracies and the lowest."""
    rows = []
    for m in models:
        for e in (m.get("summary") or {}).get("evaluations", []):
            if not e.get("defense"):
                continue
            ways = e["defense"]
            row = {"model": model_label(m), "t*": ways["purifier"]["t_star"], "protocol": e["protocol_label"]}
            row["clean"] = e["clean_acc"]
            row |= {WAY_NAMES[w]: ways[w]["robust_acc"] for w in WAY_NAMES}
            row["robust accuracy (the lowest)"] = e["robust_acc"]
            rows.append(row)
    return rows


def defenses(models: list[dict]) -> None:
    rows = defense_rows([m for m in models if m.get("architecture") == "purified"])
    if not rows:
        st.info("No evaluated purification defense yet: register one under New experiment, then evaluate it.")
        return
    st.caption("The same images, three ways of attacking: the defense's robust accuracy is the lowest.")
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


def generated() -> None:
    catalogue = call(api().datasets) or {"uploaded": []}
    made = [d for d in catalogue["uploaded"] if d.get("provenance")]
    if not made:
        st.info("No generated dataset yet: generate one under New experiment.")
        return
    chosen = st.selectbox("Dataset", made, format_func=lambda d: f"{d['name']} · {d['id'][:8]}", key="rb_generated")
    p = chosen["provenance"]
    st.caption(
        f"{p['sampler']}-{p['steps']} (η = {p['eta']:g}), guidance {p['guidance_scale']:g}, seed {p['seed']}, "
        f"filter: {p['filter']['mode'] if p['filter'] else 'none'}; diffusion model {p['diffusion_model_id'][:8]}"
        + (f"; Fréchet distance {q['frechet_distance']:.1f} ({q['samples']} images)" if (q := p.get("quality")) else "")
    )
    left, right = st.columns(2)
    with left:
        if p.get("grid_artifact_id"):
            show_image(f"/v1/artifacts/{p['grid_artifact_id']}", "samples, one row per class", width=320)
    figure = class_histogram(chosen["classes"], p["drawn_per_class"], p["kept_per_class"])
    right.plotly_chart(figure, width="stretch", key="generated_histogram")


def render() -> None:
    st.title("Robustness")
    models = all_classifiers()
    if not models:
        st.info("No classifiers in the registry yet: train one under New experiment.")
        return
    st.subheader("Robustness curves")
    chosen = st.multiselect("Models", models, default=models[:4], format_func=model_label, key="rb_models")
    if chosen:
        labels = {(m.get("summary") or {}).get("curve_protocol_label") for m in chosen} - {None}
        st.caption("Each model's stored curve, measured with: " + ("; ".join(sorted(labels)) or "FGSM + PGD"))
        st.plotly_chart(robustness_curves(chosen), width="stretch", key="curves")
    st.subheader("Accuracy against robustness")
    st.caption(
        "One faint point per model, its robust accuracy under its own protocol (see Leaderboard); per "
        "activation the mean ± one standard deviation."
    )
    st.plotly_chart(accuracy_robustness(models), width="stretch", key="scatter")
    st.subheader("Study table")
    study_table()
    st.subheader("Purification defenses")
    defenses(models)
    st.subheader("Generated datasets")
    generated()


render()
