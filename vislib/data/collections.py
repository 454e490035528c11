"""Image collections: a folder, a zip of one, the built-in samples, Fashion-MNIST, and torchvision's
downloads of Imagenette and CIFAR-10.

A Collection is a sequence of (RGB picture, label index or None) that decodes lazily: opening
a folder of 10,000 photos reads only their headers. `key` names the content (file list, sizes
and times; the zip's bytes; the data files), so caches of features stay valid exactly as long
as the pictures do. A file that cannot be read is skipped and counted in `skipped`, never fatal.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import threading
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from vislib.images import SUPPORTED_TYPES, ImageError, load_image
from vislib.images import allowed_formats, check_size  # the same header rules load_image applies

MAX_FILES = 50_000                  # pictures in one collection
MAX_ZIP_BYTES = 512 * 2**20         # the zip file itself
MAX_UNZIPPED_BYTES = 4 * 2**30      # all members together, as declared
MAX_MEMBER_BYTES = 50 * 2**20       # one member (the same cap load_image puts on one file)
MAX_RATIO = 100                     # pictures hardly compress; 100:1 on a large member is a bomb
HEADER_BYTES = 256 * 1024           # enough for any header, EXIF block included
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
_SUFFIXES = {f".{t}" for t in SUPPORTED_TYPES}


class CollectionError(ValueError):
    """A collection that cannot be opened; str(err) is one plain sentence for the person."""


def cache_dir(*parts: str) -> Path:
    """Where vislib keeps what it computed or downloaded: $VISLIB_CACHE, else ~/.cache/vislib."""
    root = os.environ.get("VISLIB_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "vislib")
    folder = Path(root, *parts)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class Collection(Sequence):
    """Pictures with optional labels: `collection[i] -> (PIL RGB image, label index or None)`.

    `classes` are the label names (empty when unlabelled), `name` a short title, `key` a content
    hash for caches, `source_note` says where the pictures come from, `skipped` counts files that
    could not be read (at opening, or later when a damaged file fails to decode: that picture is
    then shown as a grey square so positions stay stable).
    """

    def __init__(self, name: str, key: str, items: Sequence, read: Callable[[object], Image.Image],
                 labels: Sequence[int | None], classes: list[str], source_note: str, unreadable: int = 0):
        self.name, self.key, self.classes, self.source_note = name, key, classes, source_note
        self._items, self._read, self._labels = items, read, labels
        self._unreadable = unreadable
        self.failed: set[int] = set()  # positions whose file failed to decode after opening

    @property
    def skipped(self) -> int:
        return self._unreadable + len(self.failed)

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, i: int) -> tuple[Image.Image, int | None]:
        if isinstance(i, slice):
            raise TypeError("use collection.subset(indices) for part of a collection")
        try:
            image = self._read(self._items[i])
        except ImageError:
            self.failed.add(i if i >= 0 else len(self) + i)
            image = Image.new("RGB", (32, 32), (128, 128, 128))
        return image, self._labels[i]

    def label_name(self, i: int) -> str | None:
        label = self._labels[i]
        return None if label is None else self.classes[label]

    @property
    def labels(self) -> list[int | None]:
        return list(self._labels)

    def subset(self, indices: Sequence[int]) -> "Collection":
        """The pictures at `indices` (in that order), as a collection of its own."""
        indices = [int(i) for i in indices]
        digest = hashlib.sha1(np.asarray(indices, dtype=np.int64).tobytes()).hexdigest()[:12]
        return Collection(self.name, f"{self.key}-{digest}", [self._items[i] for i in indices], self._read,
                          [self._labels[i] for i in indices], self.classes, self.source_note)

    def __repr__(self) -> str:
        return f"Collection({self.name!r}, {len(self)} pictures, {len(self.classes)} classes, skipped={self.skipped})"


def open_collection(source) -> Collection:
    """A folder, a .zip (path, bytes or binary file), or a name of NAMED ("samples", "fashion-mnist",
    "imagenette", "cifar-10")."""
    if isinstance(source, str) and source in NAMED:
        return NAMED[source][1]()
    if isinstance(source, (str, os.PathLike)):
        path = Path(source).expanduser()
        if path.is_dir():
            return _folder(path)
        if not path.exists():
            raise CollectionError(f"There is no folder or zip file named {source}.")
        if path.stat().st_size > MAX_ZIP_BYTES:
            raise CollectionError(f"{path.name} is larger than the {MAX_ZIP_BYTES // 2**20} MB limit for a zip.")
        return _zip(path.read_bytes(), path.name)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _zip(bytes(source), "uploaded zip")
    if hasattr(source, "read"):
        data = source.read(MAX_ZIP_BYTES + 1)
        if len(data) > MAX_ZIP_BYTES:
            raise CollectionError(f"The zip is larger than the {MAX_ZIP_BYTES // 2**20} MB limit.")
        return _zip(data, getattr(source, "name", "uploaded zip"))
    raise TypeError(f"open_collection cannot read a {type(source).__name__}")


# ---------------------------------------------------------------- labels from folders

def _label(paths: list[PurePosixPath]) -> tuple[list[int | None], list[str]]:
    """Class sub-folders give labels (the first folder under the root); a flat folder gives none."""
    if not paths or any(len(p.parts) < 2 for p in paths):
        return [None] * len(paths), []
    classes = sorted({p.parts[0] for p in paths})
    index = {c: i for i, c in enumerate(classes)}
    return [index[p.parts[0]] for p in paths], classes


def _shown(name: str) -> str:
    """A member's name as it may appear in a one-line message: quoted when it holds a newline or another control."""
    return name if name.isprintable() else repr(name)


