"""Loading and saving arrays: .npy, .npz, .safetensors and .gguf.

Loads are lazy: `load` parses the header and returns arrays whose data is read from the
file when they are evaluated (the file stays open until then). Saves to a path are atomic.
"""

import io
import os
import zipfile

from ember.core._io import check_array, is_path, open_for_write, open_source
from ember.core._io import gguf as _gguf
from ember.core._io import npy as _npy
from ember.core._io import safetensors as _st
from ember.core._io.order import unordered
from ember.core.array import array
from ember.core.ops._base import resolve
from ember.core.transforms.eval import evaluate

__all__ = ["load", "save", "savez", "savez_compressed", "save_safetensors", "save_gguf"]

_FORMATS = ("npy", "npz", "safetensors", "gguf")


def load(file, /, format=None, return_metadata=False, *, stream=None):  # noqa: A002
    """Load array(s) from a binary file.

    The supported formats are ``.npy``, ``.npz``, ``.safetensors``, and ``.gguf``.

    Args:
        file (file, str, pathlib.Path): File in which the array is saved.
        format (str, optional): Format of the file. If ``None``, the format is inferred
          from the file extension. Default: ``None``.
        return_metadata (bool, optional): Load the metadata for formats which support
          matadata. The metadata will be returned as an additional dictionary.
          Default: ``False``.
    Returns:
        array, dict, or tuple: A single array if loading from a ``.npy`` file or a dict
        mapping names to arrays otherwise; with ``return_metadata`` a tuple
        ``(arrays, metadata)``.
    """
    if file is None:
        raise TypeError("load(): file must be a file-like object, str or pathlib.Path, "
                        "got NoneType.")
    if format is not None and not isinstance(format, str):
        raise TypeError(f"load(): format must be a str, got {type(format).__name__}.")
    if not isinstance(return_metadata, bool):  # upstream's binding takes a bool only
        raise TypeError(f"load(): return_metadata must be a bool, got "
                        f"{type(return_metadata).__name__}.")
    if format is None:
        if is_path(file):
            name = os.fsdecode(os.fspath(file))
        else:  # (a file object without a name raises AttributeError, as upstream's does)
            name = file.name if hasattr(file, "read") else None
        if not isinstance(name, str):
            raise ValueError("[load] Could not infer file format: pass format=... for a "
                             "file-like object without a name")
        base = os.path.basename(name)
        if "." not in base:
            raise ValueError("[load] Could not infer file format from extension")
        format = base.rsplit(".", 1)[1]  # noqa: A001
    if format not in _FORMATS:
        raise ValueError(f"[load] Unknown file format {format}")
    if return_metadata and format in ("npy", "npz"):
        raise ValueError(f"[load] metadata not supported for format {format}")
    s = resolve(stream)
    src = open_source(file, "load", _MISSING.get(format))
    if format == "npy":
        return _npy.read(src, s)
    if format == "npz":
        return _hashed(_npy.read_npz(src, s))
    arrays, meta = (_st if format == "safetensors" else _gguf).read(src, s)
    # upstream inserts safetensors names in its JSON parser's (sorted) order, the others
    # in file order
    by = (lambda k: k.encode("utf-8", "surrogatepass")) if format == "safetensors" else None
    arrays, meta = _hashed(arrays, by), _hashed(meta, by)
    return (arrays, meta) if return_metadata else arrays


def _hashed(d, by=None):
    """`d` in the order upstream's dict has: see _io/order.py."""
    keys = list(d) if by is None else sorted(d, key=by)
    return {k: d[k] for k in unordered(keys)}


# upstream's error for a path that does not open, by format
_MISSING = {
    "npz": lambda n: ValueError("[load_npz] Input must be a zip file or a file-like object "
                                "that can be opened with zipfile.ZipFile"),
    "safetensors": lambda n: RuntimeError(f"[load_safetensors] Failed to open file {n}"),
    "gguf": lambda n: ValueError(f"[load_gguf] Failed to open {n}"),
}


def save(file, arr):
    """Save the array to a binary file in ``.npy`` format.

    Args:
        file (str, pathlib.Path, file): File to which the array is saved
        arr (array): Array to be saved.
    """
    if not isinstance(arr, array):
        raise TypeError(f"save(): arr must be an array, got {type(arr).__name__}.")
    evaluate([arr])
    with open_for_write(file, ".npy", "save") as f:
        _npy.write(f, arr)


