"""4-bit affine products of one to eight rows of x in CUDA C: x (1-8, K) @ dequantize(w (N, K))ᵀ.

Kernels compiled at run time (NVRTC, through `cuda_kernel`), for half-type x on sm_80
and newer. The Triton GEMV (`triton_quantized._gemv`) spends about three CUDA-core
instructions per weight and row of x taking a code apart and multiplying it in float32.

One row (decode), `qgemv4`, launched with programmatic dependent launch on sm_90 (it may
start while the kernel before it ends and waits for it in `griddepcontrol.wait`: 4.0 to 3.64
us per call in back-to-back graph replay on an H100). x is staged in shared memory as
float16 pairs (x0,x4) (x1,x5) (x2,x6) (x3,x7), the order in which one LOP3 makes a
packed word's codes into half2 pairs 1024 + (q0,q4) or 1024 + 16 (q1,q5); a half2 op
makes them q - 8 and a half2 FMA multiplies, so a weight costs about two instructions, in
float16 sums of 4-8 products (x scaled by a power of two so that none overflows) carried
into float32. 3.36-3.61 us (73-74% of the H100's 3.35 TB/s on the packed bytes in the
last runs; 4.1-4.3 before the early launch) against the Triton GEMV's 5.0-5.2 at 1 x 4096
@ 4096 x 4096 on an H100.

Two to eight rows, `qmv4`: the rows of x ride along as the columns of
`mma.sync.m16n8k16`, whose 16 rows are weight rows, and 2 to 8 rows cost what one does
(5.5-5.8 us; the GEMV takes 12 us for 2 rows, 43 for 8). A packed word becomes four half2
pairs of `MAGIC + q` with one LOP3 each (the code's bits under the exponent of MAGIC,
1024 for float16 and 128 for bfloat16: exact). The MMA's k slots need not be in order: a
thread's pairs (q0, q4), (q1, q5), ... meet x permuted the same way (PRMT), so no code
moves between threads. A second MMA with ones sums x over the same slots; per group,
`scale * acc + (bias - MAGIC * scale) * sum(x)` is the affine product, in float32.
A program owns 16 * RT rows and WARPS warps that take turns over chunks of K (the groups
of one 16-byte run of scales). A warp copies its chunk's codes into shared memory in
whole 16-byte runs (cp.async, two halves: it multiplies the first while the second
arrives), reads the scales as one run per lane and hands them out by shuffles, and the
warps' partial sums meet in shared memory.
"""

import ctypes
import threading

import torch

from ember.core._backend import cuda_kernel as CK
from ember.core._backend.triton_launch import _raw_stream

_COMMON = r"""
#include <cuda_fp16.h>
#include <cuda_bf16.h>

typedef unsigned int u32;

__device__ __forceinline__ float to_f(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_f(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float to_f(float v) { return v; }
__device__ __forceinline__ void store(__half* p, float v) { *p = __float2half_rn(v); }
__device__ __forceinline__ void store(__nv_bfloat16* p, float v) { *p = __float2bfloat16_rn(v); }
// word j of a 16-byte run (j is known at compile time once the loops unroll)
__device__ __forceinline__ u32 comp(const uint4& v, int j) {
  return j == 0 ? v.x : j == 1 ? v.y : j == 2 ? v.z : v.w;
}
"""

