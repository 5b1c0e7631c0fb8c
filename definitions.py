"""Dagster entry point (`dagster dev` from the repo root loads it through workspace.yaml)."""

from dagster import Definitions

import assets
import sensors
from mdplatform._private import private_files

private_files()  # what the runs of this code location write (lake, warehouse) is the user's alone

defs = Definitions.merge(assets.defs, sensors.defs)
