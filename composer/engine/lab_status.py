"""What `tisbench status` shows of one lab, local or swarm: its identity from the tisbench labels
on any of its objects, and the state of each service."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from composer.core.labels import LAB_LABEL, MODEL_LABEL, RELEASE_LABEL, STACK_LABEL


@dataclass
class LabStatus:
    name: str
    release: str
    model: str
    stack: str
    services: dict[str, str] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    age_s: float = 0.0
    orphaned: bool = False
    problem: str | None = None

    @classmethod
    def from_labels(cls, labels: Mapping[str, str]) -> LabStatus:
        """A lab's identity from the tisbench labels on any of its objects."""
        return cls(
            labels[LAB_LABEL],
            labels.get(RELEASE_LABEL, "?"),
            labels.get(MODEL_LABEL, "?"),
            labels.get(STACK_LABEL, "?"),
        )

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)
