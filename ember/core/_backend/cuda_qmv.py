"""4-bit affine products of a few rows on the tensor cores: x (2-8, K) @ dequantize(w (N, K))ᵀ.

A CUDA C kernel compiled at run time (NVRTC, through `cuda_kernel`), for half-type x on
sm_80 and newer. The CUDA-core GEMV (`triton_quantized._gemv`) spends about three
instructions per weight and x row taking a code apart and multiplying it, so its time
grows with the rows of x (2 rows: 12 us, 8 rows: 43 us at 4096 x 4096 on an H100); here
the rows of x ride along as the columns of `mma.sync.m16n8k16`, whose 16 rows are weight
rows, and 2 to 8 rows cost what one does (5.5-5.8 us). A packed word becomes four half2
pairs of `MAGIC + q` with one LOP3 each (the code's bits under the exponent of MAGIC,
1024 for float16 and 128 for bfloat16: exact). The MMA's k slots need not be in order: a
thread's pairs (q0, q4), (q1, q5), ... meet x permuted the same way (PRMT), so no code
moves between threads. A second MMA with ones sums x over the same slots; per group,
`scale * acc + (bias - MAGIC * scale) * sum(x)` is the affine product, in float32.

A program owns 16 * RT rows and WARPS warps that take turns over chunks of K (the groups
of one 16-byte run of scales). A warp copies its chunk's codes into shared memory in
whole 16-byte runs (cp.async, two halves: it multiplies the first while the second
arrives), reads the scales as one run per lane and hands them out by shuffles, and the
warps' partial sums meet in shared memory. One row of x (decode) stays on the Triton
GEMV, which was faster there (5.1 against 5.5 us).
"""

import ctypes
import threading

import torch

from ember.core._backend import cuda_kernel as CK
from ember.core._backend.triton_launch import _raw_stream

