"""New experiment: a form per job kind, each starting from the API's presets, and the SAT study."""

from __future__ import annotations

import copy

import streamlit as st

from core.contract.client import Job
from core.contract.names import ACTIVATIONS, ENSEMBLES, NORMS, PROBE_PHASES, TRAIN_METHODS, TRAIN_PRESET_NAMES
from dashboard.common import api, call, choose_model, job_link, model_data

METHOD_NAMES = {
    "pgd": "PGD-AT",
    "fast": "Fast-AT (FGSM + random start)",
    "trades": "TRADES",
    "standard": "standard (no attack)",
    "gaussian": "Gaussian noise (for randomized smoothing)",
    "smoothadv": "SmoothAdv (PGD on the smoothed classifier)",
}
PROTOCOL_NAMES = {
    "standard": "standard: APGD-CE, APGD-T, FAB-T, Square",
    "rand": "rand: APGD-CE, APGD-DLR with EOT (randomized models)",
    "pgd": "pgd: FGSM + PGD-20 (a cheap check)",
}


@st.cache_data(ttl=300, show_spinner=False)
def presets(_client) -> dict:
    return _client.presets()


def submitted(job: Job | None) -> None:
    if job is not None:
        st.success(f"Queued {job.kind} job {job.id}.")
        job_link(job.id, "Watch it under Jobs")


def protocol_text(protocol: dict) -> str:
    return (
        f"{protocol['ensemble']} ensemble, {protocol['norm']} ε={protocol['eps']:g}, {protocol['images']} test images"
        + ("" if protocol.get("steps") in (None, 100) and protocol["queries"] >= 5000 else " (reduced settings)")
    )


def submit_section(kind: str, spec: dict, label: str, key: str, disabled: bool = False) -> None:
    """The spec as it will be sent, and the button that sends it."""
    with st.expander("The full spec"):
        st.json(spec)
    if st.button(label, key=key, type="primary", disabled=disabled):
        submitted(call(api().submit, kind, spec))


# The training form's fields that start from the preset: forgotten when another preset is chosen.
PRESET_FIELDS = (
    *("at_method", "at_epochs", "at_eps", "at_seed", "at_beta", "at_crop", "at_flip", "at_ema", "at_ema_decay"),
    *("at_resized", "at_holdout", "at_select", "at_smoothing", "at_warmup", "at_sigma", "at_m"),
)


def forget_preset_fields() -> None:
    for key in PRESET_FIELDS:
        st.session_state.pop(key, None)


def training_form(ps: dict) -> None:
    preset = st.selectbox("Preset", list(ps["adversarial_training"]), key="at_preset", on_change=forget_preset_fields)
    spec = copy.deepcopy(ps["adversarial_training"][preset])
    c1, c2, c3 = st.columns(3)
    spec["method"] = c1.selectbox(
        "Method",
        TRAIN_METHODS,
        index=TRAIN_METHODS.index(spec["method"]),
        format_func=METHOD_NAMES.get,
        key="at_method",
    )
    spec["model"]["activation"]["name"] = c2.selectbox("Activation", ACTIVATIONS, key="at_act")
    spec["model"]["activation"]["probe"] = c3.selectbox("SAT probe", ["none", *PROBE_PHASES], key="at_probe")
    c1, c2, c3 = st.columns(3)
    spec["epochs"] = c1.number_input("Epochs", 1, 500, spec["epochs"], key="at_epochs")
    spec["attack"]["eps"] = spec["eval_attack"]["eps"] = c2.number_input(
        "ε (L∞)", 0.0, 1.0, spec["attack"]["eps"], step=0.01, format="%.3f", key="at_eps"
    )
    spec["seed"] = c3.number_input("Seed", 0, 10_000, spec["seed"], key="at_seed")
    if spec["method"] == "trades":
        spec["trades_beta"] = st.number_input("TRADES β", 0.0, 100.0, spec["trades_beta"], key="at_beta")
    smoothing_options(spec)
    recipe_options(spec["recipe"])
    generated_mix(spec)
    st.caption(f"The finished model is evaluated under: {protocol_text(spec['protocol'])}")
    submit_section("adversarial_training", spec, "Start training", "at_submit")


def smoothing_options(spec: dict) -> None:
    """The noise of the two trainings for randomized smoothing (none for the other methods);
    SmoothAdv's attack is in L2 (the ε above is then its radius)."""
    if spec["method"] not in ("gaussian", "smoothadv"):
        spec["noise"] = None
        return
    noise = spec.get("noise") or {"sigma": 0.25, "samples": 1}
    c1, c2 = st.columns(2)
    noise["sigma"] = c1.number_input("Noise σ (train at the σ you certify)", 0.01, 4.0, noise["sigma"], key="at_sigma")
    if spec["method"] == "smoothadv":
        noise["samples"] = c2.number_input("Noise draws per image (m)", 1, 64, max(noise["samples"], 2), key="at_m")
        spec["attack"]["norm"] = "l2"
    spec["noise"] = noise


