import pytest

from api.main import create_app

SMOKE = {"data": {"name": "digits"}, "model": {"image_size": 8}, "epochs": 2}


def test_submit_returns_202_and_enqueues_by_name(api):
    r = api.post("/v1/jobs", json={"kind": "adversarial_training", "spec": SMOKE})
    assert r.status_code == 202
    job = r.json()
    assert job["status"] == "queued" and job["spec"]["epochs"] == 2 and job["owner"] == "tester"
    assert api.queue.sent == [(job["id"], "train")]
    assert api.get(f"/v1/jobs/{job['id']}").json()["id"] == job["id"]


def test_unknown_field_is_422_naming_the_field(api):
    r = api.post("/v1/jobs", json={"kind": "adversarial_training", "spec": {"epochz": 3}})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "spec", "epochz"]


def test_out_of_bounds_value_is_422(api):
    r = api.post("/v1/jobs", json={"kind": "adversarial_training", "spec": {"attack": {"eps": -1}}})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "spec", "attack", "eps"]


def test_server_limits_are_422_with_message(api):
    r = api.post("/v1/jobs", json={"kind": "adversarial_training", "spec": {**SMOKE, "epochs": 51}})
    assert r.status_code == 422 and "spec.epochs = 51 exceeds" in r.json()["detail"]
    r = api.post(
        "/v1/jobs", json={"kind": "adversarial_training", "spec": {**SMOKE, "attack": {"steps": 5000, "restarts": 2}}}
    )
    assert r.status_code == 422 and "spec.attack.steps = 10000 exceeds" in r.json()["detail"]
    protocol = {"ensemble": "standard", "queries": 50_000}
    r = api.post(
        "/v1/jobs", json={"kind": "attack_evaluation", "spec": {"model_id": api.model_id, "protocol": protocol}}
    )
    assert r.status_code == 422 and "spec.protocol.attacks[3].queries = 50000 exceeds" in r.json()["detail"]
    protocol = {"ensemble": "rand", "eot": 100}  # 100 iterations × EOT 100 per point
    r = api.post(
        "/v1/jobs", json={"kind": "attack_evaluation", "spec": {"model_id": api.model_id, "protocol": protocol}}
    )
    assert r.status_code == 422 and "spec.protocol.attacks[0].steps = 10000 exceeds" in r.json()["detail"]


def test_seeds_and_study_epochs_past_their_bounds_are_422_not_a_failed_job_or_a_500(api):
    """A seed past 2**31 - 1 was accepted and then overflowed the worker's derived seeds; a
    400-digit `epochs` on a study reached the limit message's float formatting (a 500)."""
    for spec in ({**SMOKE, "seed": 2**31}, {**SMOKE, "data": {"name": "digits", "seed": 2**63}}):
        r = api.post("/v1/jobs", json={"kind": "adversarial_training", "spec": spec})
        assert r.status_code == 422 and "seed" in r.json()["detail"][0]["loc"], r.text[:300]
    for epochs in (10**400, 1001):
        r = api.post("/v1/studies", json={"epochs": epochs, "seeds": 1, "activations": ["relu"], "probes": []})
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "epochs"], r.text[:300]
    r = api.post("/v1/studies", json={"epochs": 51, "seeds": 1, "activations": ["relu"], "probes": []})
    assert r.status_code == 422 and "spec.epochs = 51 exceeds" in r.json()["detail"]


def test_unknown_kind_is_422(api):
    assert api.post("/v1/jobs", json={"kind": "mine_bitcoin", "spec": {}}).status_code == 422


def test_evaluation_of_a_missing_model_is_404(api):
    r = api.post("/v1/jobs", json={"kind": "attack_evaluation", "spec": {"model_id": "nope"}})
    assert r.status_code == 404 and "nope" in r.json()["detail"]


@pytest.mark.parametrize(
    "path", ["/v1/jobs/nope", "/v1/jobs/nope/metrics", "/v1/models/nope", "/v1/artifacts/nope", "/v1/studies/nope"]
)
def test_unknown_ids_are_404(api, path):
    r = api.get(path)
    assert r.status_code == 404 and "nope" in r.json()["detail"]


@pytest.mark.parametrize("header", [None, "Bearer rl_wrong", "Basic abc", "Bearer "])
def test_missing_or_wrong_key_is_401(api, header):
    headers = {"Authorization": header} if header is not None else {}
    api.headers.pop("Authorization")
    body = {"kind": "adversarial_training", "spec": {}}
    for method, path in (("GET", "/v1/jobs"), ("GET", "/v1/models"), ("POST", "/v1/jobs")):
        r = api.request(method, path, headers=headers, json=body if method == "POST" else None)
        assert r.status_code == 401, (method, path)