_SOURCE = r"""
#include <cuda_fp16.h>
#include <cuda_bf16.h>

typedef unsigned int u32;

__device__ __forceinline__ float to_f(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_f(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float to_f(float v) { return v; }
__device__ __forceinline__ void store(__half* p, float v) { *p = __float2half_rn(v); }
__device__ __forceinline__ void store(__nv_bfloat16* p, float v) { *p = __float2bfloat16_rn(v); }

__device__ __forceinline__ void mma(float* c, u32 a0, u32 a1, u32 a2, u32 a3, u32 b0, u32 b1) {
  asm volatile(
    "mma.sync.aligned.m16n8k16.row.col.f32." MMA_T "." MMA_T ".f32 "
    "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
    : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
    : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// (code p, code p + 4) of a word shifted right by 4p, as a pair of MAGIC + code
__device__ __forceinline__ u32 pair(u32 v) { return (v & 0x000F000Fu) | MAGIC_BITS; }

template <int N> struct Words;
template <> struct Words<1> { u32 v[1]; __device__ void load(const u32* p) { v[0] = *p; } };
template <> struct Words<2> { u32 v[2]; __device__ void load(const u32* p) {
  uint2 t = *reinterpret_cast<const uint2*>(p); v[0] = t.x; v[1] = t.y; } };
template <> struct Words<4> { u32 v[4]; __device__ void load(const u32* p) {
  uint4 t = *reinterpret_cast<const uint4*>(p);
  v[0] = t.x; v[1] = t.y; v[2] = t.z; v[3] = t.w; } };

// word j of a 16-byte run (j is known at compile time once the loops unroll)
__device__ __forceinline__ u32 comp(const uint4& v, int j) {
  return j == 0 ? v.x : j == 1 ? v.y : j == 2 ? v.z : v.w;
}
__device__ __forceinline__ float from_word(u32 w, int h, __half*) {
  return __half2float(__ushort_as_half((unsigned short)(h ? w >> 16 : w & 0xFFFFu)));
}
__device__ __forceinline__ float from_word(u32 w, int h, __nv_bfloat16*) {
  return __bfloat162float(__ushort_as_bfloat16((unsigned short)(h ? w >> 16 : w & 0xFFFFu)));
}
__device__ __forceinline__ float from_word(u32 w, int, float*) { return __uint_as_float(w); }
// scale or bias i of the 16-byte run `v` that lane `src` holds
__device__ __forceinline__ float scale_of(const uint4& v, int i, int src) {
  constexpr int P = 4 / sizeof(ST);
  const u32 w = __shfl_sync(0xFFFFFFFFu, comp(v, i / P), src);
  return from_word(w, i % P, (ST*)nullptr);
}

__device__ __forceinline__ void cp_async16(void* dst, const void* src) {
  const unsigned d = (unsigned)__cvta_generic_to_shared(dst);
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" :: "r"(d), "l"(src));
}

extern "C" __global__ void __launch_bounds__(WARPS * 32, MINB)
qmv4(const T* __restrict__ x, const u32* __restrict__ w, const ST* __restrict__ sc,
     const ST* __restrict__ bi, T* __restrict__ out, int M, int N, int K, int sxm, int swr,
     int ssr, int som) {
  constexpr int WPT = GS / 32;  // words of a row per thread and group
  constexpr int CH = 16 / sizeof(ST);  // groups per chunk: one 16-byte run of scales
  constexpr int ROWS = 16 * RT;
  constexpr int RUN = CH * GS / 2;  // bytes of a row's chunk of codes
  constexpr int PITCH = RUN + 32;  // (+8 banks a row: quads of 8 rows read apart)
  extern __shared__ __align__(16) unsigned char smem[];
  unsigned char* slab = smem + (threadIdx.x >> 5) * ROWS * PITCH;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int g = lane >> 2, c = lane & 3;
  const int n0 = blockIdx.x * ROWS;
  const int chunks = K / (GS * CH);
  const u32 ONES = ONES_BITS;

  float acc[RT][4];
#pragma unroll
  for (int t = 0; t < RT; ++t) acc[t][0] = acc[t][1] = acc[t][2] = acc[t][3] = 0.f;

  const ST* srow[RT];  // lanes 0-15: scales of row lane; 16-31: biases of row lane - 16
#pragma unroll
  for (int t = 0; t < RT; ++t) {
    const int r = min(n0 + 16 * t + (lane & 15), N - 1);
    srow[t] = (lane < 16 ? sc : bi) + (long long)r * ssr;
  }
  const bool has_x = g < M;
  const T* xrow = x + (long long)(has_x ? g : 0) * sxm + c * WPT * 8;
  const unsigned char* wbytes = reinterpret_cast<const unsigned char*>(w);

  for (int ch = warp; ch < chunks; ch += WARPS) {
    // the warp's codes of this chunk into its slab, whole 16-byte runs per lane, in two
    // halves of its groups: the first is multiplied while the second arrives
#pragma unroll
    for (int half = 0; half < 2; ++half) {
#pragma unroll
      for (int it = 0; it < ROWS * RUN / 32 / 32; ++it) {
        const int L = it * 32 + lane, row = L / (RUN / 32);
        const int col = half * (RUN / 32) + L % (RUN / 32);
        const int r = min(n0 + row, N - 1);
        cp_async16(slab + row * PITCH + col * 16,
                   wbytes + (long long)r * swr * 4 + ch * RUN + col * 16);
      }
      asm volatile("cp.async.commit_group;\n" ::);
    }
    uint4 sv[RT];
#pragma unroll
    for (int t = 0; t < RT; ++t) sv[t] = __ldg(reinterpret_cast<const uint4*>(srow[t] + ch * CH));
#pragma unroll
    for (int i0 = 0; i0 < CH; i0 += U) {
      // (compile-time: the first step that reads the second half waits for all of it)
      if (i0 + U > CH / 2 && i0 <= CH / 2) {
        asm volatile("cp.async.wait_group 0;\n" ::);
        __syncwarp();
      } else if (i0 == 0) {
        asm volatile("cp.async.wait_group 1;\n" ::);
        __syncwarp();
      }
      Words<WPT> wv[U][RT][2];
      uint4 xv[U][WPT];
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const int gi = ch * CH + i0 + u;
#pragma unroll
        for (int t = 0; t < RT; ++t)
#pragma unroll
          for (int h = 0; h < 2; ++h)
            wv[u][t][h].load(reinterpret_cast<const u32*>(
                slab + (16 * t + g + 8 * h) * PITCH + (i0 + u) * (GS / 2) + c * WPT * 4));
#pragma unroll
        for (int j = 0; j < WPT; ++j)
          xv[u][j] = has_x ? __ldg(reinterpret_cast<const uint4*>(xrow + gi * GS + j * 8))
                           : make_uint4(0, 0, 0, 0);
      }
#pragma unroll
      for (int u = 0; u < U; ++u) {
        float part[RT][4], xs[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
        for (int t = 0; t < RT; ++t) part[t][0] = part[t][1] = part[t][2] = part[t][3] = 0.f;
#pragma unroll
        for (int j = 0; j < WPT; ++j) {
          const uint4 q = xv[u][j];  // x[8j' .. 8j' + 8) as (x0,x1) (x2,x3) (x4,x5) (x6,x7)
#pragma unroll
          for (int hh = 0; hh < 2; ++hh) {  // codes (0,4),(1,5) then (2,6),(3,7)
            const u32 lo = hh ? q.y : q.x, hi = hh ? q.w : q.z;
            const u32 b0 = __byte_perm(lo, hi, 0x5410), b1 = __byte_perm(lo, hi, 0x7632);
            mma(xs, ONES, ONES, ONES, ONES, b0, b1);
#pragma unroll
            for (int t = 0; t < RT; ++t) {
              const u32 v0 = wv[u][t][0].v[j] >> (8 * hh), v1 = wv[u][t][1].v[j] >> (8 * hh);
              mma(part[t], pair(v0), pair(v1), pair(v0 >> 4), pair(v1 >> 4), b0, b1);
            }
          }
        }
        const int i = i0 + u;
#pragma unroll
        for (int t = 0; t < RT; ++t) {
          const float s0 = scale_of(sv[t], i, g), s1 = scale_of(sv[t], i, g + 8);
          const float c0 = scale_of(sv[t], i, 16 + g) - MAGIC * s0;
          const float c1 = scale_of(sv[t], i, 24 + g) - MAGIC * s1;
          acc[t][0] += s0 * part[t][0] + c0 * xs[0];
          acc[t][1] += s0 * part[t][1] + c0 * xs[1];
          acc[t][2] += s1 * part[t][2] + c1 * xs[2];
          acc[t][3] += s1 * part[t][3] + c1 * xs[3];
        }
      }
    }
    __syncwarp();  // (the slab is refilled next chunk)
  }

  // partial sums of the warps: red[warp][row][col]
  __syncthreads();  // (the slabs become the partial sums)
  float (*red)[16 * RT][8] = reinterpret_cast<float (*)[16 * RT][8]>(smem);
#pragma unroll
  for (int t = 0; t < RT; ++t) {
    red[warp][16 * t + g][2 * c] = acc[t][0];
    red[warp][16 * t + g][2 * c + 1] = acc[t][1];
    red[warp][16 * t + g + 8][2 * c] = acc[t][2];
    red[warp][16 * t + g + 8][2 * c + 1] = acc[t][3];
  }
  __syncthreads();
  for (int i = threadIdx.x; i < 16 * RT * 8; i += WARPS * 32) {
    const int row = i >> 3, col = i & 7;
    if (col < M && n0 + row < N) {
      float v = 0.f;
#pragma unroll
      for (int k = 0; k < WARPS; ++k) v += red[k][row][col];
      store(out + (long long)col * som + n0 + row, v);
    }
  }
}
"""

