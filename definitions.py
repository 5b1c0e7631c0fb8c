"""Dagster entry point (`dagster dev` from the repo root loads it through workspace.yaml)."""

from dagster import Definitions

import assets
import sensors

defs = Definitions.merge(assets.defs, sensors.defs)