def test_every_v1_route_needs_a_key():
    paths = {p: ops for p, ops in create_app().openapi()["paths"].items() if p.startswith("/v1")}
    assert len(paths) >= 10
    for path, ops in paths.items():
        for method, op in ops.items():
            assert op.get("security") == [{"HTTPBearer": []}], (method, path)


def test_list_filters_and_paginates(api):
    ids = [api.post("/v1/jobs", json={"kind": "adversarial_training", "spec": SMOKE}).json()["id"] for _ in range(3)]
    page = api.get("/v1/jobs", params={"limit": 2}).json()
    assert page["total"] == 3 and len(page["items"]) == 2
    rest = api.get("/v1/jobs", params={"limit": 2, "offset": 2}).json()["items"]
    assert {j["id"] for j in page["items"] + rest} == set(ids)
    assert api.get("/v1/jobs", params={"status": "running"}).json()["total"] == 0
    assert api.get("/v1/jobs", params={"kind": "adversarial_training"}).json()["total"] == 3


def test_cancel_a_queued_job(api):
    job = api.post("/v1/jobs", json={"kind": "adversarial_training", "spec": SMOKE}).json()
    r = api.post(f"/v1/jobs/{job['id']}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"


def test_study_creates_one_job_per_variant_and_seed(api):
    r = api.post("/v1/studies", json={"seeds": 2, "activations": ["relu", "silu"], "probes": ["both"], "epochs": 1})
    assert r.status_code == 202
    study = r.json()
    assert study["jobs"] == {"queued": 6} and study["table"] == []
    assert api.get("/v1/jobs", params={"study": study["id"]}).json()["total"] == 6


def test_new_key_works(api):
    r = api.post("/v1/keys", json={"name": "colleague"})
    assert r.status_code == 201
    key = r.json()["key"]
    assert api.get("/v1/jobs", headers={"Authorization": f"Bearer {key}"}).status_code == 200


def test_health_and_metrics_need_no_key(api):
    api.headers.pop("Authorization")
    assert api.get("/healthz").json()["database"] == "ok"
    text = api.get("/metrics").text
    assert 'robustlab_jobs{status="queued"}' in text


def test_health_says_degraded_with_a_503_when_redis_is_away(api):
    api.settings.redis_url = "redis://127.0.0.1:1/0"  # nothing listens there
    r = api.get("/healthz")
    assert r.status_code == 503, r.text
    body = r.json()
    assert body["status"] == "degraded" and body["redis"].startswith("error") and body["database"] == "ok"


def test_samples_need_a_diffusion_model_and_bounded_requests(api):
    r = api.post("/v1/samples", json={"model_id": api.model_id, "n": 4})  # a classifier, not a diffusion model
    assert r.status_code == 404 and "diffusion model" in r.json()["detail"]
    assert api.post("/v1/samples", json={"model_id": "x", "n": 0}).status_code == 422
    assert api.post("/v1/samples", json={"model_id": "x", "sampler": "euler"}).status_code == 422


def test_ddpm_training_spec_is_validated_and_bounded(api):
    r = api.post("/v1/jobs", json={"kind": "ddpm_training", "spec": {"unet": {"block_out_channels": [30]}}})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][:3] == ["body", "spec", "unet"]
    r = api.post("/v1/jobs", json={"kind": "ddpm_training", "spec": {"epochs": 51}})
    assert r.status_code == 422 and "spec.epochs" in r.json()["detail"]


@pytest.mark.parametrize("path", ["/v1/jobs", "/v1/models"])
def test_huge_offsets_are_422_not_500(api, path):  # found by the schemathesis run
    assert api.get(path, params={"offset": 9223372036854775808}).status_code == 422
    assert api.get(path, params={"offset": 1_000_000_000}).json()["items"] == []