def _hidden(parts) -> bool:
    return any(p.startswith(".") or p == "__MACOSX" for p in parts)


def _header_ok(stream) -> bool:
    """Whether a picture's header parses with the formats and size load_image allows (no pixels decoded)."""
    try:
        with Image.open(stream, formats=allowed_formats()) as im:
            check_size(*im.size)
        return True
    except Exception:  # ImageError from the size check; PIL's plugins raise many kinds on bad data
        return False


# ---------------------------------------------------------------- folders

def _folder(root: Path) -> Collection:
    found: list[PurePosixPath] = []
    for folder, dirs, files in os.walk(root):  # symlinked folders are not followed
        rel = Path(folder).relative_to(root)
        dirs[:] = sorted(d for d in dirs if not _hidden([d]))
        for f in sorted(files):
            if not f.startswith(".") and Path(f).suffix.lower() in _SUFFIXES:
                found.append(PurePosixPath(*rel.parts, f))
                if len(found) > MAX_FILES:
                    raise CollectionError(f"The folder {root} holds more than {MAX_FILES:,} pictures; "
                                          "choose a smaller one.")
    if not found:
        raise CollectionError(f"The folder {root} contains no pictures ({', '.join(sorted(SUPPORTED_TYPES))}).")
    good, listing = [], hashlib.sha1(str(root.resolve()).encode())
    for p in found:
        full = root / p
        try:
            st = full.stat()
            ok = st.st_size <= MAX_MEMBER_BYTES and _header_ok(full)
        except OSError:
            ok = False
        if ok:
            good.append(p)
            listing.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    labels, classes = _label(good)
    return Collection(root.name or str(root), f"folder-{listing.hexdigest()[:16]}", [str(root / p) for p in good],
                      load_image, labels, classes, f"the folder {root}", unreadable=len(found) - len(good))


# ---------------------------------------------------------------- zips

