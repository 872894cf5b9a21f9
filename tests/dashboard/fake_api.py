"""A fake of `core.contract.client.Lab` for the pages' AppTests: canned data passed through the
API's own response models (`api.schemas`, `core.contract.results`), so that an answer the API
could not give fails here, and a record of every call."""

from __future__ import annotations

import io

from PIL import Image
from pydantic import BaseModel, TypeAdapter

from api import schemas
from core.contract.client import Job, LabError

T0 = "2026-11-25T10:00:00"


def shaped(model, data):
    """`data` as the API would send it under the response model `model` (raises if it could not)."""
    if isinstance(model, type) and issubclass(model, BaseModel):
        return model.model_validate(data).model_dump(mode="json")
    adapter = TypeAdapter(model)
    return adapter.dump_python(adapter.validate_python(data), mode="json")


def png(value: int = 128) -> bytes:
    buf = io.BytesIO()
    Image.new("L", (8, 8), value).save(buf, format="PNG")
    return buf.getvalue()


def job(ident: str, kind: str = "adversarial_training", status: str = "succeeded", **extra) -> dict:
    return {
        "id": ident,
        "kind": kind,
        "status": status,
        "spec": {"epochs": 3},
        "progress": 1.0 if status == "succeeded" else 0.4,
        "message": "epoch 2/3",
        "result": None,
        "error": None,
        "owner": "test",
        "study_id": None,
        "error_type": None,
        "attempts": 1,
        "attempt_log": None,
        "cancel_requested": False,
        "created_at": T0,
        "started_at": T0,
        "finished_at": "2026-11-25T10:05:00" if status == "succeeded" else None,
        "updated_at": T0,
        **extra,
    }


def evaluation(clean: float, robust: float, ensemble: str = "standard", job_id: str | None = None) -> dict:
    label = {
        "standard": "standard (apgd-ce100, apgd-t100, fab-t100, square5000), L∞ ε=0.1, 1000 images, seed 0",
        "pgd": "pgd (fgsm, pgd20), L∞ ε=0.1, 1000 images, seed 0 [cheap check, not a robustness claim]",
    }[ensemble]
    return {
        "protocol": {"ensemble": ensemble, "eps": 0.1, "norm": "linf"},
        "protocol_label": label,
        "images": 1000,
        "eps": 0.1,
        "norm": "linf",
        "clean_acc": clean,
        "robust_acc": robust,
        "job_id": job_id,
        "breakdown": [
            {"attack": "apgd-ce100-linf", "broken": 200, "robust_acc": robust + 0.02},
            {"attack": "apgd-t100-linf", "broken": 20, "robust_acc": robust},
            {"attack": "fab-t100-linf", "broken": 0, "robust_acc": robust},
            {"attack": "square5000-linf", "broken": 0, "robust_acc": robust},
        ],
        "checks": {
            "randomized": False,
            "outputs_probabilities": False,
            "zero_gradient_share": 0.0,
            "black_box_share": 0.0,
        },
        "warnings": [],
    }


def classifier(ident: str, activation: str, clean: float, robust: float) -> dict:
    curve = [{"eps": e, "robust_acc": robust * (1 - e) if e else clean} for e in (0.0, 0.05, 0.1, 0.2)]
    headline = evaluation(clean, robust, job_id=f"job-{ident}")
    return {
        "id": ident,
        "kind": "classifier",
        "name": f"fmnist-{activation}-{ident}",
        "job_id": f"job-{ident}",
        "dataset": "fashion-mnist",
        "architecture": "small_cnn",
        "activation": activation,
        "recipe": {"epochs": 5, "method": "pgd"},
        "created_at": T0,
        "summary": {
            **headline,
            "curve": curve,
            "curve_protocol_label": "pgd (fgsm, pgd20) [cheap check]",
            "evaluations": [headline, evaluation(clean, robust + 0.03, "pgd", "job-e")],
        },
    }


DIFFUSION = {
    "id": "diff1",
    "kind": "diffusion",
    "name": "fmnist-ddpm-seed0",
    "job_id": "job-d",
    "dataset": "fashion-mnist",
    "architecture": "unet2d",
    "activation": "silu",
    "recipe": {},
    "created_at": T0,
    "summary": {"quality": {"frechet_distance": 131.3, "samples": 500, "mean_confidence": 0.73}},
}


