"""Links between pages that carry what they are about in the address (?model=&layer=&channel=),
so a teacher can keep them in tabs and a student can send one."""
from __future__ import annotations

import streamlit as st

UNIT_PAGE = "app_pages/unit.py"


def unit_link(model_key: str, layer: str, channel: int, label: str | None = None) -> None:
    """A link to the unit page of `channel` of `layer` (for zoo networks; a person's checkpoint
    stays in their session, so its link carries only the layer and channel)."""
    params = {"layer": layer, "channel": str(channel)}
    if not model_key.startswith("custom:"):
        params["model"] = model_key
    st.page_link(UNIT_PAGE, label=label or f"What does channel {channel} detect?", icon=":material/search:",
                 query_params=params)


def wanted(name: str, default: str | None = None) -> str | None:
    """A value the address asked for (a link's ?name=...), else `default`."""
    return st.query_params.get(name, default)
