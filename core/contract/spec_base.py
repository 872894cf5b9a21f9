"""The base of every job spec (torch-free): unknown fields are errors, numbers are finite, values
are validated on assignment. Its own module so that spec modules can share it without importing
each other."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

Seed = Annotated[int, Field(ge=0, le=2**31 - 1)]
NO_NUL = r"^[^\x00]*$"  # PostgreSQL stores no NUL character in text
Name = Annotated[str, Field(min_length=1, max_length=200, pattern=NO_NUL)]  # what a job registers is called
"""A random seed: what every seeding API (torch, NumPy, CUDA) takes, with room for the seeds
derived from it."""


class Spec(BaseModel):
    """Base for every spec: unknown fields are errors, numbers must be finite (no NaN, no
    infinities), values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)
