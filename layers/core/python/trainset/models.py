"""Plain records shared by services, adapters and routes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ROLES = ("coder", "manager")
STATUSES = ("trainee", "certified", "revoked")


@dataclass(frozen=True)
class Coder:
    id: int
    name: str
    role: str
    status: str

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Coder:
        return cls(id=row["id"], name=row["name"], role=row["role"], status=row["status"])

    @property
    def is_manager(self) -> bool:
        return self.role == "manager"

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "role": self.role, "status": self.status}
