"""Attack lab: attack an uploaded image or a test image and see what the attack did."""

from __future__ import annotations

import streamlit as st

from core.contract.names import ATTACKS, NORMS
from dashboard.charts import top_k_bar
from dashboard.common import api, call, choose_model, show_image


def attack_form() -> dict:
    c1, c2, c3, c4 = st.columns(4)
    name = c1.selectbox("Attack", ATTACKS, key="al_attack")
    norm = c2.selectbox("Norm", NORMS, key="al_norm")
    eps = c3.slider("ε", 0.0, 0.3 if norm == "linf" else 3.0, 0.1 if norm == "linf" else 1.0, 0.01, key="al_eps")
    iterative = name not in ("fgsm", "square")  # FGSM takes one step; Square counts queries, not steps
    steps = c4.number_input("Steps", 1, 200, 20, key="al_steps", disabled=not iterative)
    return {
        "name": name,
        "norm": norm,
        "eps": eps,
        "steps": steps if iterative else None,
        "random_start": name != "fgsm",
    }


def show_result(result: dict) -> None:
    classes = result.get("classes") or []
    name = lambda i: classes[i] if i < len(classes) else str(i)  # noqa: E731
    before, after = result["clean"]["prediction"], result["adversarial"]["prediction"]
    verdict = "fooled" if after != result["label"] else "not fooled"
    st.markdown(
        f"**{name(before)}** → **{name(after)}** · true class {name(result['label'])} · the model was "
        f"**{verdict}** · ‖δ‖∞ = {result['linf']:.4f}, ‖δ‖₂ = {result['l2']:.3f}"
    )
    cols = st.columns(3)
    for col, (key, caption) in zip(
        cols,
        [
            ("input_url", "original"),
            ("adversarial_url", "adversarial"),
            ("perturbation_url", "perturbation (amplified)"),
        ],
        strict=True,
    ):
        with col:
            show_image(result[key], caption, width=200)
    left, right = st.columns(2)
    left.plotly_chart(top_k_bar(result["clean"]["probabilities"], classes, "before"), key="before", width="stretch")
    right.plotly_chart(
        top_k_bar(result["adversarial"]["probabilities"], classes, "after"), key="after", width="stretch"
    )


def render() -> None:
    st.title("Attack lab")
    model = choose_model("classifier", key="al_model")
    if model is None:
        return
    source = st.radio("Image", ["a test image", "upload"], horizontal=True, key="al_source")
    upload, index = None, None
    if source == "upload":
        f = st.file_uploader("PNG, JPEG, WebP or BMP", type=["png", "jpg", "jpeg", "webp", "bmp"], key="al_file")
        upload = (f.name, f.getvalue(), f.type or "application/octet-stream") if f else None
    else:
        index = st.number_input("Test image index", 0, 1_000_000, 0, key="al_index")
    attack = attack_form()
    ready = upload is not None or index is not None
    if st.button("Attack", key="al_run", type="primary", disabled=not ready):
        with st.spinner("attacking…"):
            answer = call(api().attack, model["id"], attack, image=upload, test_index=index)
        if answer is not None:
            st.session_state["al_answer"] = answer
    answer = st.session_state.get("al_answer")
    if answer is None:
        return
    if answer["status"] == "succeeded":
        show_result(answer["result"])
    elif answer["status"] == "failed":
        st.error(f"The attack failed: {answer['error']}")
    else:
        st.info(f"Still running as job {answer['id']}: see Jobs.")


render()
