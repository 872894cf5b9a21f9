"""Diffusion: samples on demand, the denoising trajectory, and the forward-process explorer."""

from __future__ import annotations

import streamlit as st

from core.contract.names import DEFAULT_SAMPLER_STEPS, SAMPLERS
from dashboard.common import api, call, choose_model, show_image


def answered(answer: dict | None) -> dict | None:
    """The result of a finished interactive job; a message for a failed or slow one."""
    if answer is None:
        return None
    if answer["status"] == "failed":
        st.error(f"The job failed: {answer['error']}")
    elif answer["status"] != "succeeded":
        st.info(f"Still running as job {answer['id']}: see Jobs.")
    return answer.get("result") if answer["status"] == "succeeded" else None


def sampling(model: dict) -> None:
    c1, c2, c3, c4 = st.columns(4)
    sampler = c1.selectbox("Sampler", SAMPLERS, key="df_sampler")
    steps = c2.number_input("Steps", 1, 1000, DEFAULT_SAMPLER_STEPS[sampler], key=f"df_steps_{sampler}")
    n = c3.number_input("Samples", 1, 64, 16, key="df_n")
    seed = c4.number_input("Seed", 0, 1_000_000, 0, key="df_seed")
    if st.button("Generate", key="df_run", type="primary"):
        body = {
            "model_id": model["id"],
            "sampler": sampler,
            "steps": steps,
            "n": n,
            "seed": seed,
            "trajectory": True,
            "trajectory_frames": 8,
        }
        with st.spinner("sampling…"):
            st.session_state["df_answer"] = call(api().samples, body, wait=60)
    result = answered(st.session_state.get("df_answer"))
    if result is None:
        return
    st.caption(f"{result['n']} samples, {result['sampler']}-{result['steps']}, {result['seconds']:.2f} s on the worker")
    show_image(result["grid_url"], "samples", width=420)
    frames = result.get("trajectory_urls") or []
    if frames:
        st.markdown("**Denoising trajectory** (x_T … x_0)")
        for col, (i, url) in zip(st.columns(len(frames)), enumerate(frames), strict=True):
            with col:
                show_image(url, f"{i + 1}/{len(frames)}", width=110)


def explorer(model: dict) -> None:
    st.markdown("Noise a test image to x_t ~ q(x_t | x_0) and let the model predict x̂_0 back from it.")
    c1, c2 = st.columns(2)
    index = c1.number_input("Test image index", 0, 1_000_000, 0, key="fx_index")
    seed = c2.number_input("Noise seed", 0, 1_000_000, 0, key="fx_seed")
    if st.button("Explore", key="fx_run"):
        body = {"model_id": model["id"], "test_index": index, "seed": seed}
        with st.spinner("noising and denoising…"):
            st.session_state["fx_answer"] = call(api().forward, body, wait=60)
    result = answered(st.session_state.get("fx_answer"))
    if result is None:
        return
    ts = result["timesteps"]
    t = st.select_slider("t", options=ts, value=ts[len(ts) // 2], key="fx_t")
    i = ts.index(t)
    cols = st.columns(3)
    with cols[0]:
        show_image(result["image_url"], "x_0 (the test image)", width=180)
    with cols[1]:
        show_image(result["x_t_urls"][i], f"x_t, t = {t}, ᾱ_t = {result['alpha_bars'][i]:.3f}", width=180)
    with cols[2]:
        show_image(result["x0_pred_urls"][i], "predicted x̂_0", width=180)


def render() -> None:
    st.title("Diffusion")
    model = choose_model("diffusion", key="df_model", label="Diffusion model")
    if model is None:
        return
    quality = (model.get("summary") or {}).get("quality")
    if quality:
        st.caption(
            f"Fréchet distance {quality['frechet_distance']:.1f} in a robustlab classifier's features "
            f"({quality['samples']} DDIM-50 samples), mean confidence {quality['mean_confidence']:.2f}"
        )
    tab1, tab2 = st.tabs(["Samples", "Forward-process explorer"])
    with tab1:
        sampling(model)
    with tab2:
        explorer(model)


render()
