"""Each dashboard page driven by Streamlit's AppTest against a fake API client."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.dashboard.fake_api import DIFFUSION, FakeApi, classifier, defended, job

PAGES = Path(__file__).resolve().parents[2] / "dashboard" / "views"


def run_page(name: str, fake: FakeApi, query: dict | None = None) -> AppTest:
    at = AppTest.from_file(str(PAGES / f"{name}.py"), default_timeout=60)
    at.session_state["api"] = fake
    for k, v in (query or {}).items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def called(fake: FakeApi, name: str) -> list[tuple]:
    return [c for c in fake.calls if c[0] == name]


def test_jobs_table_shows_every_job_and_cancels_a_running_one():
    fake = FakeApi()
    at = run_page("jobs", fake)
    table = at.dataframe[0].value
    assert list(table["id"]) == ["a1", "r1"] and list(table["status"]) == ["succeeded", "running"]
    assert table.loc[0, "elapsed"] == "5m 00s" and table.loc[0, "ETA"] == "0m 00s"
    assert at.selectbox(key="cancel_choice").options == ["r1 · adversarial_training"]
    at.button(key="cancel").click().run()
    assert [c[1] for c in called(fake, "cancel")] == [("r1",)]


def test_a_jobs_page_has_its_curves_spec_and_artifacts():
    fake = FakeApi()
    at = run_page("jobs", fake, {"job": "a1"})
    assert len(at.get("plotly_chart")) == 1
    assert at.get("image"), "the job's PNG artifact is not shown"
    assert any("adversarial_training · succeeded" in h.value for h in at.subheader)


def test_a_failed_job_shows_its_error():
    fake = FakeApi(jobs=[job("f1", status="failed", error="ValueError: no classifier with id x")])
    at = run_page("jobs", fake, {"job": "f1"})
    assert any("no classifier with id x" in e.value for e in at.error)


def test_an_api_error_is_a_message_not_a_traceback():
    at = run_page("jobs", FakeApi(fail="jobs"))
    assert [e.value for e in at.error] == ["503 Service Unavailable: the database is away"]
    at = run_page("jobs", FakeApi(), {"job": "nope"})
    assert any("404" in e.value for e in at.error)


def test_new_experiment_submits_the_preset_with_the_chosen_fields():
    fake = FakeApi()
    at = run_page("new_experiment", fake)
    at.selectbox(key="at_preset").set_value("cpu").run()  # choosing a preset resets the fields to its values
    assert at.number_input(key="at_epochs").value == 5
    at.selectbox(key="at_act").set_value("silu")
    at.number_input(key="at_epochs").set_value(2)
    at.button(key="at_submit").click().run()
    assert not at.exception, [e.value for e in at.exception]
    ((_, (kind, spec), _),) = called(fake, "submit")
    assert kind == "adversarial_training" and spec["model"]["activation"]["name"] == "silu"
    assert spec["epochs"] == 2 and spec["data"]["name"] == "fashion-mnist"
    assert any("Queued adversarial_training job new1" in s.value for s in at.success)


def test_new_experiment_sends_the_recipe_of_the_preset_and_the_changes_made_to_it():
    fake = FakeApi()
    at = run_page("new_experiment", fake)
    at.selectbox(key="at_preset").set_value("fmnist-strong").run()
    at.number_input(key="at_crop").set_value(2)
    at.checkbox(key="at_ema").uncheck()
    at.number_input(key="at_smoothing").set_value(0.1)
    at.button(key="at_submit").click().run()
    assert not at.exception, [e.value for e in at.exception]
    ((_, (kind, spec), _),) = called(fake, "submit")
    assert spec["model"]["width"] == 32 and spec["model"]["hidden"] == 1024 and spec["epochs"] == 30
    assert spec["recipe"] == {
        "crop_pad": 2,
        "flip": False,
        "resized_crop": None,
        "ema_decay": None,
        "use_ema": True,
        "holdout": 1000,
        "select": "best",
        "label_smoothing": 0.1,
        "eps_warmup_epochs": 0,
    }


def test_new_experiment_starts_a_study_and_an_evaluation_of_a_chosen_model():
    fake = FakeApi()
    at = run_page("new_experiment", fake)
    at.multiselect(key="st_acts").set_value(["relu", "silu"])
    at.multiselect(key="st_probes").set_value(["both"])
    at.number_input(key="st_seeds").set_value(2)
    at.run()
    assert any("6 training jobs" in c.value for c in at.caption)
    at.button(key="st_submit").click().run()
    ((_, (body,), _),) = called(fake, "create_study")
    assert body["activations"] == ["relu", "silu"] and body["probes"] == ["both"] and body["seeds"] == 2
    at.selectbox(key="ev_ensemble").set_value("rand")
    at.number_input(key="ev_eps").set_value(0.2)
    at.button(key="ev_submit").click().run()
    evaluation = [c for c in called(fake, "submit") if c[1][0] == "attack_evaluation"]
    spec = evaluation[0][1][1]
    assert spec["model_id"] == "m1" and spec["protocol"]["ensemble"] == "rand" and spec["protocol"]["eps"] == 0.2


def test_robustness_draws_curves_scatter_and_the_study_table():
    study_jobs = [job(f"s{m}", study_id="s1", result={"model_id": m}) for m in ("m1", "m3")]
    at = run_page("robustness", FakeApi(jobs=study_jobs))
    charts = at.get("plotly_chart")
    assert len(charts) == 4  # curves, the scatter of all models, the study's scatter, a generated dataset's classes
    assert at.dataframe[0].value.loc[0, "variant"] == "relu"


def test_attack_lab_attacks_a_test_image_and_shows_the_result():
    fake = FakeApi()
    at = run_page("attack_lab", fake)
    at.number_input(key="al_index").set_value(12)
    at.slider(key="al_eps").set_value(0.05)
    at.button(key="al_run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    ((_, (model_id, attack), kwargs),) = called(fake, "attack")
    assert model_id == "m1" and kwargs["test_index"] == 12 and attack["eps"] == 0.05
    assert any("T-shirt/top" in m.value and "Trouser" in m.value and "fooled" in m.value for m in at.markdown)
    assert len(at.get("image")) == 3 and len(at.get("plotly_chart")) == 2


@pytest.mark.parametrize("name", ["pgd", "apgd-ce", "apgd-t"])
def test_attack_lab_sends_the_steps_the_form_shows(name):
    fake = FakeApi()
    at = run_page("attack_lab", fake)
    at.selectbox(key="al_attack").set_value(name)
    at.number_input(key="al_steps").set_value(30)
    at.button(key="al_run").click().run()
    ((_, (_, attack), _),) = called(fake, "attack")
    assert attack["name"] == name and attack["steps"] == 30  # APGD ran 1 iteration while the form said 20


def test_attack_lab_without_classifiers_says_what_to_do():
    at = run_page("attack_lab", FakeApi(models=[]))
    assert any("No classifier models" in i.value for i in at.info)


def test_diffusion_samples_and_explores_the_forward_process():
    fake = FakeApi()
    at = run_page("diffusion", fake)
    assert any("131.3" in c.value for c in at.caption)
    at.button(key="df_run").click().run()
    ((_, (body,), _),) = called(fake, "samples")
    assert body["model_id"] == "diff1" and body["sampler"] == "ddim" and body["steps"] == 50
    assert len(at.get("image")) == 1 + 8  # the grid and the trajectory strip
    at.button(key="fx_run").click().run()
    assert called(fake, "forward")
    at.select_slider(key="fx_t").set_value(999).run()
    assert not at.exception, [e.value for e in at.exception]
    shown = [c[1][0] for c in called(fake, "image")]
    assert "/v1/artifacts/xt999" in shown and "/v1/artifacts/xp999" in shown


@pytest.mark.parametrize(("kind", "rows"), [("all", 4), ("diffusion", 1), ("classifier", 3)])
def test_models_lists_and_filters_the_registry(kind, rows):
    at = run_page("models", FakeApi())
    at.selectbox(key="md_kind").set_value(kind).run()
    assert len(at.dataframe[0].value) == rows


def test_the_leaderboard_lists_each_model_under_each_protocol_and_downloads_csv():
    at = run_page("leaderboard", FakeApi())
    assert not at.exception, [e.value for e in at.exception]
    table = at.dataframe[0].value
    assert len(table) == 6  # three classifiers, each under standard and pgd
    assert list(table["robust"]) == sorted(table["robust"], reverse=True)
    assert set(table["protocol"].str.split(" ").str[0]) == {"standard", "pgd"}
    assert at.get("download_button")[0].proto.label == "Download CSV"


def test_an_evaluation_shows_its_protocol_breakdown_and_warnings():
    from tests.dashboard.fake_api import evaluation

    result = {**evaluation(0.8, 0.6), "warnings": ["the model is randomized (two passes differ): evaluate it with EOT"]}
    at = run_page("jobs", FakeApi(jobs=[job("e1", kind="attack_evaluation", result=result)]), {"job": "e1"})
    assert not at.exception, [e.value for e in at.exception]
    assert any("standard (apgd-ce100, apgd-t100, fab-t100, square5000)" in m.value for m in at.markdown)
    assert list(at.dataframe[0].value["attack"]) == [
        "apgd-ce100-linf",
        "apgd-t100-linf",
        "fab-t100-linf",
        "square5000-linf",
    ]
    assert [w.value for w in at.warning] == result["warnings"]
    assert [m.value for m in at.metric] == ["80.0%", "60.0%"]


def test_a_member_is_offered_to_cancel_only_their_own_jobs():
    jobs = [job("mine", status="running", owner="ann"), job("theirs", status="running", owner="bob")]
    at = run_page("jobs", FakeApi(jobs=jobs, user="ann", role="member"))
    assert at.selectbox(key="cancel_choice").options == ["mine · adversarial_training"]


def test_the_app_asks_for_a_key_and_signs_in_from_a_link(monkeypatch):
    import httpx

    app = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
    at = AppTest.from_file(str(app), default_timeout=60)
    at.run()
    assert at.text_input(key="sign_in_key") is not None and not at.exception  # no key: the sign-in form

    def fake_request(self, method, url, **kwargs):  # the API, as far as /v1/me goes
        ok = self.headers["Authorization"] == "Bearer rl_good"
        body = {"user_id": "u", "name": "ann", "role": "member", "key_id": "k"} if ok else {"detail": "invalid key"}
        return httpx.Response(200 if ok else 401, json=body, request=httpx.Request(method, f"http://api{url}"))

    monkeypatch.setattr(httpx.Client, "request", fake_request)
    at = AppTest.from_file(str(app), default_timeout=60)
    at.query_params["key"] = "rl_bad"
    at.run()
    assert any("401" in e.value for e in at.error) and "api" not in at.session_state
    at = AppTest.from_file(str(app), default_timeout=60)
    at.query_params["key"] = "rl_good"
    at.run()
    assert at.session_state["me"]["name"] == "ann" and "key" not in at.query_params
    assert any("Signed in as **ann** (member)" in c.value for c in at.sidebar.caption)


def test_new_experiment_generates_a_dataset_mixes_it_in_and_registers_a_defense():
    fake = FakeApi()
    at = run_page("new_experiment", fake)
    at.number_input(key="gd_n").set_value(500)
    at.checkbox(key="gd_filter").check().run()
    at.selectbox(key="gd_mode").set_value("relabel")
    at.button(key="gd_submit").click().run()
    at.selectbox(key="at_generated").set_value(at.selectbox(key="at_generated").options[1])
    at.button(key="at_submit").click().run()
    at.number_input(key="df_t").set_value(200)
    at.button(key="df_submit").click().run()
    assert not at.exception, [e.value for e in at.exception]
    specs = {kind: spec for _, (kind, spec), _ in called(fake, "submit")}
    generation = specs["dataset_generation"]
    assert generation["model_id"] == "diff1" and generation["per_class"] == 500
    assert generation["filter"] == {"classifier_id": "m1", "mode": "relabel", "confidence": 0.0}
    mix = specs["adversarial_training"]["generated"]
    assert mix["data"] == {"name": "uploaded", "dataset_id": "gen1"} and mix["fraction"] == 0.7
    defense = specs["defended_model"]
    assert defense["classifier_id"] == "m1" and defense["diffusion_id"] == "diff1"
    assert defense["purifier"]["t_star"] == 200


def test_robustness_shows_a_defenses_three_numbers_and_a_generated_dataset():
    models = [
        classifier("m1", "relu", 0.8, 0.6),
        defended("p1", {"non_adaptive": 0.6, "bpda": 0.4, "adaptive": 0.2}),
        DIFFUSION,
    ]
    at = run_page("robustness", FakeApi(models=models))
    table = next(d.value for d in at.dataframe if "robust accuracy (the lowest)" in d.value.columns)
    row = table.iloc[0]
    assert row["non-adaptive (attack the classifier, then purify)"] == 0.6 and row["BPDA + EOT"] == 0.4
    assert row["robust accuracy (the lowest)"] == 0.2 and row["t*"] == 100
    assert any("ddim-50" in c.value and "Fréchet distance 30.8 (1000 images)" in c.value for c in at.caption)
    assert len(at.get("plotly_chart")) == 3  # curves, scatter, the class histogram


def test_a_certification_job_shows_the_certified_and_empirical_curves():
    from tests.dashboard.fake_api import certification

    result = certification()
    at = run_page("jobs", FakeApi(jobs=[job("c1", kind="certification", result=result)]), {"job": "c1"})
    assert any("smoothing σ=0.25" in m.value for m in at.markdown)
    assert [m.value for m in at.metric] == ["80.0%", "7.0%"]
    table = at.dataframe[0].value
    assert list(table["radius"]) == [0.0, 0.25, 0.5, 1.0] and list(table["certified accuracy"])[1:] == [0.6, 0.4, 0.1]
    assert len(at.get("plotly_chart")) == 2  # the job's metrics chart and the certification's


def test_an_evaluation_with_a_minimal_norm_curve_draws_it_beside_the_ensembles():
    from tests.dashboard.fake_api import evaluation

    result = evaluation(0.8, 0.6) | {"curve": [{"eps": 0.0, "robust_acc": 0.8}, {"eps": 0.1, "robust_acc": 0.6}]}
    fmn = [{"eps": 0.0, "robust_acc": 0.8}, {"eps": 0.1, "robust_acc": 0.62}]
    result["min_norm"] = {"norm": "linf", "steps": 100, "curve": fmn}
    at = run_page("jobs", FakeApi(jobs=[job("e2", kind="attack_evaluation", result=result)]), {"job": "e2"})
    assert len(at.get("plotly_chart")) == 2  # the metrics, and the two curves


def test_new_experiment_submits_a_certification_and_an_evaluation_with_fmn():
    fake = FakeApi()
    at = run_page("new_experiment", fake)
    at.number_input(key="ce_sigma").set_value(0.5)
    at.text_input(key="ce_radii").set_value("0.5, 1")
    at.button(key="ce_submit").click().run()
    ((_, (kind, spec), _),) = [c for c in called(fake, "submit") if c[1][0] == "certification"]
    assert spec["model_id"] == "m1" and spec["smoothing"]["sigma"] == 0.5 and spec["radii"] == [0.5, 1.0]
    at.text_input(key="ev_radii").set_value("0.05, x").run()  # a typo is a message, not a traceback
    assert not at.exception and any("comma-separated numbers" in e.value for e in at.error)
    at.text_input(key="ev_radii").set_value("0.05, 0.1")
    at.checkbox(key="ev_fmn").check().run()
    at.button(key="ev_submit").click().run()
    spec = [c for c in called(fake, "submit") if c[1][0] == "attack_evaluation"][-1][1][1]
    assert spec["eps_grid"] == [0.05, 0.1] and spec["min_norm"] == {"steps": 100}


def test_the_leaderboard_lists_certifications_with_a_certified_column():
    from dashboard.evaluation_view import leaderboard_rows
    from tests.dashboard.fake_api import certification

    model = classifier("m9", "silu", 0.8, 0.6)
    model["summary"]["certifications"] = [{**certification(), "sigma": 0.25, "job_id": "c1"}]
    table = leaderboard_rows([model])
    certified = table[table["certified"].notna()]
    assert list(certified["eps"]) == [0.25, 0.5, 1.0] and set(certified["norm"]) == {"l2"}
    assert list(certified["certified"]) == [0.6, 0.4, 0.1] and list(certified["robust"]) == [0.7, 0.5, 0.2]
    assert table["certified"].isna().sum() == len(model["summary"]["evaluations"])
