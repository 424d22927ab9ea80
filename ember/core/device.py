"""Devices and streams: MLX's Device, DeviceType, Stream and the default-stream state."""

import enum
import os

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
        return self is other

    def __hash__(self):
        return hash(self.value)


cpu = DeviceType.cpu
gpu = DeviceType.gpu


class Device:
    __slots__ = ("type", "index")

    def __new__(cls, type, index=0):  # noqa: A002 - the upstream argument name
        if isinstance(type, Device):
            return type
        if not isinstance(type, DeviceType):
            raise TypeError("[Device] type must be a DeviceType.")
        key = (type, index)
        dev = _DEVICES.get(key)
        if dev is None:
            dev = object.__new__(cls)
            dev.type, dev.index = type, index
            _DEVICES[key] = dev
        return dev

    def __repr__(self):
        return f"Device({self.type.name}, {self.index})"

    def __eq__(self, other):
        if isinstance(other, DeviceType):
            return self.type is other and self.index == 0
        return self is other

    def __hash__(self):
        return hash((self.type.value, self.index))

    def __reduce__(self):
        return (Device, (self.type, self.index))


_DEVICES = {}


class Stream:
    """An ordered queue of work on a device; on CUDA it owns a torch stream."""

    __slots__ = ("device", "index", "tdevice", "is_gpu", "_torch_stream")

    def __init__(self, device, index):
        self.device = device
        self.index = index
        self.is_gpu = device.type is gpu
        self.tdevice = B.torch_device(device.type is gpu, device.index)
        self._torch_stream = None

    def __repr__(self):
        return f"Stream({self.device!r}, {self.index})"

    def __eq__(self, other):
        return self is other

    def __hash__(self):
        return id(self)

    @property
    def torch_stream(self):
        if self._torch_stream is None and self.device.type is gpu:
            self._torch_stream = B.default_torch_stream(self.device.index) if self.index == 0 \
                else B.new_torch_stream(self.device.index)
        return self._torch_stream


_streams = {}           # device -> list of its streams
_default_stream = {}    # device -> the stream ops use by default
_state = {"device": None}


def _check_device(device, op):
    device = Device(device)
    if not is_available(device):
        raise ValueError(f"[{op}] Device {device!r} is not available.")
    return device


def is_available(device):
    device = Device(device)
    if device.type is cpu:
        return device.index == 0
    return device.index < B.gpu_count()


def device_count(device_type):
    return 1 if device_type is cpu else B.gpu_count()


def device_info(device=None):
    if device is None:
        device = default_device()
    return B.device_info(Device(device).type is gpu, Device(device).index)


def new_stream(device):
    device = _check_device(device, "new_stream")
    lst = _streams.setdefault(device, [])
    s = Stream(device, len(lst))
    lst.append(s)
    return s


def default_stream(device):
    device = _check_device(device, "default_stream")
    s = _default_stream.get(device)
    if s is None:
        s = _default_stream[device] = new_stream(device)
    return s


def set_default_stream(stream):
    _default_stream[stream.device] = stream


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
    _state["device"] = _check_device(device, "set_default_device")
    _CURRENT.clear()


# the stream ops use right now; cleared whenever defaults change
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
    raise TypeError(f"Invalid stream or device: {s!r}.")


class StreamContext:
    """`with mx.stream(s):` makes `s` (a Stream or Device) the default inside the block."""

    def __init__(self, s):
        self._target = s
        self._saved = None

    def __enter__(self):
        target = self._target
        dev = target.device if isinstance(target, Stream) else Device(target)
        self._saved = (_state["device"], _default_stream.get(dev), list(_CURRENT))
        _state["device"] = _check_device(dev, "stream")
        if isinstance(target, Stream):
            _default_stream[dev] = target
        _CURRENT.clear()
        self._dev = dev

    def __exit__(self, *exc):
        _state["device"], prev_stream, cur = self._saved
        if prev_stream is not None:
            _default_stream[self._dev] = prev_stream
        _CURRENT[:] = cur
        return False


def stream(s):
    return StreamContext(s)


def synchronize(s=None):
    if s is None:
        B.synchronize_all()
    else:
        s = resolve(s)
        if s.device.type is gpu:
            B.synchronize_stream(s.torch_stream)