GENERATED = {
    "id": "gen1",
    "name": "fashion-mnist-generated-19000",
    "label": "uploaded:gen1",
    "classes": [f"c{i}" for i in range(10)],
    "train": [1900] * 10,
    "test": [1000] * 10,
    "channels": 1,
    "image_size": 28,
    "owner_id": "u1",
    "created_at": T0,
    "provenance": {
        "diffusion_model_id": "diff1",
        "sampler": "ddim",
        "steps": 50,
        "eta": 1.0,
        "guidance_scale": 1.0,
        "seed": 0,
        "filter": {"classifier_id": "m1", "mode": "agree", "confidence": 0.0},
        "drawn_per_class": [2000] * 10,
        "kept_per_class": [1900] * 10,
        "grid_artifact_id": "grid1",
        "quality": {"frechet_distance": 30.8, "samples": 1000, "mean_confidence": 0.77},
    },
}


def defended(ident: str, robust: dict[str, float]) -> dict:
    """A purification defense evaluated three ways (`robust`: way → robust accuracy)."""
    model = classifier(ident, "relu", 0.7, min(robust.values()))
    entry = evaluation(0.7, min(robust.values()), job_id=f"job-{ident}")
    ways = {w: {"clean_acc": 0.7, "robust_acc": r, "breakdown": []} for w, r in robust.items()}
    entry["defense"] = {"purifier": {"t_star": 100, "steps": 10, "sampler": "ddim"}, **ways}
    model["architecture"] = "purified"
    model["summary"]["evaluations"] = [entry]
    return model


