"""Devices and streams: MLX's Device, DeviceType, Stream and the default-stream state."""

import enum
import operator
import os
import threading

from ember.core import _backend as B


class DeviceType(enum.Enum):
    cpu = 0
    gpu = 1

    def __repr__(self):
        return f"DeviceType.{self.name}"

    __str__ = __repr__

    def __eq__(self, other):
        if isinstance(other, Device):
            return other.type is self and other.index == 0
        if other is None:
            _no_none()
        return self is other

    def __hash__(self):
        return hash(self.value)


def _no_none():
    # upstream's bindings reject None as the other side of ==, even in `x in [None]`
    raise TypeError("__eq__(): incompatible function arguments: None is not supported.")


def _device_type(t):
    """A DeviceType from a DeviceType or its value (any integer: bools and numpy's too,
    as upstream), else None."""
    if isinstance(t, DeviceType):
        return t
    try:
        v = operator.index(t)
    except TypeError:
        return None
    return DeviceType(v) if v in (0, 1) else None


cpu = DeviceType.cpu
gpu = DeviceType.gpu


class Device:
    """A device: its type and index. Instances are cached, one per (type, index)."""

    __slots__ = ("type", "index")

    def __new__(cls, type, index=0):  # noqa: A002 - the upstream argument name
        if isinstance(type, Device):
            return type
        if index.__class__ is int and type.__class__ is DeviceType:
            dev = _DEVICES.get((type, index))
            if dev is not None:
                return dev
        type = _device_type(type)  # noqa: A001
        if type is None:
            raise TypeError("Device(): type must be a DeviceType.")
        try:
            index = operator.index(index)  # (a bool or numpy index is its int)
        except TypeError:
            index = 2 ** 31
        if not -2 ** 31 <= index < 2 ** 31:
            raise TypeError("Device(): index must be an int (32 bits).")
        key = (type, index)
        dev = _DEVICES.get(key)
        if dev is None:
            dev = object.__new__(cls)
            dev.type, dev.index = type, index
            _DEVICES[key] = dev
        return dev

    def __repr__(self):
        return f"Device({self.type.name}, {self.index})"

    __str__ = __repr__

    def __eq__(self, other):
        if isinstance(other, DeviceType):
            return self.type is other and self.index == 0
        if other is None:
            _no_none()
        return self is other

    def __hash__(self):
        return hash((self.type.value, self.index))

    def __reduce__(self):
        return (Device, (self.type, self.index))


_DEVICES = {}


class Stream:
    """An ordered queue of work on a device; on CUDA it owns a torch stream.

    Streams are made by `new_stream` and `default_stream`, never directly."""

    __slots__ = ("device", "index", "tdevice", "is_gpu", "_torch_stream", "_primary")

    def __init__(self, *args, **kwargs):
        raise TypeError("mlx.core.Stream: no constructor defined!")

    def __repr__(self):
        return f"Stream({self.device!r}, {self.index})"

    __str__ = __repr__

    def __eq__(self, other):
        if other is None:
            _no_none()
        return self is other

    def __hash__(self):
        return id(self)

    @property
    def torch_stream(self):
        if self._torch_stream is None and self.device.type is gpu:
            self._torch_stream = B.default_torch_stream(self.device.index) \
                if self._primary else B.new_torch_stream(self.device.index)
        return self._torch_stream


def _make_stream(device, primary=False):
    s = object.__new__(Stream)
    s.device = device
    s.index = _counter[0]
    _counter[0] += 1
    s.is_gpu = device.type is gpu
    s.tdevice = B.torch_device(s.is_gpu, device.index)
    s._torch_stream = None
    # default streams run on torch's default stream of their GPU, so torch code interleaves
    s._primary = primary
    return s


class ThreadLocalStream:
    """A stream that is distinct in each thread that uses it."""

    __slots__ = ("device", "index", "_local", "__weakref__")

    def __init__(self, *args, **kwargs):
        raise TypeError("mlx.core.ThreadLocalStream: no constructor defined!")

    def __repr__(self):
        return f"ThreadLocalStream({self.device!r}, {self.index})"

    __str__ = __repr__

    def __eq__(self, other):
        if other is None:
            _no_none()
        return self is other

    def __hash__(self):
        return id(self)

    def _stream(self):
        s = getattr(self._local, "stream", None)
        if s is None:
            s = self._local.stream = _make_stream(self.device)
        return s


_counter = [0]          # stream indices are unique across devices
_tl_counter = [0]
_default_stream = {}    # device -> the stream ops use by default
_state = {"device": None}


def _check_device(device, op, what):
    if isinstance(device, ThreadLocalStream):
        device = device.device
    device = Device(device)
    if device.type is gpu and not B.gpu_count():
        noun = "device" if op == "set_default_device" else "stream"
        raise ValueError(f"[{op}] Cannot {what} gpu {noun} without gpu backend.")
    if not is_available(device):
        raise ValueError(f"[{op}] Device {device!r} is not available.")
    return device


def is_available(device):
    device = Device(device)
    if device.type is cpu:
        return device.index == 0
    return 0 <= device.index < B.gpu_count()


