"""How frechet-recomputed.json was made: the study's generated datasets were made before a fix to
the share of images dataset_generation measures (every j-th image, which picked two classes of the
unfiltered sets; now quality_picks), so their Fréchet distances were measured again, the way the
fixed job measures them, from the stored shards (run with the study's stack's settings):

    .venv/bin/python docs/data/study-generated-cpu/recompute_frechet.py DATASET_JOB_ID CLASSIFIER_ID
"""

import json
import sys

import numpy as np
import torch
from safetensors.numpy import load

from core.contract.specs import DataSpec
from core.data import load_dataset
from core.diffusion.quality import sample_quality
from core.jobs.generation_runners import QUALITY_SAMPLES, quality_picks
from core.jobs.model_cache import ModelCache
from core.settings import get_settings
from core.store.artifacts import ArtifactStore
from core.store.db import session_scope
from core.store.orm import RegisteredModel

settings = get_settings()
store = ArtifactStore(settings.artifact_url)
job_id, classifier_id = sys.argv[1], sys.argv[2]
with session_scope(settings.database_url) as s:
    uri = s.get(RegisteredModel, classifier_id).checkpoint_uri
classifier = ModelCache(1).get(classifier_id, uri, store, "cpu")  # as the worker loads it
meta = json.loads(store.get_bytes(f"jobs/{job_id}/dataset/dataset.json"))
shards = [f for f in meta["files"] if f.startswith("shard")]
arrays = [load(store.get_bytes(f"jobs/{job_id}/dataset/{f}"))["x_train"] for f in shards]
share = QUALITY_SAMPLES / sum(meta["provenance"]["drawn_per_class"])
kept = np.concatenate([a[quality_picks(len(a), share, k)] for k, a in enumerate(arrays)])[:QUALITY_SAMPLES]
real = load_dataset(DataSpec(name="fashion-mnist"))
n = min(len(kept), len(real.x_test))
q = sample_quality(classifier, torch.from_numpy(kept[:n]).float() / 255, real.x_test[:n], real.classes)
print(json.dumps(q))