def recipe_options(recipe: dict) -> None:
    """The training recipe (`RecipeSpec`), starting from the preset's: augmentation, the weight
    average, best-epoch selection on held-out training images, label smoothing, ε warm-up."""
    with st.expander("Training recipe: augmentation, weight average, best epoch"):
        c1, c2, c3 = st.columns(3)
        recipe["crop_pad"] = c1.number_input(
            "Random crop padding (px, 0 = off)", 0, 16, recipe["crop_pad"], key="at_crop"
        )
        recipe["flip"] = c2.checkbox("Horizontal flip", recipe["flip"], key="at_flip")
        averaged = c3.checkbox("Average the weights (EMA)", recipe["ema_decay"] is not None, key="at_ema")
        decay = c3.number_input(
            "EMA decay", 0.0, 0.99999, recipe["ema_decay"] or 0.999, format="%.5f", key="at_ema_decay"
        )
        recipe["ema_decay"] = decay if averaged else None
        scale = st.number_input(
            "Random-resized crop: smallest share of the area (ImageNet: 0.08; 0 = off)",
            0.0,
            1.0,
            recipe.get("resized_crop") or 0.0,
            key="at_resized",
        )
        recipe["resized_crop"] = scale or None
        c1, c2 = st.columns(2)
        recipe["holdout"] = c1.number_input(
            "Training images held out for the per-epoch monitor", 0, 100_000, recipe["holdout"], key="at_holdout"
        )
        recipe["select"] = c2.selectbox(
            "Model handed on",
            ["last", "best"],
            index=["last", "best"].index(recipe["select"]),
            format_func={"last": "the last epoch's", "best": "the best epoch's on the held-out images"}.get,
            key="at_select",
        )
        c1, c2 = st.columns(2)
        recipe["label_smoothing"] = c1.number_input(
            "Label smoothing", 0.0, 0.5, recipe["label_smoothing"], step=0.05, key="at_smoothing"
        )
        recipe["eps_warmup_epochs"] = c2.number_input(
            "ε warm-up (epochs)", 0, 100, recipe["eps_warmup_epochs"], key="at_warmup"
        )
        if recipe["select"] == "best" and not recipe["holdout"]:
            st.warning("The best epoch is chosen on held-out training images: hold some out.")


def generated_datasets() -> list[dict]:
    catalogue = call(api().datasets) or {"uploaded": []}
    return [d for d in catalogue["uploaded"] if d.get("provenance")]


def generated_mix(spec: dict) -> None:
    """Optionally mix a generated dataset into every batch (Gowal et al. 2021: 70 % generated)."""
    with st.expander("Mix in generated images"):
        options = [None, *generated_datasets()]
        chosen = st.selectbox(
            "Generated dataset",
            options,
            format_func=lambda d: "none" if d is None else f"{d['name']} · {sum(d['train'])} images · {d['id'][:8]}",
            key="at_generated",
        )
        c1, c2 = st.columns(2)
        fraction = c1.slider("Generated share of each batch", 0.05, 0.95, 0.7, key="at_fraction")
        length = c2.selectbox("Length", ["same_steps", "same_epochs"], key="at_length")
        if chosen is not None:
            data = {"name": "uploaded", "dataset_id": chosen["id"]}
            spec["generated"] = {"data": data, "fraction": fraction, "length": length}