@pytest.mark.parametrize(
    "spec, loc",
    [
        ('{"epochs": NaN}', ["body", "spec", "epochs"]),
        ('{"optim": {"lr": Infinity}}', ["body", "spec", "optim", "lr"]),
        ('{"protocol": {"eps": -Infinity}}', ["body", "spec", "protocol", "eps"]),
        ('{"attack": {"eps": NaN}}', ["body", "spec", "attack", "eps"]),
    ],
)
def test_nan_and_infinities_are_422_naming_the_field(api, spec, loc):
    body = '{"kind": "adversarial_training", "spec": ' + spec + "}"
    r = api.post("/v1/jobs", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == loc
    assert r.json()["detail"][0]["input"] in ("NaN", "Infinity", "-Infinity") and not api.queue.sent


def test_a_result_holding_nan_is_served_as_null(api):
    from core.store import jobs as store_jobs
    from core.store.db import session_scope

    with session_scope(api.settings.database_url) as s:
        job_id = store_jobs.create_job(s, kind="adversarial_training", spec={}).id
        store_jobs.finish_job(s, job_id=job_id, status="failed", result={"final": {"train_loss": float("nan")}})
        store_jobs.add_metrics(s, job_id=job_id, step=1, metrics={"train_loss": float("inf")})
    assert api.get(f"/v1/jobs/{job_id}").json()["result"] == {"final": {"train_loss": None}}
    assert api.get(f"/v1/jobs/{job_id}/metrics").json()[0]["value"] is None


def test_a_training_recipe_is_accepted_and_a_bad_one_is_422(api):
    from core.contract.presets import train_preset

    spec = train_preset("fmnist-strong").model_dump(mode="json")
    assert api.post("/v1/jobs", json={"kind": "adversarial_training", "spec": spec}).status_code == 202
    bad = {**spec, "recipe": {**spec["recipe"], "holdout": 0}}  # the best epoch needs held-out images
    r = api.post("/v1/jobs", json={"kind": "adversarial_training", "spec": bad})
    assert r.status_code == 422 and "holdout" in str(r.json()["detail"])


def test_a_job_that_would_not_fit_any_worker_is_422_naming_the_fields(api, monkeypatch):
    from api import limits
    from core.contract.presets import train_preset

    monkeypatch.setattr(limits, "announced_budgets", lambda url: {"train": 4 * 2**30, "interactive": 2**30})
    gpu = train_preset("gpu").model_dump(mode="json")
    huge = {**gpu, "batch_size": 8192, "model": {**gpu["model"], "width": 512}}  # passes every field's bound
    r = api.post("/v1/jobs", json={"kind": "adversarial_training", "spec": huge})
    assert r.status_code == 422 and "more than any train worker offers (4.0 GiB)" in r.json()["detail"]
    assert "lower batch_size, model.width or model.arch" in r.json()["detail"]
    for preset in ("smoke", "cpu"):  # the presets fit
        spec = train_preset(preset).model_dump(mode="json")
        assert api.post("/v1/jobs", json={"kind": "adversarial_training", "spec": spec}).status_code == 202
    monkeypatch.setattr(limits, "announced_budgets", lambda url: {})  # nobody announced: no admission
    assert api.post("/v1/jobs", json={"kind": "adversarial_training", "spec": huge}).status_code == 202


def test_a_preset_with_overrides_is_a_spec(api):
    from core.contract.kinds import preset_specs

    body = {"kind": "adversarial_training", "preset": "smoke", "overrides": {"epochs": 2, "model": {"width": 8}}}
    r = api.post("/v1/jobs", json=body)
    assert r.status_code == 202, r.text
    expected = preset_specs("adversarial_training")["smoke"]
    expected["epochs"], expected["model"]["width"] = 2, 8  # nested objects merge key by key
    assert r.json()["spec"] == expected


@pytest.mark.parametrize(
    "body, says",
    [
        ({"kind": "adversarial_training", "preset": "huge"}, "no preset 'huge'; choose from smoke"),
        ({"kind": "adversarial_training", "preset": "smoke", "overrides": {"epochs": 0}}, "epochs"),
        ({"kind": "adversarial_training", "preset": "smoke", "overrides": {"epoch": 2}}, "epoch"),
        ({"kind": "adversarial_training", "preset": "smoke", "spec": {}}, "not both"),
        ({"kind": "adversarial_training", "overrides": {"epochs": 2}}, "overrides go with a preset"),
    ],
)
def test_a_bad_preset_request_is_422_naming_what_is_wrong(api, body, says):
    r = api.post("/v1/jobs", json=body)
    assert r.status_code == 422 and says in r.text, r.text
    assert not api.queue.sent


def test_studies_page_with_limit_and_offset(api):
    body = {"epochs": 1, "seeds": 1, "activations": ["relu"], "probes": []}
    made = [api.post("/v1/studies", json={**body, "name": f"s{i}"}).json()["id"] for i in range(3)]
    pages = [api.get("/v1/studies", params={"limit": 2, "offset": o}).json() for o in (0, 2)]
    assert [len(p) for p in pages] == [2, 1]
    assert sorted(s["id"] for p in pages for s in p) == sorted(made)
    assert api.get("/v1/studies", params={"offset": -1}).status_code == 422


def test_an_evaluation_on_other_data_than_its_models_is_422(api):
    """The default data is Fashion-MNIST; the fixture's model is a digits model: its evaluation
    would have been recorded on it as its robustness."""
    for kind in ("attack_evaluation", "certification"):
        r = api.post("/v1/jobs", json={"kind": kind, "spec": {"model_id": api.model_id}})
        assert r.status_code == 422 and "registered on 'digits', not 'fashion-mnist'" in r.json()["detail"], r.text
        assert '{"name": "digits"}' in r.json()["detail"]
    r = api.post(
        "/v1/jobs", json={"kind": "attack_evaluation", "spec": {"model_id": api.model_id, "data": {"name": "digits"}}}
    )
    assert r.status_code == 202, r.text


def test_a_defense_or_forward_explorer_that_does_not_fit_its_parts_is_422(api):
    from core.store.db import session_scope
    from core.store.registry import register_model

    def register(s, kind, dataset, **extra):
        fields = {"name": "x", "activation": "relu", "summary": {}, "checkpoint_uri": f"c/{kind}{dataset}"}
        return register_model(
            s, kind=kind, dataset=dataset, **{"architecture": "unet", "recipe": {}, **fields, **extra}
        ).id

    with session_scope(api.settings.database_url) as s:
        ddpm = register(s, "diffusion", "digits", recipe={"num_train_timesteps": 100})
        other = register(s, "diffusion", "mnist", recipe={"num_train_timesteps": 100})
        defense = {"defense": {"classifier_id": api.model_id, "diffusion_id": ddpm}}
        purified = register(s, "classifier", "digits", architecture="purified", recipe=defense)

    def defended(classifier, diffusion, t_star=50):
        spec = {"classifier_id": classifier, "diffusion_id": diffusion, "purifier": {"t_star": t_star, "steps": 5}}
        return api.post("/v1/jobs", json={"kind": "defended_model", "spec": spec})

    for r, says in (
        (defended(purified, ddpm), "is already a defended model"),
        (defended(api.model_id, other), "the classifier is of 'digits', the diffusion model of 'mnist'"),
        (defended(api.model_id, ddpm, t_star=100), "t_star: 100 must be below the diffusion model's T = 100"),
    ):
        assert r.status_code == 422 and says in r.json()["detail"], r.text
    assert defended(api.model_id, ddpm).status_code == 202
    r = api.post("/v1/samples/forward", json={"model_id": ddpm, "timesteps": [0, 100]})
    assert r.status_code == 422 and "100 is not below the diffusion model's T = 100" in r.json()["detail"], r.text


def test_a_test_index_past_the_models_test_split_is_422(api):
    """The fixture's model is a digits model: 297 test images."""
    r = api.post("/v1/attacks", data={"model_id": api.model_id, "test_index": "297"})
    assert r.status_code == 422 and "297 is past digits's 297 test images (0 to 296)" in r.json()["detail"], r.text
    assert api.post("/v1/attacks", data={"model_id": api.model_id, "test_index": "296"}).status_code == 202


def test_an_image_attack_on_a_defended_model_counts_the_purifiers_steps(api):
    import json

    from core.store.db import session_scope
    from core.store.registry import register_model

    defense = {"defense": {"classifier_id": api.model_id, "diffusion_id": "d", "purifier": {"steps": 10}}}
    with session_scope(api.settings.database_url) as s:
        fields = {"name": "p", "activation": "relu", "summary": {}, "checkpoint_uri": "c/p", "kind": "classifier"}
        purified = register_model(s, dataset="digits", architecture="purified", recipe=defense, **fields).id
    form = {"model_id": purified, "test_index": "0"}
    r = api.post("/v1/attacks", data={**form, "attack": json.dumps({"steps": 1000})})
    assert r.status_code == 422 and "are 10000 network passes per image, over the limit of 5000" in r.text, r.text
    assert api.post("/v1/attacks", data={**form, "attack": json.dumps({"steps": 20})}).status_code == 202


def test_a_running_job_whose_worker_stopped_renewing_its_lease_reads_as_stalled(api):
    from datetime import timedelta

    from core.store import jobs as store_jobs
    from core.store.db import session_scope
    from core.store.orm import Job, utcnow

    job = api.post("/v1/jobs", json={"kind": "adversarial_training", "spec": SMOKE}).json()
    assert api.get(f"/v1/jobs/{job['id']}").json()["stalled"] is False  # queued
    with session_scope(api.settings.database_url) as s:
        store_jobs.claim_job(s, job_id=job["id"], worker="w", lease_seconds=60)
    read = api.get(f"/v1/jobs/{job['id']}").json()
    assert read["status"] == "running" and read["lease_expires_at"] and read["stalled"] is False
    with session_scope(api.settings.database_url) as s:  # the worker died: nothing renewed it
        s.get(Job, job["id"]).lease_expires_at = utcnow() - timedelta(seconds=1)
    assert api.get(f"/v1/jobs/{job['id']}").json()["stalled"] is True
