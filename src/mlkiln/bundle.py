"""Write the artifact bundle atomically, and verify it before anything is unpickled.

Order matters for safety, as in skops: first the manifest (every file's
sha256), then the types a ``.skops`` file would create, and only then is the
model constructed. ``model.joblib`` runs arbitrary code when unpickled, so it
is read only when the caller says it trusts the bundle.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import copy
import hashlib
import importlib.metadata
import logging
import os
import shutil
import sys
import tempfile
import zipfile
from collections import OrderedDict
from pathlib import Path

import joblib
import skops.io as sio
from skops.io.exceptions import UntrustedTypesFoundException

from .data import file_sha256
from .atomic import check_replaceable, check_writable_folder, followed, holds, replace_path
from .card import Card
from .errors import BundleError, InputError
from .options import MANIFEST, OUTPUT_MARKERS, check_bundle_path

log = logging.getLogger("mlkiln")

CARD = "card.json"
MODEL_SKOPS = "model.skops"
MODEL_JOBLIB = "model.joblib"
#: every file mlkiln writes into a bundle besides the manifest: one of them outside the manifest is tampering
BUNDLE_FILES = (CARD, MODEL_SKOPS, MODEL_JOBLIB, "train.py", "requirements.txt", "report.html", "report.json")

#: distributions a bundle needs to load and run its model (train.py also uses pyarrow)
RUNTIME_PACKAGES = ("scikit-learn", "numpy", "scipy", "pandas", "joblib", "threadpoolctl", "pyarrow", "skops")

#: types beyond skops' own safe defaults (scikit-learn estimators, NumPy arrays) that
#: mlkiln's families need; a ``.skops`` file asking for anything else is refused.
#: ``functools.partial`` only wraps a callable, which the audit lists separately.
TRUSTED_TYPES = frozenset({
    "functools.partial",
    "numpy.dtype",
    "numpy.median",
    "numpy.ravel",  # a free-text column's words: the vectorizer reads one text per row (pipeline.words)
    "numpy.interp",  # a date's parts (hour, weekday, day of the year) from its seconds (pipeline.date_part)
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.tree._tree.Tree",
    "sklearn.model_selection._split.KFold",  # hgb_target's TargetEncoder: its cross-fitting folds
    "sklearn.model_selection._split.StratifiedKFold",
    # the network's (mlp) solver state, kept on the fitted model by scikit-learn: learning rate and moment arrays
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.utils._bunch.Bunch",  # an ensemble's named_estimators_: a dict of its fitted members
    "sklearn.utils.validation.check_array",
})


def package_versions() -> dict[str, str]:
    """Installed versions of the runtime packages and of Python itself."""
    versions = {"python": sys.version.split()[0]}
    for name in RUNTIME_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def requirements_text(versions: dict[str, str]) -> str:
    """A pip requirements file pinning every runtime package exactly."""
    lines = [f"# Python {versions['python']}; install with: pip install -r requirements.txt"]
    lines += [f"{name}=={versions[name]}" for name in RUNTIME_PACKAGES if name in versions]
    return "\n".join(lines) + "\n"


def check_destination(path: str | os.PathLike, force: bool, inputs=()) -> Path:
    """Refuse to replace an existing directory unless ``force``; say so before training.

    Never replaced, even with ``force``: the working directory or one of its
    parents, and a directory that is, or holds, one of ``inputs`` (the data or
    the bundle being read): replacing it would delete them.
    """
    path = Path(path)
    if holds(path, Path.cwd()):
        raise InputError(f"the output {str(path) or '.'} is the working directory or one of its parents; "
                         "name a new directory for it")
    for item in inputs:
        if holds(path, item):
            raise InputError(f"the output {path} is, or holds, the input {Path(item).resolve()}; replacing it would "
                             "delete the input, choose another output directory")
    if path.exists() and not path.is_dir():  # first: --force would not replace a file either
        raise InputError(f"{path} exists and is not a directory; a bundle is a directory, choose another name")
    check_writable_folder(path)
    bundle = next((p for p in path.resolve().parents if (p / MANIFEST).is_file()), None)
    if bundle is not None:  # it would break that bundle's manifest, and its --force would delete this one
        raise InputError(f"the output {path} is inside the bundle {bundle}; choose a directory outside it")
    if path.exists() and not force:
        raise InputError(f"{path} already exists; choose another output directory or replace it (--force, force=True)")
    check_replaceable(path, OUTPUT_MARKERS)
    _check_only_bundle_files(path)
    return path


def _check_only_bundle_files(path: Path) -> None:
    """Refuse to replace a bundle that holds more than its manifest lists (a folder of the user's, another bundle)."""
    if not (path / MANIFEST).is_file():
        return
    listed = manifest_entries(path)
    theirs = sorted(p.name for p in path.iterdir() if p.name != MANIFEST and p.name not in listed)
    if theirs:
        raise InputError(f"{path} holds {', '.join(theirs[:3])}, which its {MANIFEST} does not list; --force replaces "
                         "only the bundle's own files: move them out first, or choose another output")


def check_outside(path: str | os.PathLike) -> Path:
    """Refuse a file path inside a bundle: the new file would break the bundle's manifest."""
    path = Path(path)
    if (path.resolve().parent / MANIFEST).exists():
        raise InputError(f"{path} is inside a bundle and would break its {MANIFEST}; choose a path outside it")
    return path


def write_bundle(path: str | os.PathLike, files: dict[str, bytes], force: bool = False) -> Path:
    """Write ``files`` plus their manifest into ``path`` atomically.

    Everything goes to a temporary sibling directory first, which is renamed
    into place at the end: an interrupted run leaves either the old bundle or
    the new one, never a mixture.
    """
    path = followed(check_destination(path, force))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; a bundle is an ordinary directory
        for name, content in files.items():
            (tmp / name).write_bytes(content)
        manifest = "".join(f"{hashlib.sha256(content).hexdigest()}  {name}\n" for name, content in sorted(files.items()))
        (tmp / MANIFEST).write_text(manifest)
        replace_path(tmp, path)  # the old bundle or the new one, never neither
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


#: zlib's level for both model files. skops' default (6) spent 17.1 s compressing a forest ensemble of 593 MB of
#: tree arrays (doctor-contacts, 16,148 rows) to 96 MB; level 3 took 7.7 s for 103 MB (joblib's file: 3.8 s, 51 MB)
COMPRESS_LEVEL = 3


def model_files(pipeline) -> dict[str, bytes]:
    """The pipeline in both formats: skops (safe to load) and joblib (plain sklearn).

    The joblib file is written in a second thread while skops writes its own:
    both spend their time in zlib, which lets go of the interpreter's lock.
    """
    def joblib_bytes() -> bytes:
        with tempfile.TemporaryDirectory() as tmp:
            joblib.dump(pipeline, Path(tmp) / MODEL_JOBLIB, compress=COMPRESS_LEVEL)
            return (Path(tmp) / MODEL_JOBLIB).read_bytes()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        raw_joblib = pool.submit(joblib_bytes)
        with _names_indexed():
            skops_bytes = sio.dumps(pipeline, compression=zipfile.ZIP_DEFLATED, compresslevel=COMPRESS_LEVEL)
        return {MODEL_SKOPS: skops_bytes, MODEL_JOBLIB: raw_joblib.result()}


class _IndexedZipFile(zipfile.ZipFile):
    """A ZipFile whose ``namelist()`` is kept as it is written (insertion-ordered keys: ``in`` is one lookup)."""

    def __init__(self, *args, **kwargs):
        self._names: dict[str, None] = {}
        super().__init__(*args, **kwargs)

    def writestr(self, zinfo_or_arcname, data, *args, **kwargs):
        super().writestr(zinfo_or_arcname, data, *args, **kwargs)
        name = zinfo_or_arcname if isinstance(zinfo_or_arcname, str) else zinfo_or_arcname.filename
        self._names[name] = None

    def namelist(self):
        return self._names.keys() if self.mode == "w" else super().namelist()


@contextlib.contextmanager
def _names_indexed():
    """skops' ``dumps`` with an archive that knows its names.

    skops asks its archive for the list of every name before writing each
    array (``f_name not in zip_file.namelist()``), which zipfile builds anew
    each time: quadratic in the arrays. A 10-class boosted model of 5,100
    trees has 15,400 of them, and ``dumps`` took 10.6 s, 3.2 s with the names
    indexed; the same archive entries (a test compares them). Only while
    mlkiln writes a bundle, in this thread, and only where skops' module uses
    zipfile's class as this version does; anywhere else, nothing changes.
    """
    persist = sys.modules.get("skops.io._persist")
    if persist is None or getattr(persist, "ZipFile", None) is not zipfile.ZipFile:
        yield
        return
    persist.ZipFile = _IndexedZipFile
    try:
        yield
    finally:
        persist.ZipFile = zipfile.ZipFile


def manifest_entries(path: str | os.PathLike) -> dict[str, str]:
    """``{file: expected sha256}`` from a bundle's manifest."""
    path = Path(path)
    check_bundle_path(path)
    manifest = path / MANIFEST
    expected = {}
    for line in manifest.read_text(errors="replace").splitlines():
        if not line.strip():  # a blank line (an editor's last newline) lists nothing
            continue
        digest, _, name = line.partition("  ")
        if not name or len(digest) != 64:
            raise BundleError(f"{manifest} is malformed near {line[:60]!r}")
        if "/" in name or "\\" in name or name.startswith("."):
            raise BundleError(f"{manifest} lists {name[:60]!r}, not a file of the bundle's own folder; the bundle was "
                              "edited: train the model again")
        expected[name] = digest
    return expected


def file_status(path: str | os.PathLike) -> list[dict]:
    """Each manifest file with its expected hash and whether it verifies; then any file the manifest does not list."""
    path = Path(path)
    rows = []
    expected = manifest_entries(path)
    for name, digest in expected.items():
        file = path / name
        actual = file_sha256(file) if file.is_file() else None
        status = "ok" if actual == digest else ("missing" if actual is None else "MODIFIED")
        rows.append({"file": name, "sha256": digest, "bytes": file.stat().st_size if actual else None, "status": status})
    for file in sorted(path.iterdir()):
        if file.is_file() and file.name != MANIFEST and not file.name.startswith(".") and file.name not in expected:
            rows.append({"file": file.name, "sha256": None, "bytes": file.stat().st_size, "status": "NOT IN MANIFEST"})
    return rows


def verify(path: str | os.PathLike, needed: tuple[str, ...] = ()) -> dict[str, str]:
    """Check every file of the manifest; return ``{file: sha256}`` of those present, or raise naming the file.

    A file the manifest does not list is never loaded, so it does not stop a
    load (``inspect`` reports it); a manifest without the card or the model does.
    A listed file that is missing stops it when it is the card, ``model.skops``
    or one of ``needed`` (what the caller reads); another (``model.joblib``
    removed so that no pickle is deployed, the report) is said once and left
    out. A file that is there but differs from its hash always stops it.
    """
    rows = [row for row in file_status(path) if row["status"] != "NOT IN MANIFEST"]
    names = {row["file"] for row in rows}
    for required in (CARD, MODEL_SKOPS):
        if required not in names:
            raise BundleError(f"the {MANIFEST} of bundle {path} does not list {required}; refusing to load it")
    absent = []
    for row in rows:
        if row["status"] == "missing":
            if row["file"] in (CARD, MODEL_SKOPS, *needed):
                raise BundleError(f"bundle file {row['file']} is missing from {path}")
            absent.append(row["file"])
        elif row["status"] != "ok":
            raise BundleError(f"bundle file {row['file']} does not match {MANIFEST} (modified or truncated); refusing to load {path}")
    if absent:
        log.info("%s: %s listed in %s but not there (not needed here)", path, ", ".join(absent), MANIFEST)
    return {row["file"]: row["sha256"] for row in rows if row["status"] == "ok"}


def read_card(path: str | os.PathLike) -> Card:
    """The verified model card of a bundle; a card newer than this mlkiln reads is refused."""
    verify(path)
    return Card.from_json((Path(path) / CARD).read_bytes())


#: packages whose version decides whether a stored model loads and predicts the same
VERSIONED_PACKAGES = ("scikit-learn", "numpy", "scipy", "pandas")


def check_versions(saved: dict[str, str], path) -> None:
    """Refuse a bundle made with another major version of a key package; warn on smaller differences."""
    installed = package_versions()
    hint = f"install the bundle's versions with: pip install -r {Path(path) / 'requirements.txt'}"
    for name in VERSIONED_PACKAGES:
        want, have = saved.get(name), installed.get(name)
        if not want or not have or want == have:
            continue
        if want.split(".")[0] != have.split(".")[0]:
            raise BundleError(f"bundle was made with {name} {want}, this environment has {have}; {hint}")
        log.warning("bundle was made with %s %s, this environment has %s; predictions may differ slightly (%s)", name, want, have, hint)


def load(path: str | os.PathLike, trust_pickle: bool = False) -> tuple[object, Card]:
    """The fitted Pipeline and the card of a verified bundle: each file hashed once, the model read once.

    The ``.skops`` file is audited before anything in it is built: every type
    it would create must be one skops trusts by default or one of
    :data:`TRUSTED_TYPES`. With ``trust_pickle`` the hash-checked
    ``model.joblib`` is unpickled instead, which runs code from the file.
    """
    path = Path(path)
    files = verify(path)
    card = Card.from_json((path / CARD).read_bytes())
    check_versions(card.versions, path)
    if trust_pickle and MODEL_JOBLIB in files:
        model = joblib.load(path / MODEL_JOBLIB)
    else:
        if trust_pickle:
            log.warning("%s: no %s: loading the audited %s instead", path, MODEL_JOBLIB, MODEL_SKOPS)
        model = _audited_copy(path / MODEL_SKOPS, files[MODEL_SKOPS])
    check_model_matches_card(model, card, path)
    return model, card


def check_model_matches_card(model, card: Card, path) -> None:
    """Refuse a card that does not describe its model: input columns, their kinds, the task and the classes.

    The manifest proves the files are the ones it lists, not that they belong
    together: a card edited and hashed again would make the inputs conform to
    the wrong columns and fail deep inside scikit-learn, or label the wrong
    class. What the model itself records is compared with the card.
    """
    def refuse(what: str) -> BundleError:
        return BundleError(f"{path}: {CARD} does not describe model.skops ({what}); the bundle was edited: "
                           "restore it or train again")

    names = [column.name for column in card.columns]
    kinds = card.schema.kinds
    for prep in _preprocessors(model):
        seen = [str(n) for n in getattr(prep, "feature_names_in_", names)]
        if seen != names:
            raise refuse(f"the model reads columns {seen}, the card lists {names}")
        for block, _, columns in prep.transformers_:
            if block in ("numeric", "categorical"):
                wrong = [c for c in columns if (kinds.get(c) == "categorical") != (block == "categorical")]
                if wrong:
                    raise refuse(f"column {wrong[0]!r} is {block} to the model, {kinds.get(wrong[0])} on the card")
    classes = getattr(model, "classes_", None)
    if (classes is not None) != (card.task == "classification"):
        raise refuse(f"the model is {'a classifier' if classes is not None else 'a regressor'}, the card says {card.task}")
    if classes is not None and [str(c) for c in classes] != [str(c) for c in card.classes]:
        raise refuse(f"the model's classes are {[str(c) for c in classes]}, the card's {[str(c) for c in card.classes]}")


def _preprocessors(model):
    """Every fitted ColumnTransformer in ``model``: a Pipeline's, a threshold's estimator's, each ensemble member's."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import VotingClassifier, VotingRegressor
    from sklearn.model_selection import FixedThresholdClassifier
    from sklearn.pipeline import Pipeline

    if isinstance(model, ColumnTransformer):
        yield model
    elif isinstance(model, Pipeline):
        for _, step in model.steps:
            yield from _preprocessors(step)
    elif isinstance(model, FixedThresholdClassifier):
        yield from _preprocessors(model.estimator_)
    elif isinstance(model, (VotingClassifier, VotingRegressor)):
        for member in model.estimators_:
            yield from _preprocessors(member)


#: models this process audited and built, by the SHA-256 of their ``model.skops``, most recent last
_AUDITED: OrderedDict[str, object] = OrderedDict()
#: how many are kept: loading the same bytes again (a notebook cell run twice, a job or a test suite loading
#: one bundle many times) copies the model built before (a few ms) instead of auditing and building it again
#: (0.2-0.4 s for a few hundred trees, seconds for thousands)
AUDITED_KEPT = 4


def _audited_copy(file: Path, digest: str):
    """A copy of the model in ``file``, whose bytes hash to ``digest`` (verified by the caller just before)."""
    model = _AUDITED.get(digest)
    if model is None:
        model = _audited_load(file)
        _AUDITED[digest] = model
        while len(_AUDITED) > AUDITED_KEPT:
            _AUDITED.popitem(last=False)
    _AUDITED.move_to_end(digest)
    return copy.deepcopy(model)  # the caller's to change: a refit or set_params never reaches the kept one


def _audited_load(file: Path):
    """skops' own load with our allow-list: it audits the whole tree before building any object.

    The refused types are named from a second reading, made only for a file
    that is refused (one reading instead of two for every good bundle).
    """
    try:
        return sio.load(file, trusted=sorted(TRUSTED_TYPES))
    except UntrustedTypesFoundException:
        refused = sorted(set(sio.get_untrusted_types(file=file)) - TRUSTED_TYPES)
        raise BundleError(f"{file} would create untrusted type(s) {', '.join(refused)}; refusing to load") from None
    except Exception as exc:
        raise BundleError(f"cannot load {file}: {exc}") from exc