_SOURCE = _COMMON + r"""

__device__ __forceinline__ void mma(float* c, u32 a0, u32 a1, u32 a2, u32 a3, u32 b0, u32 b1) {
  asm volatile(
    "mma.sync.aligned.m16n8k16.row.col.f32." MMA_T "." MMA_T ".f32 "
    "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
    : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
    : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// (code p, code p + 4) of a word shifted right by 4p, as a pair of MAGIC + code; `e` is
// MAGIC_BITS in a register (as two immediates, ptxas splits this into two LOP3s)
__device__ __forceinline__ u32 pair(u32 v, u32 e) { return (v & 0x000F000Fu) | e; }

template <int N> struct Words;
template <> struct Words<1> { u32 v[1]; __device__ void load(const u32* p) { v[0] = *p; } };
template <> struct Words<2> { u32 v[2]; __device__ void load(const u32* p) {
  uint2 t = *reinterpret_cast<const uint2*>(p); v[0] = t.x; v[1] = t.y; } };
template <> struct Words<4> { u32 v[4]; __device__ void load(const u32* p) {
  uint4 t = *reinterpret_cast<const uint4*>(p);
  v[0] = t.x; v[1] = t.y; v[2] = t.z; v[3] = t.w; } };

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
  const u32 EXP = MAGIC_BITS | ((u32)N >> 31);  // (N > 0: MAGIC_BITS, not foldable)

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
              mma(part[t], pair(v0, EXP), pair(v1, EXP), pair(v0 >> 4, EXP), pair(v1 >> 4, EXP),
                  b0, b1);
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

_GEMV_SOURCE = _COMMON + r"""
__device__ __forceinline__ float lo_f(u32 v, __half*) {
  return __half2float(__ushort_as_half((unsigned short)(v & 0xFFFFu)));
}
__device__ __forceinline__ float hi_f(u32 v, __half*) {
  return __half2float(__ushort_as_half((unsigned short)(v >> 16)));
}
__device__ __forceinline__ float lo_f(u32 v, __nv_bfloat16*) { return __uint_as_float(v << 16); }
__device__ __forceinline__ float hi_f(u32 v, __nv_bfloat16*) {
  return __uint_as_float(v & 0xFFFF0000u);
}
__device__ __forceinline__ u32 h2u(__half2 h) { return *reinterpret_cast<u32*>(&h); }
__device__ __forceinline__ __half2 u2h(u32 v) { return *reinterpret_cast<__half2*>(&v); }

// x (1, K) @ dequantize(w (N, K))^T. A lane takes 16-byte runs of codes (32 weights of one
// group) 512 bytes apart, all its loads issued first; x waits in shared
// memory as float16 pairs (x0,x4) (x1,x5) (x2,x6) (x3,x7), the order in which one LOP3
// turns a word's codes into pairs 1024 + (q0,q4) or 1024 + 16 (q1,q5), so a code costs
// about two instructions (shift, LOP3, a half2 op to make it q - 8, a half2 FMA, the
// float sums). x is scaled by a power of two first so that no float16 sum overflows;
// per run, scale * sum((q - 8) x) + (bias + 8 scale) * sum(x) in float32.
extern "C" __global__ void __launch_bounds__(WARPS * 32)
qgemv4(const T* __restrict__ x, const u32* __restrict__ w, const ST* __restrict__ sc,
       const ST* __restrict__ bi, T* __restrict__ out, int N, int swr, int ssr) {
  constexpr int THREADS = WARPS * 32;
  constexpr int XPT = (NI * 128 + THREADS - 1) / THREADS;  // words of x per thread
  extern __shared__ __align__(16) uint4 xsh[];  // [NI][4][32] pairs of x, then run sums
  float* rsum = reinterpret_cast<float*>(xsh + NI * 128);
  __shared__ float wmax[WARPS];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int row0 = (blockIdx.x * WARPS + warp) * R;
  constexpr int runs = KC >> 5, words = KC >> 3;

#if __CUDA_ARCH__ >= 900
  // launched early (programmatic dependent launch): wait here for the kernels before
  // this one to finish and flush, then let the next kernel launch behind this one
  asm volatile("griddepcontrol.wait;" ::: "memory");
  asm volatile("griddepcontrol.launch_dependents;");
#endif
  // x first: its loads must not queue behind the codes
  uint4 xr[XPT];
#pragma unroll
  for (int k = 0; k < XPT; ++k) {
    const int wi = threadIdx.x + THREADS * k;
    xr[k] = wi < words ? __ldg(reinterpret_cast<const uint4*>(x) + wi) : make_uint4(0, 0, 0, 0);
  }

  uint4 wv[R][NI];
  ST s[R][NI], b[R][NI];
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const long long row = min(row0 + r, N - 1);
    const uint4* wr = reinterpret_cast<const uint4*>(w + row * swr);
#pragma unroll
    for (int i = 0; i < NI; ++i) {
      const int c = lane + 32 * i;
      wv[r][i] = NI * 32 == runs || c < runs ? __ldg(wr + c) : make_uint4(0, 0, 0, 0);
    }
  }
#pragma unroll
  for (int r = 0; r < R; ++r) {  // (after the codes: the scales wait till a run's end)
    const long long row = min(row0 + r, N - 1);
    const ST* sr = sc + row * ssr;
    const ST* br = bi + row * ssr;
#pragma unroll
    for (int i = 0; i < NI; ++i) {
      // (lane-relative offsets known at compile time where no run is clamped: one base
      // address per row, not 64-bit arithmetic per load, 1560 -> 1464 instructions a lane)
      const int g = NI * 32 == runs ? lane * 32 / GS + i * (1024 / GS)
                                    : min(lane + 32 * i, runs - 1) * 32 / GS;
      s[r][i] = sr[g];
      b[r][i] = br[g];
    }
  }

  // x: its largest magnitude over the program, then the scaled pairs and run sums
  float amax = 0.f;