def device_count(device_type):
    device_type = _device_type(device_type)
    if device_type is None:
        raise TypeError("device_count(): device_type must be a DeviceType.")
    return 1 if device_type is cpu else B.gpu_count()


def device_info(d=None):
    device = default_device() if d is None else Device(d)
    # (upstream describes the host whatever the cpu device's index)
    if device.type is gpu and not is_available(device):
        return {}
    return B.device_info(device.type is gpu, device.index)


def new_stream(device):
    return _make_stream(_check_device(device, "new_stream", "make"))


def new_thread_unsafe_stream(device):
    # Ember's streams are not bound to the thread that made them
    return _make_stream(_check_device(device, "new_stream", "make"))


def new_thread_local_stream(device):
    device = _check_device(device, "new_stream", "make")
    s = object.__new__(ThreadLocalStream)
    s.device = device
    s.index = _tl_counter[0]
    _tl_counter[0] += 1
    s._local = threading.local()
    return s


def default_stream(device):
    device = _check_device(device, "default_stream", "get")
    s = _default_stream.get(device)
    if s is None:
        s = _default_stream[device] = _make_stream(device, primary=True)
    return s


def set_default_stream(stream):
    if not isinstance(stream, Stream):
        raise TypeError("set_default_stream(): stream must be a Stream.")
    _default_stream[stream.device] = stream
    _CURRENT.clear()


def clear_streams():
    """Forget every stream made so far: defaults are made afresh when next needed."""
    _default_stream.clear()
    _CURRENT.clear()


def default_device():
    dev = _state["device"]
    if dev is None:
        dev = _state["device"] = _initial_device()
    return dev


def _initial_device():
    want = os.environ.get("EMBER_DEFAULT_DEVICE") or os.environ.get("MLX_DEFAULT_DEVICE")
    if want:
        want = want.strip().lower()
        if want not in ("cpu", "gpu"):
            raise ValueError(f"[default_device] Unknown device '{want}': use cpu or gpu.")
        if want == "gpu" and not B.gpu_count():
            raise ValueError("[default_device] gpu requested but CUDA is not available.")
        return Device(gpu if want == "gpu" else cpu)
    return Device(gpu if B.gpu_count() else cpu)


def set_default_device(device):
    _state["device"] = _check_device(device, "set_default_device", "set")
    _CURRENT.clear()


# the stream ops use right now (a one-item cache); cleared whenever defaults change
_CURRENT = []


def current_stream():
    if _CURRENT:
        return _CURRENT[-1]
    s = default_stream(default_device())
    _CURRENT.append(s)
    return s


def resolve(s):
    """The Stream an op named with `stream=` runs on (None, Stream, Device or DeviceType)."""
    if s is None:
        return _CURRENT[-1] if _CURRENT else current_stream()
    if type(s) is Stream:
        return s
    if isinstance(s, (Device, DeviceType)):
        return default_stream(Device(s))
    if type(s) is ThreadLocalStream:
        return s._stream()
    t = _device_type(s)  # a DeviceType's value, as upstream accepts
    if t is not None:
        return default_stream(Device(t))
    raise TypeError(f"Invalid stream or device: {s!r}.")


class StreamContext:
    """`with mx.stream(s):` makes `s` (a Stream or Device) the default inside the block."""

    __slots__ = ("_target", "_saved", "_dev")

    def __init__(self, s):
        s = _device_type(s) or s
        if not isinstance(s, (Stream, ThreadLocalStream, Device, DeviceType)):
            raise TypeError("stream(): expected a Stream, Device or DeviceType, got "
                            f"{type(s).__name__}.")
        self._target = s
        self._saved = None

    def __enter__(self):
        target = self._target
        if isinstance(target, ThreadLocalStream):
            target = target._stream()
        dev = target.device if isinstance(target, Stream) else Device(target)
        dev = _check_device(dev, "default_stream", "get")
        self._saved = (_state["device"], _default_stream.get(dev), list(_CURRENT))
        _state["device"] = dev
        if isinstance(target, Stream):
            _default_stream[dev] = target
        _CURRENT.clear()
        self._dev = dev

    def __exit__(self, *exc):
        if self._saved is None:  # (never entered: nothing to restore)
            return
        _state["device"], prev_stream, cur = self._saved
        if isinstance(self._target, (Stream, ThreadLocalStream)):
            if prev_stream is not None:
                _default_stream[self._dev] = prev_stream
            else:
                _default_stream.pop(self._dev, None)
        _CURRENT[:] = cur


def stream(s):
    return StreamContext(s)


def synchronize(stream=None):
    if stream is None:
        B.synchronize_all()
        return
    try:
        s = resolve(stream)
    except TypeError:
        raise TypeError(
            "synchronize(): incompatible function arguments. The following argument types are "
            "supported:\n    1. synchronize(stream: mlx.core.Stream | mlx.core.ThreadLocalStream "
            "| mlx.core.Device | mlx.core.DeviceType | None = None) -> None") from None
    if s.device.type is gpu:
        B.synchronize_stream(s.torch_stream)