def _zip(data: bytes, title: str) -> Collection:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        raise CollectionError(f"{title} is not a zip file that can be read.") from None
    for info in members:
        path = PurePosixPath(info.filename.replace("\\", "/"))
        if (stat.S_ISLNK(info.external_attr >> 16) or info.filename.startswith(("/", "\\"))
                or ".." in path.parts or (path.parts and ":" in path.parts[0])):
            raise CollectionError(f"{title} was refused: it holds a link or a path outside its folder "
                                  f"({_shown(info.filename)}).")
    files = [m for m in members if not m.is_dir() and not _hidden(PurePosixPath(m.filename).parts)
             and PurePosixPath(m.filename).suffix.lower() in _SUFFIXES]
    if len(files) > MAX_FILES:
        raise CollectionError(f"{title} holds {len(files):,} pictures, more than the {MAX_FILES:,} limit.")
    if not files:
        raise CollectionError(f"{title} contains no pictures ({', '.join(sorted(SUPPORTED_TYPES))}).")
    if sum(m.file_size for m in files) > MAX_UNZIPPED_BYTES:
        raise CollectionError(f"{title} was refused: it would unpack to more than {MAX_UNZIPPED_BYTES // 2**30} GB.")
    for m in files:
        if m.file_size > 2**20 and m.file_size > MAX_RATIO * max(m.compress_size, 1):
            raise CollectionError(f"{title} was refused: {_shown(m.filename)} would unpack "
                                  f"{m.file_size // max(m.compress_size, 1):,} times larger than it is stored, "
                                  "which is what a zip bomb does.")
    lock = threading.Lock()  # one ZipFile over one buffer: members are read one at a time

    def read_bytes(name: str, limit: int) -> bytes:
        # Reading stops at the cap, so a member whose header lies about its size cannot flood memory.
        with lock, archive.open(name) as f:
            return f.read(limit)

    def read(name: str) -> Image.Image:
        try:
            raw = read_bytes(name, MAX_MEMBER_BYTES + 1)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, RuntimeError) as err:  # RuntimeError: encrypted
            raise ImageError(f"{name} could not be unpacked from the zip.") from err
        if len(raw) > MAX_MEMBER_BYTES:
            raise ImageError(f"{name} is larger than the {MAX_MEMBER_BYTES // 2**20} MB limit.")
        return load_image(raw)

    good = []
    for m in files:
        if m.file_size > MAX_MEMBER_BYTES:
            continue
        try:
            ok = _header_ok(io.BytesIO(read_bytes(m.filename, HEADER_BYTES)))
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, RuntimeError):
            ok = False
        if ok:
            good.append(m.filename)
    paths = [PurePosixPath(n) for n in good]
    # A zip of a folder holds "folder/..." everywhere: that top folder is the collection, not a class.
    tops = {p.parts[0] for p in paths}
    if len(tops) == 1 and all(len(p.parts) > 1 for p in paths):
        paths = [PurePosixPath(*p.parts[1:]) for p in paths]
    labels, classes = _label(paths)
    key = f"zip-{hashlib.sha1(data).hexdigest()[:16]}"
    return Collection(Path(title).stem or title, key, good, read, labels, classes,
                      f"the zip {title}", unreadable=len(files) - len(good))


# ---------------------------------------------------------------- built-in samples

def _samples() -> Collection:
    from vislib.images import sample_images
    loaders = sample_images()
    names = list(loaders)
    import skimage
    key = hashlib.sha1(("\n".join(names) + skimage.__version__).encode()).hexdigest()[:16]
    return Collection("samples", f"samples-{key}", names, lambda n: loaders[n](), [None] * len(names), [],
                      "the sample pictures bundled with scikit-image and scikit-learn")


# ---------------------------------------------------------------- Fashion-MNIST

