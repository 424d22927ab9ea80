"""User CUDA kernels: compiled at run time with NVRTC and launched with the driver API,
both reached through ctypes, on torch's current stream.

libnvrtc comes from the nvidia-cuda-nvrtc wheel torch ships with (or a CUDA toolkit;
`EMBER_NVRTC` names the library explicitly), libcuda from the driver. Headers such as
cooperative_groups.h come from the nvidia-cuda-runtime wheel or the toolkit.
"""

import ctypes
import glob
import hashlib
import os
import re
import sys

import torch

from ember.core import dtypes as D
from ember.core._backend import TORCH

# the C type of each dtype in a generated signature
CTYPES = {
    D.bool_: "bool", D.uint8: "uint8_t", D.uint16: "uint16_t", D.uint32: "uint32_t",
    D.uint64: "uint64_t", D.int8: "int8_t", D.int16: "int16_t", D.int32: "int32_t",
    D.int64: "int64_t", D.float16: "__half", D.bfloat16: "__nv_bfloat16", D.float32: "float",
    D.float64: "double", D.complex64: "float2",
}
# the torch dtype holding exactly a dtype's bits (Ember widens the unsigned types)
_EXACT = dict(TORCH)
_EXACT.update({D.uint16: torch.uint16, D.uint32: torch.uint32, D.uint64: torch.uint64})

_PRELUDE = """\
#include <cuda_fp16.h>
#include <cuda_bf16.h>
{cg}
typedef signed char int8_t;
typedef unsigned char uint8_t;
typedef short int16_t;
typedef unsigned short uint16_t;
typedef int int32_t;
typedef unsigned int uint32_t;
typedef long long int64_t;
typedef unsigned long long uint64_t;
"""


# cooperative_groups.h needs the CCCL headers (cuda/std/...): without them, this covers
# the grid and block groups
_CG_SHIM = """\
namespace cooperative_groups {
struct thread_block {
  __device__ unsigned int thread_rank() const {
    return (threadIdx.z * blockDim.y + threadIdx.y) * blockDim.x + threadIdx.x;
  }
  __device__ unsigned int size() const { return blockDim.x * blockDim.y * blockDim.z; }
  __device__ unsigned int num_threads() const { return size(); }
  __device__ void sync() const { __syncthreads(); }
  __device__ dim3 group_index() const { return blockIdx; }
  __device__ dim3 thread_index() const { return threadIdx; }
  __device__ dim3 dim_threads() const { return blockDim; }
  __device__ dim3 group_dim() const { return blockDim; }
};
struct grid_group {
  __device__ unsigned long long block_rank() const {
    unsigned long long gx = gridDim.x, gy = gridDim.y;
    return blockIdx.x + gx * (blockIdx.y + gy * blockIdx.z);
  }
  __device__ unsigned long long thread_rank() const {
    return block_rank() * thread_block().size() + thread_block().thread_rank();
  }
  __device__ unsigned long long size() const {
    return (unsigned long long)gridDim.x * gridDim.y * gridDim.z * thread_block().size();
  }
  __device__ unsigned long long num_threads() const { return size(); }
  __device__ dim3 group_dim() const { return gridDim; }
  __device__ dim3 dim_blocks() const { return gridDim; }
};
__device__ inline grid_group this_grid() { return grid_group(); }
__device__ inline thread_block this_thread_block() { return thread_block(); }
}
"""


def available():
    return torch.cuda.is_available()


# -- library loading ----------------------------------------------------------------

def _site_dirs():
    out = []
    for p in sys.path:
        d = os.path.join(p, "nvidia")
        if os.path.isdir(d):
            out.append(d)
    return out


def _candidates(kind):
    """Paths (or sonames) where libnvrtc (kind "lib") or CUDA headers (kind "include") may
    be."""
    roots = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"]
    out = []
    if kind == "lib":
        if os.environ.get("EMBER_NVRTC"):
            out.append(os.environ["EMBER_NVRTC"])
        out += ["libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2", "libnvrtc.so"]
        for d in _site_dirs():
            out += sorted(glob.glob(os.path.join(d, "*", "lib", "libnvrtc.so*")), reverse=True)
        for r in roots:
            if r:
                out += sorted(glob.glob(os.path.join(r, "lib64", "libnvrtc.so*")), reverse=True)
    else:
        for d in _site_dirs():
            out += glob.glob(os.path.join(d, "*", "include"))
        out += [os.path.join(r, "include") for r in roots if r]
    return out


