"""An atlas of a network: for every channel of chosen layers, its top pictures of a collection,
its activation statistics and its feature visualisation, built once (locally or on Ray) and
opened instantly."""
from vislib.atlas.build import build
from vislib.atlas.reader import Atlas, open  # noqa: A004 - the contract's name
from vislib.atlas.store import AtlasError

__all__ = ["Atlas", "AtlasError", "build", "open"]