def _read_idx(path: Path) -> np.ndarray:
    """An IDX file (gzip'd), as in LeCun's MNIST format: big-endian sizes, then unsigned bytes."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    if data[:2] != b"\0\0" or data[2] != 0x08:
        raise CollectionError(f"{path} is not an IDX file of unsigned bytes.")
    dims = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape).copy()  # writable


def fashion_mnist(split: str = "test") -> tuple[np.ndarray, np.ndarray, str]:
    """(images uint8 [N,28,28], labels int64 [N], where they came from) of Fashion-MNIST's split.

    Debian's dataset-fashion-mnist files when installed, else torchvision's download into the cache.
    """
    if split not in ("train", "test"):
        raise ValueError("split must be 'train' or 'test'")
    prefix = "train" if split == "train" else "t10k"
    images, labels = DEBIAN_FASHION / f"{prefix}-images-idx3-ubyte.gz", DEBIAN_FASHION / f"{prefix}-labels-idx1-ubyte.gz"
    if images.exists() and labels.exists():
        return _read_idx(images), _read_idx(labels).astype(np.int64), f"Debian's files in {DEBIAN_FASHION}"
    from torchvision.datasets import FashionMNIST
    root = cache_dir("torchvision")
    try:
        data = FashionMNIST(str(root), train=split == "train", download=True)
    except Exception as err:  # URLError, HTTP errors, a damaged partial download
        raise CollectionError("Fashion-MNIST is not on this machine and could not be downloaded; install "
                              "Debian's dataset-fashion-mnist package or connect to the internet.") from err
    return data.data.numpy(), data.targets.numpy().astype(np.int64), f"torchvision's download in {root}"


def fashion_mnist_collection(split: str = "test") -> Collection:
    images, labels, note = fashion_mnist(split)
    key = hashlib.sha1(images.tobytes() + labels.tobytes()).hexdigest()[:16]
    return Collection(f"Fashion-MNIST {split}", f"fashion-{split}-{key}", images,
                      lambda a: Image.fromarray(a).convert("RGB"), labels.tolist(), list(FASHION_CLASSES),
                      f"Fashion-MNIST {split} split from {note}")


# ---------------------------------------------------------------- torchvision's downloads

def _download(title: str, host: str, make: Callable[[str], object]):
    """torchvision's dataset object, downloaded into vislib's cache the first time (torchvision
    checks the archive's MD5 and skips what is already there); offline, one sentence."""
    root = cache_dir("torchvision")
    try:
        return make(str(root)), root
    except Exception as err:  # URLError, HTTP errors, a damaged partial download, a full disk
        raise CollectionError(f"{title} is not on this machine and could not be downloaded from {host}; "
                              f"connect to the internet once and it is kept in {root}.") from err


def imagenette_collection() -> Collection:
    """Imagenette's validation split (3,925 photos of 10 easy ImageNet classes, 160 px; fast.ai's
    subset): real photos with ImageNet labels, the dataset a laptop can afford."""
    from torchvision.datasets import Imagenette
    data, root = _download("Imagenette", "s3.amazonaws.com",
                           lambda r: Imagenette(r, split="val", size="160px", download=True))
    paths = [path for path, _ in data._samples]  # torchvision's listing; vislib's own decoding reads them
    labels = [label for _, label in data._samples]
    listing = hashlib.sha1("\n".join(f"{Path(p).relative_to(root)}\0{os.path.getsize(p)}" for p in paths).encode())
    classes = [names[0] for names in data.classes]
    return Collection("Imagenette val", f"imagenette-{listing.hexdigest()[:16]}", paths, load_image, labels,
                      classes, f"Imagenette (160 px, validation split), torchvision's download in {root}")


def cifar10_collection() -> Collection:
    """CIFAR-10's test split: 10,000 pictures of 32 x 32 pixels in 10 classes (Krizhevsky 2009)."""
    from torchvision.datasets import CIFAR10
    data, root = _download("CIFAR-10", "www.cs.toronto.edu",
                           lambda r: CIFAR10(r, train=False, download=True))
    images, labels = np.asarray(data.data), [int(t) for t in data.targets]
    key = hashlib.sha1(images.tobytes() + bytes(labels)).hexdigest()[:16]
    return Collection("CIFAR-10 test", f"cifar10-test-{key}", images, Image.fromarray, labels, list(data.classes),
                      f"CIFAR-10 test split, torchvision's download in {root}")


NAMED: dict[str, tuple[str, Callable[[], Collection]]] = {  # name -> (what a picker shows, how it opens)
    "samples": ("Built-in sample pictures", _samples),
    "fashion-mnist": ("Fashion-MNIST (10,000 test pictures)", lambda: fashion_mnist_collection("test")),
    "imagenette": ("Imagenette (3,925 photos of 10 ImageNet classes; downloaded once)", imagenette_collection),
    "cifar-10": ("CIFAR-10 (10,000 test pictures of 32 px; downloaded once)", cifar10_collection),
}
NAMED["fashion-mnist-test"] = NAMED["fashion-mnist"]