_TYPES = {torch.float16: ("__half", "f16", "0x64006400u", "1024.f", "0x3C003C00u"),
          torch.bfloat16: ("__nv_bfloat16", "bf16", "0x43004300u", "128.f", "0x3F803F80u")}
_STYPES = {torch.float16: "__half", torch.bfloat16: "__nv_bfloat16", torch.float32: "float"}
_ELT = {torch.float16: 2, torch.bfloat16: 2, torch.float32: 4}

MIN_M, MAX_M = 2, 8
ENABLED = True  # (off: the Triton kernels take these products; for benchmarks)
# (rows per program / 16, warps, groups in flight per warp, programs per SM): tuned on an
# H100 at 2-8 x 4096 @ 4096x4096, group 64
CONFIG = (1, 4, 4, 2)


def usable(x, scales, biases, m, bits, gs, transpose):
    """Whether this kernel takes the product: 4 bits, transposed w, 2 to 8 rows of
    half-type x whose rows start on 16-byte boundaries, groups in whole 16-byte runs of
    scales, on sm_80 or newer."""
    run = 16 // scales.element_size()
    return (ENABLED and bits == 4 and transpose and MIN_M <= m <= MAX_M
            and gs in (32, 64, 128)
            and scales.shape[-1] % run == 0 and scales.stride(0) % run == 0
            and biases.stride(0) == scales.stride(0)
            and scales.data_ptr() % 16 == 0 and biases.data_ptr() % 16 == 0
            and x.dtype in _TYPES and scales.dtype in _STYPES and biases.dtype is scales.dtype
            and _arch_ok(x.device)
            and x.data_ptr() % 16 == 0 and x.stride(0) % 8 == 0)