#pragma unroll
  for (int k = 0; k < XPT; ++k) {
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const u32 v = comp(xr[k], j);
      amax = fmaxf(amax, fmaxf(fabsf(lo_f(v, (T*)0)), fabsf(hi_f(v, (T*)0))));
    }
  }
#pragma unroll
  for (int o = 16; o; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xFFFFFFFFu, amax, o));
  if (lane == 0) wmax[warp] = amax;
  __syncthreads();
  amax = wmax[0];
#pragma unroll
  for (int k = 1; k < WARPS; ++k) amax = fmaxf(amax, wmax[k]);
  int e = 0;
  const bool finite = amax > 0.f && amax <= 3.0e38f;
  if (finite) frexpf(amax, &e);
  const float up = finite ? ldexpf(1.f, 6 - e) : 1.f, down = finite ? ldexpf(1.f, e - 6) : 1.f;
#pragma unroll
  for (int k = 0; k < XPT; ++k) {
    const int wi = threadIdx.x + THREADS * k;
    float f[8];
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const u32 v = comp(xr[k], j);
      f[2 * j] = lo_f(v, (T*)0);
      f[2 * j + 1] = hi_f(v, (T*)0);
    }
    float sum = 0.f;
#pragma unroll
    for (int j = 0; j < 8; ++j) sum += f[j];
#pragma unroll
    for (int o = 1; o < 4; o <<= 1) sum += __shfl_xor_sync(0xFFFFFFFFu, sum, o);
    if (wi < words) {
      uint4 p;
      p.x = h2u(__floats2half2_rn(f[0] * up, f[4] * up));
      p.y = h2u(__floats2half2_rn(f[1] * up, f[5] * up));
      p.z = h2u(__floats2half2_rn(f[2] * up, f[6] * up));
      p.w = h2u(__floats2half2_rn(f[3] * up, f[7] * up));
      const int c = wi >> 2;
      xsh[((c >> 5) * 4 + (wi & 3)) * 32 + (c & 31)] = p;
      if ((wi & 3) == 0) rsum[wi >> 2] = sum;
    }
  }
  __syncthreads();

  // codes minus 8 (centred: the products of a word cancel instead of piling up). EXP is
  // 0x64006400 (N > 0) held in a register that ptxas cannot fold: given the mask and the
  // exponent bits as two immediates it makes each (v & mask) | EXP two LOP3s, and 1816
  // instructions a lane instead of 1560 (3.66 against 3.49 us on an H100)
  const u32 EXP = 0x64006400u | ((u32)N >> 31);
  const __half2 K1032 = u2h(0x64086408u), SIXTEENTH = u2h(0x2C002C00u),
                M72 = u2h(0xD480D480u);
  float acc[R], bacc[R];
#pragma unroll
  for (int r = 0; r < R; ++r) acc[r] = bacc[r] = 0.f;
#pragma unroll
  for (int i = 0; i < NI; ++i) {
    const int c = lane + 32 * i;
    __half2 part[R];
    float run[R];
#pragma unroll
    for (int r = 0; r < R; ++r) run[r] = 0.f;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const uint4 xv = xsh[(i * 4 + j) * 32 + lane];
#pragma unroll
      for (int r = 0; r < R; ++r) {
        if (j % PW == 0) part[r] = u2h(0u);
        const u32 v = comp(wv[r][i], j), v8 = v >> 8;
        const __half2 q0 = __hsub2(u2h((v & 0x000F000Fu) | EXP), K1032);
        const __half2 q1 = __hfma2(u2h((v & 0x00F000F0u) | EXP), SIXTEENTH, M72);
        const __half2 q2 = __hsub2(u2h((v8 & 0x000F000Fu) | EXP), K1032);
        const __half2 q3 = __hfma2(u2h((v8 & 0x00F000F0u) | EXP), SIXTEENTH, M72);
        part[r] = __hfma2(q0, u2h(xv.x), part[r]);
        part[r] = __hfma2(q1, u2h(xv.y), part[r]);
        part[r] = __hfma2(q2, u2h(xv.z), part[r]);
        part[r] = __hfma2(q3, u2h(xv.w), part[r]);
        if (j % PW == PW - 1) {  // (float16 sums of 4 * PW products: ~float16 rounding)
          const float2 p = __half22float2(part[r]);
          run[r] += p.x + p.y;
        }
      }
    }
    if (NI * 32 == runs || c < runs) {
      const float gx = rsum[c];
#pragma unroll
      for (int r = 0; r < R; ++r) {
        const float sr = to_f(s[r][i]);
        acc[r] += sr * run[r];
        bacc[r] += fmaf(8.f, sr, to_f(b[r][i])) * gx;
      }
    }
  }
