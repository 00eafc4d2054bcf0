// kernels/common.cuh: prepended to every kernel family before NVRTC compiles it.
// No CUDA headers are included (DESIGN.md, decision 3): bf16 is a 16-bit pattern handled by bit
// operations, and the few PTX instructions kiln uses (mma.sync, ldmatrix, cp.async) are wrapped
// here, never written inline in a kernel. Dimension names follow src/lib.rs.

typedef unsigned int u32;
typedef unsigned long long u64;
#define KILN_INF __int_as_float(0x7f800000)

// ---- bf16 -------------------------------------------------------------------------------------
// The upper half of an f32. Conversion rounds to nearest-even and keeps NaN a (quiet) NaN,
// matching half::bf16::from_f32 on the CPU.
struct bf16 { unsigned short bits; };

__device__ __forceinline__ float bf2f(bf16 v) { return __uint_as_float(((u32)v.bits) << 16); }
__device__ __forceinline__ bf16 f2bf(float f) {
    u32 u = __float_as_uint(f);
    bf16 r;
    if ((u & 0x7fffffffu) > 0x7f800000u) { r.bits = (unsigned short)((u >> 16) | 0x40u); return r; }
    u += 0x7fffu + ((u >> 16) & 1u);
    r.bits = (unsigned short)(u >> 16);
    return r;
}
// Two bf16 packed in one 32-bit register, lo in the low half (the mma.sync operand layout).
__device__ __forceinline__ u32 pack_bf16(float lo, float hi) {
    return (u32)f2bf(lo).bits | ((u32)f2bf(hi).bits << 16);
}

// Load and store any storage type as f32 arithmetic.
__device__ __forceinline__ float load(const float* p, long i) { return p[i]; }
__device__ __forceinline__ float load(const bf16* p, long i) { return bf2f(p[i]); }
__device__ __forceinline__ void store(float* p, long i, float v) { p[i] = v; }
__device__ __forceinline__ void store(bf16* p, long i, float v) { p[i] = f2bf(v); }

// Four consecutive elements as f32 (16-byte f32 / 8-byte bf16 accesses; i must keep them aligned).
struct V4 { float v[4]; };
__device__ __forceinline__ V4 load4(const float* p, long i) {
    float4 t = *reinterpret_cast<const float4*>(p + i);
    V4 r; r.v[0] = t.x; r.v[1] = t.y; r.v[2] = t.z; r.v[3] = t.w; return r;
}
__device__ __forceinline__ V4 load4(const bf16* p, long i) {
    uint2 t = *reinterpret_cast<const uint2*>(p + i);
    V4 r;
    r.v[0] = __uint_as_float(t.x << 16); r.v[1] = __uint_as_float(t.x & 0xffff0000u);
    r.v[2] = __uint_as_float(t.y << 16); r.v[3] = __uint_as_float(t.y & 0xffff0000u);
    return r;
}
__device__ __forceinline__ void store4(float* p, long i, V4 r) {
    *reinterpret_cast<float4*>(p + i) = make_float4(r.v[0], r.v[1], r.v[2], r.v[3]);
}
__device__ __forceinline__ void store4(bf16* p, long i, V4 r) {
    *reinterpret_cast<uint2*>(p + i) = make_uint2(pack_bf16(r.v[0], r.v[1]), pack_bf16(r.v[2], r.v[3]));
}

// ---- reductions -------------------------------------------------------------------------------
__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
// Block-wide sum / max; every thread gets the result. `scratch` holds 32 floats of shared memory.
// The fixed tree order makes the result deterministic for a given blockDim.
__device__ __forceinline__ float block_sum(float v, float* scratch) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    v = warp_sum(v);
    __syncthreads();                       // scratch may still be read from a previous call
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < nw ? scratch[lane] : 0.f;
    return warp_sum(v);
}
__device__ __forceinline__ float block_max(float v, float* scratch) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < nw ? scratch[lane] : -KILN_INF;
    return warp_max(v);
}

// Grid-stride loop over [0, n).
#define GRID_STRIDE(i, n) for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < (long)(n); i += (long)blockDim.x * gridDim.x)

// ---- tensor cores and async copies (sm_80+) ----------------------------------------------------
// Shared-memory address of a generic pointer, as the 32-bit value PTX shared-space operands take.
__device__ __forceinline__ u32 smem_addr(const void* p) {
#ifndef KILN_EMU
    u32 r;
    asm volatile("{ .reg .u64 t; cvta.to.shared.u64 t, %1; cvt.u32.u64 %0, t; }" : "=r"(r) : "l"(p));
    return r;
#else
    return (u32)(u64)p;  // emulated (kernels/emu.h): not a shared-window offset; the wrappers use p
#endif
}
// D = A B + D for one 16x8x16 tile: A row-major 16x16 bf16 (4 regs), B col-major 16x8 bf16
// (2 regs), D 16x8 f32 (4 regs). Fragment layout: PTX ISA, "mma.m16n8k16" (lane = 4*group + t:
// a0..a3 hold rows g, g+8 at columns 2t..2t+1 and 2t+8..2t+9; d0..d3 the same rows at columns 2t, 2t+1).
__device__ __forceinline__ void mma_bf16_16816(float d[4], const u32 a[4], const u32 b[2]) {
#ifndef KILN_EMU
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
    kiln_emu::mma_bf16_16816(d, a, b);
#endif
}
// Four 8x8 b16 matrices from shared memory; lane l supplies the row address of row l%8 of matrix l/8.
__device__ __forceinline__ void ldmatrix_x4(u32 r[4], const void* smem_row) {
#ifndef KILN_EMU
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(smem_addr(smem_row)));
#else
    kiln_emu::ldmatrix(r, 4, false, smem_row);
#endif
}
__device__ __forceinline__ void ldmatrix_x2(u32 r[2], const void* smem_row) {
#ifndef KILN_EMU
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];"
                 : "=r"(r[0]), "=r"(r[1]) : "r"(smem_addr(smem_row)));
#else
    kiln_emu::ldmatrix(r, 2, false, smem_row);
#endif
}
// The transposing forms: each thread receives the column-pair of the transposed 8x8 matrix.
__device__ __forceinline__ void ldmatrix_x4_trans(u32 r[4], const void* smem_row) {
#ifndef KILN_EMU
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(smem_addr(smem_row)));
#else
    kiln_emu::ldmatrix(r, 4, true, smem_row);
#endif
}
__device__ __forceinline__ void ldmatrix_x2_trans(u32 r[2], const void* smem_row) {
#ifndef KILN_EMU
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0,%1}, [%2];"
                 : "=r"(r[0]), "=r"(r[1]) : "r"(smem_addr(smem_row)));
#else
    kiln_emu::ldmatrix(r, 2, true, smem_row);
#endif
}
// 16-byte global->shared copy that bypasses registers; `valid` false writes zeros instead
// (out-of-range tiles). Both addresses must be 16-byte aligned.
__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, bool valid) {
#ifndef KILN_EMU
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;"
                 :: "r"(smem_addr(smem)), "l"(gmem), "r"(valid ? 16 : 0));
#else
    kiln_emu::cp_async16(smem, gmem, valid);
#endif
}
__device__ __forceinline__ void cp_async_commit() {
#ifndef KILN_EMU
    asm volatile("cp.async.commit_group;");
#else
    kiln_emu::cp_async_commit();
#endif
}
template <int N> __device__ __forceinline__ void cp_async_wait() {
#ifndef KILN_EMU
    asm volatile("cp.async.wait_group %0;" :: "n"(N));
#else
    kiln_emu::cp_async_wait(N);
#endif
}
