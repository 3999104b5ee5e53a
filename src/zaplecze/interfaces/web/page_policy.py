"""The pages' permissions, by route name (merged into ``policy.POLICY``)."""

from __future__ import annotations

PAGE_POLICY: dict[str, str] = {}