_NVRTC = None
_CUDA = None


def nvrtc():
    global _NVRTC
    if _NVRTC is None:
        errors = []
        for c in _candidates("lib"):
            if "alt.so" in c:
                continue
            try:
                _NVRTC = ctypes.CDLL(c)
                break
            except OSError as e:
                errors.append(str(e))
        if _NVRTC is None:
            raise RuntimeError("[cuda_kernel] Could not load libnvrtc (install the "
                               "nvidia-cuda-nvrtc wheel or set EMBER_NVRTC).")
    return _NVRTC


def cuda():
    global _CUDA
    if _CUDA is None:
        _CUDA = ctypes.CDLL("libcuda.so.1")
    return _CUDA


def _include_dirs():
    return [d for d in _candidates("include") if os.path.isdir(d)]


def _has_header(name):
    return any(os.path.exists(os.path.join(d, name)) for d in _include_dirs())


# -- compilation --------------------------------------------------------------------

def _check_nvrtc(lib, rc, prog=None, what=""):
    if rc == 0:
        return
    lib.nvrtcGetErrorString.restype = ctypes.c_char_p
    msg = lib.nvrtcGetErrorString(rc).decode()
    log = ""
    if prog is not None:
        n = ctypes.c_size_t()
        lib.nvrtcGetProgramLogSize(prog, ctypes.byref(n))
        buf = ctypes.create_string_buffer(n.value)
        lib.nvrtcGetProgramLog(prog, buf)
        log = buf.value.decode(errors="replace")
    raise RuntimeError(f"[cuda_kernel] {what} failed: {msg}\n{log}")


def compile_source(src, name, arch):
    """(binary, is_cubin) for CUDA source `src` on compute capability `arch` (major, minor)."""
    lib = nvrtc()
    prog = ctypes.c_void_p()
    _check_nvrtc(lib, lib.nvrtcCreateProgram(ctypes.byref(prog), src.encode(),
                                             f"{name}.cu".encode(), 0, None, None))
    try:
        base = ["-std=c++17", "-default-device"] + [f"-I{d}" for d in _include_dirs()]
        for target, cubin in ((f"sm_{arch[0]}{arch[1]}", True),
                              (f"compute_{arch[0]}{arch[1]}", False)):
            opts = [f"--gpu-architecture={target}"] + base
            arr = (ctypes.c_char_p * len(opts))(*[o.encode() for o in opts])
            rc = lib.nvrtcCompileProgram(prog, len(opts), arr)
            if rc == 0:
                break
            if not cubin:
                _check_nvrtc(lib, rc, prog, f"Compiling kernel {name}")
        size = ctypes.c_size_t()
        if cubin:
            _check_nvrtc(lib, lib.nvrtcGetCUBINSize(prog, ctypes.byref(size)))
            buf = ctypes.create_string_buffer(size.value)
            _check_nvrtc(lib, lib.nvrtcGetCUBIN(prog, buf))
        else:
            _check_nvrtc(lib, lib.nvrtcGetPTXSize(prog, ctypes.byref(size)))
            buf = ctypes.create_string_buffer(size.value)
            _check_nvrtc(lib, lib.nvrtcGetPTX(prog, buf))
        return buf.raw, cubin
    finally:
        lib.nvrtcDestroyProgram(ctypes.byref(prog))


_BINARIES = {}  # (source, compute capability) -> compiled binary


def binary_of(src, name, index):
    arch = torch.cuda.get_device_capability(index)
    key = (src, arch)
    b = _BINARIES.get(key)
    if b is None:
        b = _BINARIES[key] = compile_source(src, name, arch)[0]
    return b


# -- driver -------------------------------------------------------------------------

def _check_cu(rc, what):
    if rc != 0:
        lib = cuda()
        s = ctypes.c_char_p()
        lib.cuGetErrorString(rc, ctypes.byref(s))
        raise RuntimeError(f"[cuda_kernel] {what} failed: {s.value.decode() if s.value else rc}")


def _ensure_context(index):
    lib = cuda()
    ctx = ctypes.c_void_p()
    _check_cu(lib.cuCtxGetCurrent(ctypes.byref(ctx)), "cuCtxGetCurrent")
    if not ctx.value:
        torch.cuda.init()
        dev = ctypes.c_int()
        _check_cu(lib.cuDeviceGet(ctypes.byref(dev), index), "cuDeviceGet")
        _check_cu(lib.cuDevicePrimaryCtxRetain(ctypes.byref(ctx), dev), "cuDevicePrimaryCtxRetain")
        _check_cu(lib.cuCtxSetCurrent(ctx), "cuCtxSetCurrent")


