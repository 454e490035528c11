"""The collection picker the dataset pages share: built-in samples, Fashion-MNIST, Imagenette and
CIFAR-10 (torchvision downloads, kept after the first time), a folder, a zip.

Collections from the server (samples, Fashion-MNIST, a folder) are opened once for every session
(`st.cache_resource`; they decode lazily and are never changed); an uploaded zip belongs to the
session that uploaded it.
"""
from __future__ import annotations

import streamlit as st

from vislib.data import collections as datasets

SOURCES = {name: label for name, (label, _) in datasets.NAMED.items() if name != "fashion-mnist-test"} | {
    "folder": "A folder on the server",
    "zip": "A zip of your pictures",
}


@st.cache_resource(max_entries=8, show_spinner="Opening the collection (a download takes a minute the first time)...")
def _shared(source: str) -> datasets.Collection:
    return datasets.open_collection(source)


@st.cache_resource(max_entries=8, ttl=60, show_spinner="Reading the folder...")
def _folder(path: str) -> datasets.Collection:
    return datasets.open_collection(path)  # ttl: the folder may change; its key says when it has


def _uploaded(key: str):
    upload = st.file_uploader("Zip of a folder (class sub-folders give labels)", type=["zip"], key=f"{key}-zip",
                              max_upload_size=datasets.MAX_ZIP_BYTES >> 20)
    if upload is None:
        return None
    kept = st.session_state.get(f"{key}-zip-cache")
    if kept is None or kept[0] != upload.file_id:
        try:
            kept = (upload.file_id, datasets.open_collection(upload), None)  # named after the file
        except datasets.CollectionError as err:
            kept = (upload.file_id, None, str(err))
        st.session_state[f"{key}-zip-cache"] = kept
    if kept[2]:
        st.error(kept[2])
    return kept[1]


def pick_collection(key: str = "collection", default: str = "samples"):
    """Controls to choose a collection; returns (collection, collection.key), or None until one is chosen."""
    options = list(SOURCES)
    kind = st.selectbox("Collection", options, index=options.index(default), key=f"{key}-source",
                        format_func=SOURCES.get)
    try:
        if kind == "folder":
            path = st.text_input("Folder path on the server (class sub-folders give labels)", key=f"{key}-path")
            collection = _folder(path.strip()) if path.strip() else None
        elif kind == "zip":
            collection = _uploaded(key)
        else:
            collection = _shared(kind)
    except datasets.CollectionError as err:
        st.error(str(err))
        return None
    if collection is None:
        st.info("Choose the pictures to look at.")
        return None
    labels = f", {len(collection.classes)} classes" if collection.classes else ", no labels"
    n = collection.skipped
    skipped = f"; {n} unreadable file{'s' if n > 1 else ''} skipped" if n else ""
    st.caption(f"{collection.name}: {len(collection):,} pictures{labels}, from {collection.source_note}{skipped}.")
    return collection, collection.key