def evaluation_form(ps: dict) -> None:
    model = choose_model("classifier", key="ev_model")
    preset = st.selectbox("Preset", list(ps["attack_evaluation"]), key="ev_preset")
    spec = copy.deepcopy(ps["attack_evaluation"][preset])
    protocol = spec["protocol"]
    if model is not None:
        spec["model_id"] = model["id"]
        spec["data"] = model_data(spec["data"], model)
    c1, c2, c3, c4 = st.columns(4)
    protocol["ensemble"] = c1.selectbox(
        "Protocol", [e for e in ENSEMBLES if e != "custom"], format_func=PROTOCOL_NAMES.get, key="ev_ensemble"
    )
    protocol["norm"] = c2.selectbox("Norm", NORMS, key="ev_norm")
    protocol["eps"] = c3.number_input("ε", 0.0, 10.0, protocol["eps"], step=0.01, format="%.3f", key="ev_eps")
    protocol["images"] = c4.number_input("Test images", 1, 100_000, protocol["images"], key="ev_images")
    with st.expander("Attack budgets (lower them only for a quick look: the result is labelled reduced)"):
        b1, b2, b3 = st.columns(3)
        protocol["steps"] = b1.number_input("APGD iterations", 1, 1000, protocol["steps"] or 100, key="ev_steps")
        protocol["queries"] = b2.number_input("Square queries", 1, 20_000, protocol["queries"], key="ev_queries")
        protocol["eot"] = b3.number_input("EOT samples (rand)", 1, 100, protocol["eot"], key="ev_eot")
    with st.expander("Robustness curve: more radii, and FMN's minimal-norm curve beside the ensemble's"):
        spec["eps_grid"] = radii_input("Radii (comma-separated, e.g. 0.05, 0.1, 0.2)", "", key="ev_radii")
        if st.checkbox("FMN's minimal-norm curve (a deterministic model only)", key="ev_fmn"):
            steps = st.number_input("FMN iterations", 1, 2000, 100, key="ev_fmn_steps")
            spec["min_norm"] = {"steps": steps}
    submit_section("attack_evaluation", spec, "Start evaluation", "ev_submit", disabled=model is None)


def radii_input(label: str, value: str, key: str) -> list[float] | None:
    """Comma-separated radii typed into a text box (None when empty, or with a message when one
    is not a number)."""
    text = st.text_input(label, value, key=key)
    try:
        return [float(r) for r in text.replace(" ", "").split(",") if r] or None
    except ValueError:
        st.error(f"{label}: expected comma-separated numbers, got {text!r}")
        return None


def certification_form(ps: dict) -> None:
    model = choose_model("classifier", key="ce_model")
    preset = st.selectbox("Preset", list(ps["certification"]), index=1, key="ce_preset")
    spec = copy.deepcopy(ps["certification"][preset])
    if model is not None:
        spec["model_id"] = model["id"]
        spec["data"] = model_data(spec["data"], model)
    smoothing = spec["smoothing"]
    c1, c2, c3, c4 = st.columns(4)
    smoothing["sigma"] = c1.number_input("Noise σ", 0.01, 4.0, smoothing["sigma"], key="ce_sigma")
    smoothing["n"] = c2.number_input("Samples n", 10, 1_000_000, smoothing["n"], key="ce_n")
    smoothing["alpha"] = c3.number_input("α", 1e-6, 0.49, smoothing["alpha"], format="%.4f", key="ce_alpha")
    spec["images"] = c4.number_input("Test images", 1, 100_000, spec["images"], key="ce_images")
    shown = ", ".join(f"{r:g}" for r in spec["radii"])
    spec["radii"] = radii_input("L2 radii", shown, key="ce_radii") or spec["radii"]
    if not st.checkbox("Attack the smoothed classifier too (the empirical curve)", True, key="ce_attack"):
        spec["empirical"] = None
    submit_section("certification", spec, "Start certification", "ce_submit", disabled=model is None)


def ddpm_training_form(ps: dict) -> None:
    preset = st.selectbox("Preset", list(ps["ddpm_training"]), key="dt_preset")
    spec = copy.deepcopy(ps["ddpm_training"][preset])
    c1, c2 = st.columns(2)
    spec["epochs"] = c1.number_input("Epochs", 1, 1000, spec["epochs"], key="dt_epochs")
    spec["seed"] = c2.number_input("Seed", 0, 10_000, spec["seed"], key="dt_seed")
    submit_section("ddpm_training", spec, "Start DDPM training", "dt_submit")


def ddpm_sampling_form(ps: dict) -> None:
    model = choose_model("diffusion", key="ds_model")
    sampler = st.selectbox("Sampler", list(ps["ddpm_sampling"]), key="ds_sampler")
    spec = copy.deepcopy(ps["ddpm_sampling"][sampler])
    c1, c2 = st.columns(2)
    spec["n"] = c1.number_input("Samples", 1, 1024, 64, key="ds_n")
    spec["seed"] = c2.number_input("Seed", 0, 10_000, 0, key="ds_seed")
    if model is not None:
        spec["model_id"] = model["id"]
    submit_section("ddpm_sampling", spec, "Start sampling", "ds_submit", disabled=model is None)