_MODULES = {}  # (binary hash, function name, device) -> CUfunction


def load_function(binary, fname, index, shmem):
    key = (hashlib.sha1(binary).hexdigest(), fname, index)
    f = _MODULES.get(key)
    if f is None:
        _ensure_context(index)
        lib = cuda()
        mod = ctypes.c_void_p()
        data = binary if binary[:4] == b"\x7fELF" or binary.endswith(b"\0") else binary + b"\0"
        _check_cu(lib.cuModuleLoadData(ctypes.byref(mod), ctypes.c_char_p(data)),
                  "cuModuleLoadData")
        f = ctypes.c_void_p()
        _check_cu(lib.cuModuleGetFunction(ctypes.byref(f), mod, fname.encode()),
                  f"cuModuleGetFunction({fname})")
        _MODULES[key] = f
    if shmem > 48 * 1024:
        # CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES
        _check_cu(cuda().cuFuncSetAttribute(f, 8, shmem), "cuFuncSetAttribute")
    return f


def launch(f, grid, block, shmem, stream, args):
    """Launch `f` with `args` (ctypes values) on `stream` (a torch CUDA stream)."""
    ptrs = (ctypes.c_void_p * max(1, len(args)))(
        *[ctypes.cast(ctypes.pointer(a), ctypes.c_void_p) for a in args])
    blocks = [max(1, -(-g // b)) for g, b in zip(grid, block)]
    _check_cu(cuda().cuLaunchKernel(f, *blocks, *block, shmem,
                                    ctypes.c_void_p(stream.cuda_stream), ptrs, None),
              "cuLaunchKernel")


# -- generated kernels --------------------------------------------------------------

def _template_decl(name, value):
    if isinstance(value, D.Dtype):
        return f"  using {name} = {CTYPES[value]};"
    if isinstance(value, bool):
        return f"  constexpr bool {name} = {'true' if value else 'false'};"
    if isinstance(value, int):
        return f"  constexpr int {name} = {value};"
    raise ValueError(f"[cuda_kernel] Template argument {name} must be a Dtype, an int or a bool.")


def _uses(source, word):
    return re.search(r"\b" + re.escape(word) + r"\b", source) is not None


def _scalar_ctype(v):
    return "bool" if isinstance(v, bool) else "int32_t" if isinstance(v, int) else "float"


def generate(name, input_names, inputs, arrays, output_names, output_dtypes, source, header,
             template, contiguous):
    """The full CUDA source of a kernel whose body is `source`."""
    params = []
    it = iter(arrays)
    for n, x in zip(input_names, inputs):
        if isinstance(x, (bool, int, float)):
            params.append(f"{_scalar_ctype(x)} {n}")
            continue
        a = next(it)
        params.append(f"const {CTYPES[a.dtype]}* __restrict__ {n}")
        if _uses(source, f"{n}_shape"):
            params.append(f"const int32_t* __restrict__ {n}_shape")
        if _uses(source, f"{n}_strides"):
            params.append(f"const int64_t* __restrict__ {n}_strides")
        if _uses(source, f"{n}_ndim"):
            params.append(f"int {n}_ndim")
    for n, dt in zip(output_names, output_dtypes):
        params.append(f"{CTYPES[dt]}* __restrict__ {n}")
    decls = "\n".join(_template_decl(n, v) for n, v in template)
    uses_cg = "cooperative_groups" in source or "cooperative_groups" in header
    cg = ""
    if uses_cg:
        cg = "#include <cooperative_groups.h>" if _has_header("cuda/std/type_traits") and \
            _has_header("cooperative_groups.h") else _CG_SHIM
    body = (f"{_PRELUDE.format(cg=cg)}\n{header}\n\n"
            f"extern \"C\" __global__ void {kernel_symbol(name)}(\n    "
            + ",\n    ".join(params) + ") {\n" + decls + "\n" + source + "\n}\n")
    return body


def kernel_symbol(name):
    return "ember_" + re.sub(r"\W", "_", name)


def _arg_tensor(t, dtype, contiguous):
    t = t.to(_EXACT[dtype]) if _EXACT[dtype] is not t.dtype else t
    return t.contiguous() if contiguous else t


def _out_tensors(shapes, dtypes, device, init_value):
    outs = []
    for sh, dt in zip(shapes, dtypes):
        td = _EXACT[dt]
        if init_value is None:
            outs.append(torch.empty(sh, dtype=td, device=device))
        else:
            outs.append(torch.full(sh, init_value, dtype=td, device=device))
    return outs


def _to_storage(outs, dtypes):
    return [o.to(TORCH[dt]) if o.dtype is not TORCH[dt] else o for o, dt in zip(outs, dtypes)]


def _pointer(t):
    return ctypes.c_void_p(t.data_ptr())


def _scalar_value(v):
    if isinstance(v, bool):
        return ctypes.c_bool(v)
    if isinstance(v, int):
        return ctypes.c_int32(v)
    return ctypes.c_float(v)


class Launcher:
    """Runs a generated kernel on evaluated input tensors (the CustomKernel kernel)."""

    def __init__(self, name, src, arrays, scalars, shapes, dtypes, grid, block, shmem,
                 init_value, contiguous, input_names, source):
        self.src, self.shapes, self.dtypes = src, shapes, dtypes
        self.grid, self.block, self.shmem = grid, block, shmem
        self.init_value, self.contiguous = init_value, contiguous
        self.in_dtypes = [a.dtype for a in arrays]
        self.scalars = dict(scalars)
        self.input_names = input_names
        self.meta = [(_uses(source, f"{n}_shape"), _uses(source, f"{n}_strides"),
                      _uses(source, f"{n}_ndim")) for n in input_names]
        self.fname = kernel_symbol(name)

    def __call__(self, tensors):
        dev = tensors[0].device if tensors else torch.device("cuda", torch.cuda.current_device())
        index = dev.index if dev.index is not None else torch.cuda.current_device()
        f = load_function(binary_of(self.src, self.fname, index), self.fname, index, self.shmem)
        args, keep = [], []
        it = iter(zip(tensors, self.in_dtypes))
        for n, (shp, strd, nd) in zip(self.input_names, self.meta):
            if n in self.scalars:
                args.append(_scalar_value(self.scalars[n]))
                continue
            t, dt = next(it)
            t = _arg_tensor(t, dt, self.contiguous)
            keep.append(t)
            args.append(_pointer(t))
            if shp:
                s = torch.tensor(list(t.shape) or [0], dtype=torch.int32, device=dev)
                keep.append(s)
                args.append(_pointer(s))
            if strd:
                s = torch.tensor(list(t.stride()) or [0], dtype=torch.int64, device=dev)
                keep.append(s)
                args.append(_pointer(s))
            if nd:
                args.append(ctypes.c_int(t.ndim))
        outs = _out_tensors(self.shapes, self.dtypes, dev, self.init_value)
        args += [_pointer(o) for o in outs]
        # (temporaries are freed after the launch is queued: the caching allocator reuses
        # them only in order on this same stream)
        launch(f, self.grid, self.block, self.shmem, torch.cuda.current_stream(dev), args)
        del keep
        return _to_storage(outs, self.dtypes)


class PrecompiledLauncher:
    """Runs a user's PTX or cubin: arguments are the inputs, the outputs, the scalars."""

    def __init__(self, name, binary, scalars, shapes, dtypes, grid, block, shmem, init_value,
                 contiguous, in_dtypes):
        self.name, self.binary, self.scalars = name, binary, scalars
        self.shapes, self.dtypes = shapes, dtypes
        self.grid, self.block, self.shmem = grid, block, shmem
        self.init_value, self.contiguous, self.in_dtypes = init_value, contiguous, in_dtypes

    def __call__(self, tensors):
        dev = tensors[0].device if tensors else torch.device("cuda", torch.cuda.current_device())
        index = dev.index if dev.index is not None else torch.cuda.current_device()
        f = load_function(self.binary, self.name, index, self.shmem)
        ins = [_arg_tensor(t, dt, self.contiguous) for t, dt in zip(tensors, self.in_dtypes)]
        outs = _out_tensors(self.shapes, self.dtypes, dev, self.init_value)
        args = [_pointer(t) for t in ins] + [_pointer(o) for o in outs]
        args += [_scalar_value(v) for v in self.scalars]
        launch(f, self.grid, self.block, self.shmem, torch.cuda.current_stream(dev), args)
        return _to_storage(outs, self.dtypes)