def savez(file, *args, **kwargs):
    """Save several arrays to a binary file in uncompressed ``.npz`` format.

    Args:
        file (file, str, pathlib.Path): Path to file to which the arrays are saved.
        *args (arrays): Arrays to be saved.
        **kwargs (arrays): Arrays to be saved. Each array will be saved with the
          associated keyword as the output file name.
    """
    _savez(file, args, kwargs, zipfile.ZIP_STORED, "savez")


def savez_compressed(file, *args, **kwargs):
    """Save several arrays to a binary file in compressed ``.npz`` format.

    Args:
        file (file, str, pathlib.Path): Path to file to which the arrays are saved.
        *args (arrays): Arrays to be saved.
        **kwargs (arrays): Arrays to be saved. Each array will be saved with the
          associated keyword as the output file name.
    """
    _savez(file, args, kwargs, zipfile.ZIP_DEFLATED, "savez_compressed")


def _savez(file, args, kwargs, compression, op):
    for i in range(len(args)):
        if f"arr_{i}" in kwargs:
            raise ValueError(f"[{op}] Cannot use un-named variables and keyword arr_{i}")
    for a in args:
        check_array(a, op)
    arrays = {}
    # upstream gathers the keywords first, then the positional arrays, in a hash table, and
    # writes the members in its order: so do we, and either library reads them back in the
    # order upstream does with its own file
    for k, a in kwargs.items():
        arrays[k] = check_array(a, op)
    for i, a in enumerate(args):
        arrays[f"arr_{i}"] = a
    arrays = _hashed(arrays)
    evaluate(list(arrays.values()))
    with open_for_write(file, ".npz", op) as f:
        with zipfile.ZipFile(f, "w", compression=compression, allowZip64=True) as z:
            for k, a in arrays.items():
                big = a.nbytes >= 1 << 31
                with z.open(k + ".npy", "w", force_zip64=big) as w:
                    _npy.write(w, a)


def save_safetensors(file, arrays, metadata=None):
    """Save array(s) to a binary file in ``.safetensors`` format.

    Args:
        file (file, str, pathlib.Path): File in which the array is saved.
        arrays (dict(str, array)): The dictionary of names to arrays to be saved.
        metadata (dict(str, str), optional): The dictionary of metadata to be saved.
    """
    arrays = _named_arrays(arrays, "save_safetensors")
    if metadata is not None and not isinstance(metadata, dict):
        raise TypeError(f"save_safetensors(): metadata must be a dict of str to str, got "
                        f"{type(metadata).__name__}.")
    if metadata is not None and not (
            all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())):
        raise ValueError("[save_safetensors] Metadata must be a dictionary with string keys "
                         "and values")
    evaluate(list(arrays.values()))
    with open_for_write(file, ".safetensors", "save_safetensors") as f:
        _st.write(f, arrays, metadata)


def save_gguf(file, arrays, metadata=None):
    """Save array(s) to a binary file in ``.gguf`` format.

    Args:
        file (file, str, pathlib.Path): File in which the array is saved.
        arrays (dict(str, array)): The dictionary of names to arrays to be saved.
        metadata (dict(str, Union[array, str, list(str)])): The dictionary of metadata to
          be saved. The values can be a scalar or 1D :obj:`array`, a :obj:`str`, or a
          :obj:`list` of :obj:`str`.
    """
    if isinstance(file, io.TextIOBase):  # upstream takes only a path: its error here
        raise ValueError("[save_gguf] Input must be a string")
    arrays = _named_arrays(arrays, "save_gguf")
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise TypeError(f"save_gguf(): metadata must be a dict, got {type(metadata).__name__}.")
    _gguf.check(arrays, metadata)
    # tensors and keys in upstream's order (its hash table's): see _savez
    arrays, metadata = _hashed(arrays), _hashed(metadata)
    evaluate(list(arrays.values()) + [v for v in metadata.values() if isinstance(v, array)])
    with open_for_write(file, ".gguf", "save_gguf") as f:
        _gguf.write(f, arrays, metadata)


def _named_arrays(arrays, op):
    if not isinstance(arrays, dict):
        raise TypeError(f"{op}(): arrays must be a dict of str to array, got "
                        f"{type(arrays).__name__}.")
    for k, a in arrays.items():
        if not isinstance(k, str):
            raise RuntimeError(f"[{op}] Array names must be strings, got {type(k).__name__}.")
        check_array(a, op)
    return arrays