def generation_form(ps: dict) -> None:
    st.markdown(
        "Sample a labelled training set from a class-conditional diffusion model (Gowal et al. 2021); "
        "it joins the dataset catalogue with its provenance and can be mixed into adversarial training."
    )
    model = choose_model("diffusion", key="gd_model", label="Class-conditional diffusion model")
    preset = st.selectbox("Preset", list(ps["dataset_generation"]), index=1, key="gd_preset")
    spec = copy.deepcopy(ps["dataset_generation"][preset])
    c1, c2, c3, c4 = st.columns(4)
    spec["per_class"] = c1.number_input("Images per class", 1, 100_000, spec["per_class"], key="gd_n")
    spec["steps"] = c2.number_input("Sampler steps", 1, 1000, spec["steps"], key="gd_steps")
    spec["guidance_scale"] = c3.number_input("Guidance w", 0.0, 20.0, spec["guidance_scale"], key="gd_w")
    spec["seed"] = c4.number_input("Seed", 0, 10_000, spec["seed"], key="gd_seed")
    if st.checkbox("Filter with a classifier", key="gd_filter"):
        classifier = choose_model("classifier", key="gd_classifier", label="Filter classifier")
        c1, c2 = st.columns(2)
        mode = c1.selectbox("Mode", ["agree", "relabel"], key="gd_mode")
        confidence = c2.slider("Minimum confidence", 0.0, 1.0, 0.0, key="gd_conf")
        if classifier is not None:
            spec["filter"] = {"classifier_id": classifier["id"], "mode": mode, "confidence": confidence}
    if model is not None:
        spec["model_id"] = model["id"]
    submit_section("dataset_generation", spec, "Generate dataset", "gd_submit", disabled=model is None)


def defense_form(ps: dict) -> None:
    st.markdown(
        "Diffusion purification (DiffPure): noise the input to t*, denoise, classify. Evaluate it under "
        "Attack evaluation with the `rand` protocol: the result shows the non-adaptive, BPDA and adaptive "
        "robust accuracy side by side, and the defense's is the lowest."
    )
    classifier = choose_model("classifier", key="df_classifier", label="Classifier")
    diffusion = choose_model("diffusion", key="df_diffusion", label="Diffusion model (same data)")
    preset = st.selectbox("Preset", list(ps["defended_model"]), key="df_preset")
    spec = copy.deepcopy(ps["defended_model"][preset])
    c1, c2, c3 = st.columns(3)
    spec["purifier"]["t_star"] = c1.number_input("t*", 1, 3999, spec["purifier"]["t_star"], key="df_t")
    spec["purifier"]["steps"] = c2.number_input("Reverse steps", 1, 1000, spec["purifier"]["steps"], key="df_steps")
    spec["purifier"]["sampler"] = c3.selectbox("Reverse sampler", ["ddim", "ddpm"], key="df_sampler")
    ready = classifier is not None and diffusion is not None
    if ready:
        spec["classifier_id"], spec["diffusion_id"] = classifier["id"], diffusion["id"]
    submit_section("defended_model", spec, "Register defense", "df_submit", disabled=not ready)


def study_form() -> None:
    st.markdown(
        "Smooth adversarial training (Xie et al. 2020): one PGD-AT run per activation, probe and "
        "seed, all with the same recipe; the table fills in under Robustness as runs finish."
    )
    body = {
        "name": st.text_input("Name", "sat", key="st_name"),
        "train_preset": st.selectbox("Preset", TRAIN_PRESET_NAMES, key="st_preset"),
        "activations": st.multiselect("Activations", ACTIVATIONS, ACTIVATIONS, key="st_acts"),
        "probes": st.multiselect("Probes (ReLU forward, smooth backward)", PROBE_PHASES, PROBE_PHASES, key="st_probes"),
        "seeds": st.number_input("Seeds", 1, 10, 3, key="st_seeds"),
    }
    epochs = st.number_input("Epochs (0 = the preset's)", 0, 500, 0, key="st_epochs")
    if epochs:
        body["epochs"] = epochs
    runs = body["seeds"] * (len(body["activations"]) + len(body["probes"]))
    st.caption(f"{runs} training jobs")
    if st.button("Start study", key="st_submit", type="primary", disabled=runs == 0):
        study = call(api().create_study, body)
        if study is not None:
            st.success(f"Study {study['id']} queued: {sum(study['jobs'].values())} jobs.")


def render() -> None:
    st.title("New experiment")
    ps = call(presets, api())
    if ps is None:
        return
    forms = {
        "Adversarial training": lambda: training_form(ps),
        "Attack evaluation": lambda: evaluation_form(ps),
        "Certification": lambda: certification_form(ps),
        "DDPM training": lambda: ddpm_training_form(ps),
        "DDPM sampling": lambda: ddpm_sampling_form(ps),
        "Generated dataset": lambda: generation_form(ps),
        "Purification defense": lambda: defense_form(ps),
        "SAT study": study_form,
    }
    for tab, form in zip(st.tabs(list(forms)), forms.values(), strict=True):
        with tab:
            form()


render()