_ARCH = {}


def _arch_ok(device):
    ok = _ARCH.get(device.index)
    if ok is None:
        ok = _ARCH[device.index] = (torch.cuda.get_device_capability(device)[0] >= 8
                                    and _compiles(device))
    return ok


def _compiles(device):
    try:
        _function(torch.float16, torch.float16, 64, CONFIG, device.index)
        return True
    except (OSError, RuntimeError):  # no NVRTC here: the Triton kernel stays
        return False


_FUNCS = {}


def _function(dt, st, gs, cfg, index):
    key = (dt, st, gs, cfg, index)
    f = _FUNCS.get(key)
    if f is None:
        t, mma_t, magic_bits, magic, ones = _TYPES[dt]
        rt, warps, u, minb = cfg
        head = (f"#define T {t}\n#define ST {_STYPES[st]}\n#define MMA_T \"{mma_t}\"\n"
                f"#define MAGIC_BITS {magic_bits}\n#define MAGIC {magic}\n"
                f"#define ONES_BITS {ones}\n#define GS {gs}\n#define RT {rt}\n"
                f"#define WARPS {warps}\n#define U {u}\n#define MINB {minb}\n")
        binary = CK.binary_of(head + _SOURCE, "qmv4", index)
        shmem = _shmem(st, gs, cfg)
        f = _FUNCS[key] = (CK.load_function(binary, "qmv4", index, shmem), shmem)
    return f


def _shmem(st, gs, cfg):
    """Bytes of shared memory: a slab of codes per warp (rows of 16-byte runs of scales'
    worth of groups, 32 bytes apart), reused for the warps' partial sums."""
    rows, warps = 16 * cfg[0], cfg[1]
    pitch = 16 // _ELT[st] * gs // 2 + 32
    return warps * rows * max(pitch, 32)


class _Args(threading.local):
    """The kernel's argument slots and the pointer array cuLaunchKernel reads, made once
    per thread and refilled per call (building a dozen ctypes values per call cost tens
    of microseconds on a slow host)."""

    def __init__(self):
        self.vals = [ctypes.c_void_p() for _ in range(5)] + [ctypes.c_int() for _ in range(7)]
        self.ptrs = (ctypes.c_void_p * 12)(*[ctypes.addressof(v) for v in self.vals])
        self.at = ctypes.cast(self.ptrs, ctypes.c_void_p)


_ARGS = _Args()
_LAUNCH = []


def _launcher():
    if not _LAUNCH:
        fn = CK.cuda().cuLaunchKernel
        fn.argtypes = [ctypes.c_void_p] + [ctypes.c_uint] * 7 + [ctypes.c_void_p] * 3
        fn.restype = ctypes.c_int
        _LAUNCH.append(fn)
    return _LAUNCH[0]


def quantized_matmul(x2, w32, scales, biases, gs, cfg=None):
    """x2 (M, K) half-type, w32 (N, K / 8) int32 words, scales and biases (N, K / gs):
    the (M, N) product in x's dtype."""
    m, k = x2.shape
    n = w32.shape[0]
    cfg = cfg or CONFIG
    dev = x2.device
    f, shmem = _function(x2.dtype, scales.dtype, gs, cfg, dev.index)
    out = torch.empty((m, n), dtype=x2.dtype, device=dev)
    a = _ARGS
    v = a.vals
    v[0].value, v[1].value, v[2].value = x2.data_ptr(), w32.data_ptr(), scales.data_ptr()
    v[3].value, v[4].value = biases.data_ptr(), out.data_ptr()
    v[5].value, v[6].value, v[7].value, v[8].value = m, n, k, x2.stride(0)
    v[9].value, v[10].value, v[11].value = w32.stride(0), scales.stride(0), n
    warps = cfg[1]
    stream = (_raw_stream(dev.index) if _raw_stream is not None
              else torch.cuda.current_stream(dev).cuda_stream)
    rc = _launcher()(f, -(-n // (16 * cfg[0])), 1, 1, warps * 32, 1, 1, shmem, stream, a.at,
                     None)
    if rc:
        CK._check_cu(rc, "cuLaunchKernel")
    return out