class FakeApi:
    base_url = "http://fake"

    def __init__(
        self,
        *,
        jobs: list[dict] | None = None,
        models: list[dict] | None = None,
        fail: str | None = None,
        user: str = "test",
        role: str = "admin",
    ):
        self.calls: list[tuple] = []
        self._jobs = jobs if jobs is not None else [job("a1"), job("r1", status="running")]
        self._models = (
            models
            if models is not None
            else [
                classifier("m1", "relu", 0.80, 0.66),
                classifier("m2", "relu", 0.82, 0.68),
                classifier("m3", "silu", 0.83, 0.70),
                DIFFUSION,
            ]
        )
        self.fail = fail  # a method name that raises LabError, to test error display
        self.user, self.role = user, role

    def _record(self, name: str, *args, **kwargs):
        self.calls.append((name, args, kwargs))
        if name == self.fail:
            raise LabError("503 Service Unavailable: the database is away")

    def me(self):
        self._record("me")
        return shaped(schemas.Me, {"user_id": "u1", "name": self.user, "role": self.role, "key_id": "k1"})

    def jobs(self, **filters):
        self._record("jobs", **filters)
        items = [
            j
            for j in self._jobs
            if filters.get("kind") in (None, j["kind"])
            and filters.get("status") in (None, j["status"])
            and filters.get("study") in (None, j["study_id"])
        ]
        return shaped(schemas.JobList, {"items": items, "total": len(items), "limit": 200, "offset": 0})

    def job(self, job_id):
        self._record("job", job_id)
        found = [j for j in self._jobs if j["id"] == job_id]
        if not found:
            raise LabError(f"404 Not Found: no job with id {job_id!r}")
        return Job(self, shaped(schemas.JobOut, found[0]))

    def metrics(self, job_id):
        self._record("metrics", job_id)
        return shaped(
            list[schemas.MetricOut],
            [
                {"step": s, "name": n, "value": v}
                for s in (1, 2)
                for n, v in (("train_loss", 1.0 / s), ("clean_acc", 0.5 + 0.1 * s), ("robust_acc", 0.3 + 0.1 * s))
            ],
        )

    def artifacts(self, job_id):
        self._record("artifacts", job_id)
        return shaped(
            list[schemas.ArtifactOut],
            [
                {
                    "id": "art1",
                    "type": "image",
                    "name": "grid.png",
                    "size": 100,
                    "sha256": "x",
                    "content_type": "image/png",
                    "url": "/v1/artifacts/art1",
                }
            ],
        )

    def cancel(self, job_id):
        self._record("cancel", job_id)
        return shaped(schemas.JobOut, job(job_id, status="cancelled"))

    def submit(self, kind, spec):
        self._record("submit", kind, spec)
        return Job(self, shaped(schemas.JobOut, job("new1", kind=kind, status="queued", spec=spec)))

    def presets(self):
        from api.routes.presets import list_presets

        self._record("presets")
        return shaped(schemas.Presets, list_presets(None))

    def models(self, **filters):
        self._record("models", **filters)
        items = [
            m
            for m in self._models
            if filters.get("kind") in (None, m["kind"])
            and filters.get("dataset") in (None, m["dataset"])
            and filters.get("activation") in (None, m["activation"])
        ]
        return shaped(schemas.ModelList, {"items": items, "total": len(items), "limit": 200, "offset": 0})

    def datasets(self):
        self._record("datasets")
        catalogue = {"named": [{"name": "fashion-mnist", "classes": []}], "folders": [], "uploaded": [GENERATED]}
        return shaped(schemas.Catalogue, catalogue)

    def create_study(self, body):
        self._record("create_study", body)
        return shaped(
            schemas.StudyOut,
            {
                "id": "s1",
                "name": body["name"],
                "preset": "sat",
                "spec": body,
                "created_at": T0,
                "jobs": {"queued": 3},
                "table": [],
            },
        )

    def studies(self):
        self._record("studies")
        return shaped(list[schemas.StudySummary], [{"id": "s1", "name": "sat", "preset": "sat", "created_at": T0}])

    def study(self, study_id):
        self._record("study", study_id)
        return shaped(
            schemas.StudyOut,
            {
                "id": study_id,
                "name": "sat",
                "preset": "sat",
                "spec": {},
                "created_at": T0,
                "jobs": {"succeeded": 2},
                "table": [{"variant": "relu", "runs": 2, "clean_acc_mean": 0.81}],
            },
        )

    def attack(self, model_id, attack, *, image=None, test_index=None, wait=30):
        self._record("attack", model_id, attack, image=image, test_index=test_index)
        probs_clean = [0.9] + [0.1 / 9] * 9
        probs_adv = [0.05, 0.8] + [0.15 / 8] * 8
        result = {
            "model_id": model_id,
            "label": 0,
            "attack": attack,
            "classes": ["T-shirt/top", "Trouser"] + [f"c{i}" for i in range(2, 10)],
            "clean": {"prediction": 0, "probabilities": probs_clean},
            "adversarial": {"prediction": 1, "probabilities": probs_adv},
            "linf": 0.1,
            "l2": 1.9,
            "input_artifact_id": None if image is None else "in",
            "test_index": test_index,
            "adversarial_artifact_id": "adv",
            "perturbation_artifact_id": "pert",
            "input_url": None if image is None else "/v1/artifacts/in",
            "adversarial_url": "/v1/artifacts/adv",
            "perturbation_url": "/v1/artifacts/pert",
        }
        return shaped(schemas.ImageAttackAnswer, job("att1", kind="image_attack", result=result))

    def samples(self, body, wait=30):
        self._record("samples", body)
        frames = [f"t{i}" for i in range(8)]
        result = {
            "model_id": body["model_id"],
            "n": body["n"],
            "sampler": body["sampler"],
            "steps": body["steps"],
            "seconds": 1.5,
            "grid_artifact_id": "grid",
            "sample_artifact_ids": [],
            "trajectory_artifact_ids": frames,
            "grid_url": "/v1/artifacts/grid",
            "trajectory_urls": [f"/v1/artifacts/{f}" for f in frames],
        }
        return shaped(schemas.SamplesAnswer, job("smp1", kind="ddpm_sampling", result=result))

    def forward(self, body, wait=30):
        self._record("forward", body)
        ts = [0, 111, 222, 333, 444, 555, 666, 777, 888, 999]
        result = {
            "model_id": body["model_id"],
            "test_index": body.get("test_index", 0),
            "label": 3,
            "timesteps": ts,
            "alpha_bars": [1 - t / 1000 for t in ts],
            "image_artifact_id": "x0",
            "x_t_artifact_ids": [f"xt{t}" for t in ts],
            "x0_pred_artifact_ids": [f"xp{t}" for t in ts],
            "image_url": "/v1/artifacts/x0",
            "x_t_urls": [f"/v1/artifacts/xt{t}" for t in ts],
            "x0_pred_urls": [f"/v1/artifacts/xp{t}" for t in ts],
        }
        return shaped(schemas.ForwardAnswer, job("fwd1", kind="ddpm_forward", result=result))

    def image(self, url):
        self._record("image", url)
        return png()


def certification(clean: float = 0.8, certified: tuple[float, ...] = (0.6, 0.4, 0.1)) -> dict:
    """A certification job's result, shaped by the model core returns."""
    from core.evaluation.certification import Certification

    radii = (0.25, 0.5, 1.0)
    curve = [{"radius": 0.0, "certified_acc": clean - 0.05, "empirical_acc": clean}]
    for r, c in zip(radii, certified, strict=True):
        curve.append({"radius": r, "certified_acc": c, "empirical_acc": c + 0.1})
    whole = Certification(
        spec={"smoothing": {"sigma": 0.25, "n0": 100, "n": 10_000, "alpha": 0.001}},
        label="smoothing σ=0.25 (n0=100, n=10000, α=0.001), 500 images, seed 0",
        images=500,
        clean_acc=clean,
        abstain_rate=0.07,
        curve=curve,
        predictions=[],
        radii=[],
        labels=[],
        seconds=12.0,
    ).model_dump()
    return {k: v for k, v in whole.items() if k not in ("predictions", "radii", "labels")}
