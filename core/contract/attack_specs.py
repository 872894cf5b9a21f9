"""Attack and protocol specs: what an attack is and how a robust accuracy is measured.

Torch-free like the rest of the contract (the API imports it); every field bounded, every option
an attack does not read refused.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from core.contract.names import GRADIENT_ATTACKS, AttackName, EnsembleName, Norm
from core.contract.spec_base import Seed, Spec

# The fields only some attacks read, and those attacks: a spec that sets one for another attack
# is refused (it would be silently ignored: an APGD sent `queries`, a Square sent `steps`).
OWN_FIELDS: dict[str, set[str]] = {
    "steps": {"pgd", "apgd-ce", "apgd-dlr", "apgd-t", "fab-t", "fmn"},
    "step_size": {"pgd", "fgsm"},
    "targets": {"apgd-t", "fab-t"},
    "queries": {"square"},
}


class AttackSpec(Spec):
    """An attack: `attack(model, x, y) -> x_adv` inside the `norm` ball of radius `eps`.

    Args:
        name: `pgd`, `fgsm` (one full step of size ε, optionally from a random start), `apgd-ce`,
            `apgd-dlr`, `apgd-t` (Auto-PGD on cross-entropy, DLR and targeted DLR; Croce & Hein
            2020), `fab-t` (the targeted Fast Adaptive Boundary attack, Croce & Hein 2020: the
            least-norm adversarial toward each target, kept where its norm is within ε), `fmn`
            (the Fast Minimum-Norm attack, Pintor et al. 2021, at the fixed ε: the least-norm
            adversarial where its norm is within ε; its L1 version and the whole curve of one run
            come from `core.evaluation.minimal_norm_curve`) or `square` (the score-based Square Attack,
            Andriushchenko et al. 2020).
        norm: `linf` or `l2`.
        eps: radius ε of the threat model (default 0.1, the Fashion-MNIST L∞ convention).
        steps: iterations; `None` gives 10 for PGD and 100 for APGD, FAB-T and FMN (ignored by
            FGSM and Square).
        step_size: PGD's step α; `None` gives 2.5·ε/steps (Madry et al.) and ε for FGSM (1.25·ε
            with a random start, Wong et al. 2020). APGD sets its own, starting at 2ε.
        random_start: start from a uniform point of the ball (PGD, FGSM; APGD always does).
        restarts: independent runs; the per-sample worst case is kept (FAB-T: runs per target;
            FMN has one run only).
        early_stop: stop moving a sample once it is misclassified (for measuring robust accuracy;
            evaluation turns it on). Training wants the highest-loss point: leave it off there.
            APGD and Square always stop on a point once it is broken, except in the evaluation
            of a randomized model, which runs every point for all its iterations. FAB-T and FMN
            look for the least norm: they run every point for all their iterations (FAB-T drops
            a point between its runs, once it is broken within ε).
        eot: gradient attacks only: average the gradient over this many forward passes
            (expectation over transformation, for randomized models). Default 1.
        targets: `apgd-t` and `fab-t` only: how many of the most likely wrong classes to target,
            one run each (default 9).
        queries: `square` only: model evaluations per point and restart (default 5,000).
    """

    name: AttackName = "pgd"
    norm: Norm = "linf"
    eps: float = Field(default=0.1, ge=0, le=100)
    steps: int | None = Field(default=None, ge=1, le=10_000)
    step_size: float | None = Field(default=None, gt=0, le=100)
    random_start: bool = True
    restarts: int = Field(default=1, ge=1, le=100)
    early_stop: bool = False
    eot: int = Field(default=1, ge=1, le=1000)
    targets: int = Field(default=9, ge=1, le=999)
    queries: int = Field(default=5000, ge=1, le=1_000_000)

    @model_validator(mode="after")
    def _eot_needs_gradients(self) -> AttackSpec:
        for name in self.model_fields_set & OWN_FIELDS.keys():
            given, default = getattr(self, name), type(self).model_fields[name].default
            if given != default and self.name not in OWN_FIELDS[name]:
                users = ", ".join(sorted(OWN_FIELDS[name]))
                raise ValueError(f"{name} is an option of {users}: {self.name} has no use for it")
        if self.eot > 1 and self.name not in GRADIENT_ATTACKS:
            raise ValueError(f"eot averages gradients: {self.name} uses none")
        if self.restarts > 1 and self.name == "fmn":
            raise ValueError("fmn makes one run (it starts at x and has no random start): give restarts 1")
        return self

    @property
    def iterations(self) -> int:
        """Gradient steps per run: 1 for FGSM, `steps` (default 10) for PGD, `steps` (default 100)
        for APGD, FAB-T and FMN, 0 for Square."""
        if self.name == "fgsm":
            return 1
        if self.name == "square":
            return 0
        return self.steps or (10 if self.name == "pgd" else 100)

    @property
    def cost(self) -> int:
        """Model evaluations per point in the worst case (forward + backward counts as one).
        FAB-T's iteration adds a forward pass (is the new iterate adversarial?) to its `eot`
        gradient passes."""
        if self.name == "square":
            return self.queries * self.restarts
        runs = self.restarts * (self.targets if self.name in ("apgd-t", "fab-t") else 1)
        return self.iterations * runs * (self.eot + (self.name == "fab-t"))

    @property
    def label(self) -> str:
        """Short name, e.g. `pgd20-linf`, `apgd-t100-linf`, `square5000-l2`, `apgd-ce100-linf-eot20`."""
        if self.name == "fgsm":
            base = "fgsm"
        elif self.name == "square":
            base = f"square{self.queries}"
        else:
            base = f"{self.name}{self.iterations}"
        extra = (f"x{self.restarts}" if self.restarts > 1 else "") + (f"-eot{self.eot}" if self.eot > 1 else "")
        return f"{base}-{self.norm}{extra}"


class ProtocolSpec(Spec):
    """How a robust accuracy is measured: stored with every number it produces.

    Args:
        ensemble: `standard` (APGD-CE, APGD-T, FAB-T, Square: AutoAttack's standard version, in
            its order, the number to report), `rand` (APGD-CE and APGD-DLR with EOT, for randomized models, as
            AutoAttack's rand version: every point runs all its iterations and is judged by its
            expected outcome over several passes), `pgd`
            (FGSM and PGD-20: cheap, for monitoring, not a robustness claim) or `custom`
            (`attacks` as given). Attacks run in order, each on the points still standing.
        norm: `linf` or `l2`.
        eps: the radius ε.
        images: how many test images: the first ones of the test split (as `data` draws it).
        seed: seeds the attacks' random starts and searches (the same seed, the same number).
        steps: APGD's and FAB-T's iterations (default 100; PGD's for `pgd`, default 20).
        queries: Square's budget per point (default 5,000).
        eot: `rand`'s gradient samples per step (default 20).
        attacks: `custom`'s attacks; their `eps` and `norm` are the protocol's.
    """

    ensemble: EnsembleName = "standard"
    norm: Norm = "linf"
    eps: float = Field(default=0.1, ge=0, le=100)
    images: int = Field(default=1000, ge=1, le=100_000)
    seed: Seed = 0
    steps: int | None = Field(default=None, ge=1, le=10_000)
    queries: int = Field(default=5000, ge=1, le=1_000_000)
    eot: int = Field(default=20, ge=1, le=1000)
    attacks: list[AttackSpec] | None = Field(default=None, min_length=1, max_length=8)

    @model_validator(mode="after")
    def _attacks_only_for_custom(self) -> ProtocolSpec:
        if (self.ensemble == "custom") != (self.attacks is not None):
            raise ValueError("give attacks exactly when ensemble is 'custom'")
        return self

    @property
    def least_classes(self) -> int:
        """The classes a model needs for this protocol: 4 for `standard`'s targeted DLR (the
        label, the target and two more classes), 3 for `rand`'s DLR, else any."""
        return {"standard": 4, "rand": 3}.get(self.ensemble, 0)

    def attack_specs(self, eps: float | None = None) -> list[AttackSpec]:
        """The attacks, in the order they run, at radius `eps` (default the protocol's)."""
        common = {"norm": self.norm, "eps": self.eps if eps is None else eps}
        steps = self.steps
        if self.ensemble == "standard":
            specs = [
                AttackSpec(name="apgd-ce", steps=steps or 100, **common),
                AttackSpec(name="apgd-t", steps=steps or 100, targets=9, **common),
                AttackSpec(name="fab-t", steps=steps or 100, targets=9, **common),
                AttackSpec(name="square", queries=self.queries, **common),
            ]
        elif self.ensemble == "rand":
            specs = [
                AttackSpec(name="apgd-ce", steps=steps or 100, eot=self.eot, **common),
                AttackSpec(name="apgd-dlr", steps=steps or 100, eot=self.eot, **common),
            ]
        elif self.ensemble == "pgd":
            specs = [
                AttackSpec(name="fgsm", random_start=False, **common),
                AttackSpec(name="pgd", steps=steps or 20, **common),
            ]
        else:
            specs = [a.model_copy(update=common) for a in self.attacks]
        return [a.model_copy(update={"early_stop": True}) for a in specs]

    @property
    def full_strength(self) -> bool:
        """The ensemble at the settings its authors use (what a paper may report as such)."""
        if self.ensemble == "standard":
            return self.steps in (None, 100) and self.queries >= 5000
        if self.ensemble == "rand":
            return self.steps in (None, 100) and self.eot >= 20
        return self.ensemble == "custom"

    @property
    def label(self) -> str:
        """E.g. `standard (apgd-ce100, apgd-t100, fab-t100, square5000), L∞ ε=0.1, 1000 images, seed 0`."""
        names = ", ".join(a.label.replace(f"-{self.norm}", "") for a in self.attack_specs())
        norm = {"linf": "L∞", "l2": "L2"}[self.norm]
        reduced = "" if self.full_strength or self.ensemble == "pgd" else " [reduced settings]"
        cheap = " [cheap check, not a robustness claim]" if self.ensemble == "pgd" else ""
        return (
            f"{self.ensemble} ({names}), {norm} ε={self.eps:g}, {self.images} images, seed {self.seed}{reduced}{cheap}"
        )
