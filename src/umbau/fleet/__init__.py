"""Fleets: the same safe upgrade (or backfill) across many databases (one per tenant or
shop), canary first, with a failure budget, shared by as many worker processes and
machines as you like through a control database.

``upgrade(settings, options)`` runs or joins a run; ``backfill(settings, spec, options)``
the same with a backfill; ``status``/``check`` read every target's revision;
``fleet_options(settings, source, **flags)`` builds the options from
``[tool.umbau.fleet]`` and flags. See docs/fleet.md.
"""

from __future__ import annotations

from umbau.fleet.config import FleetOptions, fleet_options
from umbau.fleet.status import FleetStatus, TargetStatus, check, status
from umbau.fleet.targets import Target, TargetSource
from umbau.fleet.upgrade import FleetResult, backfill, upgrade

__all__ = ["FleetOptions", "FleetResult", "FleetStatus", "Target", "TargetSource",
           "TargetStatus", "backfill", "check", "fleet_options", "status", "upgrade"]