#pragma unroll
  for (int r = 0; r < R; ++r) {
    float v = acc[r] * down + bacc[r];
#pragma unroll
    for (int o = 16; o; o >>= 1) v += __shfl_xor_sync(0xFFFFFFFFu, v, o);
    if (lane == 0 && row0 + r < N) store(out + row0 + r, v);
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
        f = _FUNCS[key] = _loaded(head + _SOURCE, "qmv4", index, _shmem(st, gs, cfg))
    return f


def _loaded(src, name, index, shmem):
    """(the compiled kernel `name` of `src`, its bytes of shared memory)."""
    return CK.load_function(CK.binary_of(src, name, index), name, index, shmem), shmem


def _shmem(st, gs, cfg):
    """Bytes of shared memory: a slab of codes per warp (rows of 16-byte runs of scales'
    worth of groups, 32 bytes apart), reused for the warps' partial sums."""
    rows, warps = 16 * cfg[0], cfg[1]
    pitch = 16 // _ELT[st] * gs // 2 + 32
    return warps * rows * max(pitch, 32)


class _Args(threading.local):
    """A kernel's argument slots (5 pointers, then ints) and the pointer array
    cuLaunchKernel reads, made once per thread and refilled per call (building a dozen
    ctypes values per call cost tens of microseconds on a slow host)."""

    def __init__(self, ints):
        self.vals = [ctypes.c_void_p() for _ in range(5)] + [ctypes.c_int() for _ in range(ints)]
        self.ptrs = (ctypes.c_void_p * (5 + ints))(*[ctypes.addressof(v) for v in self.vals])
        self.at = ctypes.cast(self.ptrs, ctypes.c_void_p)

    def fill(self, x, w, scales, biases, out, *ints):
        v = self.vals
        v[0].value, v[1].value, v[2].value = x.data_ptr(), w.data_ptr(), scales.data_ptr()
        v[3].value, v[4].value = biases.data_ptr(), out.data_ptr()
        for slot, i in zip(v[5:], ints):
            slot.value = i
        return self.at


_ARGS = _Args(7)
_GEMV_ARGS = _Args(3)
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
    at = _ARGS.fill(x2, w32, scales, biases, out, m, n, k, x2.stride(0), w32.stride(0),
                    scales.stride(0), n)
    _launch(f, -(-n // (16 * cfg[0])), cfg[1], shmem, dev, at)
    return out


def _stream(dev):
    """torch's current stream on `dev`, as the raw handle the driver takes."""
    return (_raw_stream(dev.index) if _raw_stream is not None
            else torch.cuda.current_stream(dev).cuda_stream)


def _launch(f, blocks, warps, shmem, dev, at):
    rc = _launcher()(f, blocks, 1, 1, warps * 32, 1, 1, shmem, _stream(dev), at, None)
    if rc:
        CK._check_cu(rc, "cuLaunchKernel")


class _LaunchAttribute(ctypes.Structure):  # CUlaunchAttribute
    _fields_ = [("id", ctypes.c_int), ("pad", ctypes.c_char * 4),
                ("value", ctypes.c_int), ("rest", ctypes.c_char * 60)]


class _LaunchConfig(ctypes.Structure):  # CUlaunchConfig
    _fields_ = [("grid", ctypes.c_uint * 3), ("block", ctypes.c_uint * 3),
                ("shmem", ctypes.c_uint), ("stream", ctypes.c_void_p),
                ("attrs", ctypes.POINTER(_LaunchAttribute)), ("n_attrs", ctypes.c_uint)]


_PDL = []  # [cuLaunchKernelEx] or [None] where it cannot be had
_PDL_CONFIG = threading.local()  # the launch configuration, made once per thread


def _pdl():
    """cuLaunchKernelEx, or None (a driver without it, or a GPU before sm_90)."""
    if not _PDL:
        fn = getattr(CK.cuda(), "cuLaunchKernelEx", None)
        if fn is not None and torch.cuda.get_device_capability()[0] >= 9:
            fn.argtypes = [ctypes.POINTER(_LaunchConfig), ctypes.c_void_p, ctypes.c_void_p,
                           ctypes.c_void_p]
            fn.restype = ctypes.c_int
        else:
            fn = None
        _PDL.append(fn)
    return _PDL[0]


def _launch_early(f, blocks, warps, shmem, dev, at):
    """A launch that may start before the previous kernel on the stream ends (the kernel
    waits for it in `griddepcontrol.wait`): programmatic stream serialization, attribute
    6, hides the launch's latency between kernels. The plain launch where that is not
    available."""
    fn = _pdl()
    if fn is None:
        return _launch(f, blocks, warps, shmem, dev, at)
    cfg = getattr(_PDL_CONFIG, "cfg", None)
    if cfg is None:
        attr = _LaunchAttribute(id=6, value=1)
        cfg = _PDL_CONFIG.cfg = _LaunchConfig(attrs=ctypes.pointer(attr), n_attrs=1)
        _PDL_CONFIG.attr = attr
    cfg.grid[0], cfg.grid[1], cfg.grid[2] = blocks, 1, 1
    cfg.block[0], cfg.block[1], cfg.block[2] = warps * 32, 1, 1
    cfg.shmem = shmem
    cfg.stream = _stream(dev)
    if fn(ctypes.byref(cfg), f, at, None):  # refused (another GPU, say): plain from now on
        _PDL[0] = None
        _launch(f, blocks, warps, shmem, dev, at)


# -- one row of x (decode) ----------------------------------------------------------

GEMV_MAX_K = 16384  # (a lane holds all its codes of a row in registers)


def gemv_usable(x2, w32, scales, biases, m, bits, gs, transpose):
    """Whether the decode kernel takes the product: 4 bits, transposed w, one row of
    half-type x, K a multiple of 32 up to GEMV_MAX_K, rows of codes on 16-byte
    boundaries, on sm_80 or newer."""
    k = x2.shape[-1]
    return (ENABLED and bits == 4 and transpose and m == 1 and gs in (32, 64, 128)
            and k % 32 == 0 and k <= GEMV_MAX_K
            and x2.dtype in _TYPES and x2.data_ptr() % 16 == 0
            and w32.stride(0) % 4 == 0 and w32.data_ptr() % 16 == 0
            and scales.dtype in _STYPES and biases.dtype is scales.dtype
            and biases.stride(0) == scales.stride(0) and _arch_ok(x2.device))


def gemv_config(k):
    """(rows per warp, warps per program, words per float16 sum): tuned on an H100 at
    1 x 4096 @ 4096 x 4096, 1 x 4096 @ 14336 x 4096 and 1 x 14336 @ 4096 x 14336, group
    64 (loading the codes run by run instead of row by row changed nothing)."""
    return (4 if k <= 4096 else 2), 8, 2


def _gemv_function(dt, st, gs, k, cfg, index):
    key = ("gemv", dt, st, gs, k, cfg, index)
    f = _FUNCS.get(key)
    if f is None:
        rows, warps, pw = cfg
        ni = -(-k // 1024)
        head = (f"#define T {_TYPES[dt][0]}\n#define ST {_STYPES[st]}\n#define GS {gs}\n"
                f"#define KC {k}\n#define NI {ni}\n#define R {rows}\n#define WARPS {warps}\n"
                f"#define PW {pw}\n")
        f = _FUNCS[key] = _loaded(head + _GEMV_SOURCE, "qgemv4", index,
                                  ni * 2048 + k // 32 * 4)
    return f


def gemv(x2, w32, scales, biases, gs, cfg=None):
    """x2 (1, K) half-type, w32 (N, K / 8) int32 words, scales and biases (N, K / gs):
    the (1, N) product in x's dtype."""
    k = x2.shape[1]
    n = w32.shape[0]
    cfg = cfg or gemv_config(k)
    dev = x2.device
    f, shmem = _gemv_function(x2.dtype, scales.dtype, gs, k, cfg, dev.index)
    out = torch.empty((1, n), dtype=x2.dtype, device=dev)
    at = _GEMV_ARGS.fill(x2, w32, scales, biases, out, n, w32.stride(0), scales.stride(0))
    _launch_early(f, -(-n // (cfg[0] * cfg[1])), cfg[1], shmem, dev, at)
    return out
