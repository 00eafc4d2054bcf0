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

// Sixteen bytes of consecutive elements as f32: 4 f32 or 8 bf16 per access, so bf16 rows move as
// many bytes per load as f32 rows (i must keep the access 16-byte aligned: a multiple of W).
template <typename T> struct V16 {
    static constexpr int W = 16 / sizeof(T);
    float v[16 / sizeof(T)];
};
__device__ __forceinline__ V16<float> load16(const float* p, long i) {
    float4 t = *reinterpret_cast<const float4*>(p + i);
    V16<float> r; r.v[0] = t.x; r.v[1] = t.y; r.v[2] = t.z; r.v[3] = t.w; return r;
}
__device__ __forceinline__ V16<bf16> load16(const bf16* p, long i) {
    uint4 t = *reinterpret_cast<const uint4*>(p + i);
    const u32 w[4] = {t.x, t.y, t.z, t.w};
    V16<bf16> r;
#pragma unroll
    for (int k = 0; k < 4; k++) { r.v[2 * k] = __uint_as_float(w[k] << 16); r.v[2 * k + 1] = __uint_as_float(w[k] & 0xffff0000u); }
    return r;
}
__device__ __forceinline__ void store16(float* p, long i, const V16<float>& r) {
    *reinterpret_cast<float4*>(p + i) = make_float4(r.v[0], r.v[1], r.v[2], r.v[3]);
}
__device__ __forceinline__ void store16(bf16* p, long i, const V16<bf16>& r) {
    *reinterpret_cast<uint4*>(p + i) = make_uint4(pack_bf16(r.v[0], r.v[1]), pack_bf16(r.v[2], r.v[3]),
                                                  pack_bf16(r.v[4], r.v[5]), pack_bf16(r.v[6], r.v[7]));
}

// ---- a one-instruction exp (MUFU): softmax rows, cross-entropy, tensor-core attention ----------
// exp_approx(x) = e^x as ex2.approx.ftz(x log2 e): one FMUL and one MUFU.EX2 where expf takes
// about ten instructions (range reduction); relative error about 2^-22 + |x| 2^-24, and results
// below 2^-126 flush to 0. Softmax-type rows call it on x - max <= 0, where the terms that carry
// the sum have small |x|.
__device__ __forceinline__ float exp_approx(float x) {
    float t = x * 1.4426950408889634f;
#ifndef KILN_EMU
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(t));
    return y;
#else
    float y = exp2f(t);
    return y < 1.17549435e-38f ? 0.f : y;           // ftz: no subnormal results
#endif
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

// ---- GEMM epilogue and block order (matmul.cu, matmul_sm90.cu) -----------------------------------
// Columns n, n + 1 of C's row at c + o (o = row * N + n) from f32 x0, x1, as bf16: one 4-byte store
// when both exist and `pair` (N even, so the address is 4-byte aligned), else per element.
__device__ __forceinline__ void store_bf16x2(bf16* c, long o, int n, int N, bool pair, float x0, float x1) {
    if (pair && n + 1 < N) {
        *reinterpret_cast<u32*>(c + o) = pack_bf16(x0, x1);
    } else {
        if (n < N) c[o] = f2bf(x0);
        if (n + 1 < N) c[o + 1] = f2bf(x1);
    }
}
// This CTA's output block of a batched GEMM: its first row m0 and column n0 for BM x BN tiles,
// with a, b and c moved to batch blockIdx.z (b stays put when shared). Consecutive CTAs walk down
// a group of 8 block-rows before moving right, so the A and B panels they share stay in L2.
// (PA, PB, PC: the kernel's pointer parameters as declared, __restrict__ included.)
template <int BM, int BN, typename PA, typename PB, typename PC>
__device__ __forceinline__ void gemm_block(PA& a, PB& b, PC& c, int M, int K, int N, int b_shared, int& m0, int& n0) {
    const int nbm = gridDim.y, nbn = gridDim.x, id = blockIdx.y * nbn + blockIdx.x;
    const int per = 8 * nbn, first = id / per * 8, rows = min(nbm - first, 8), r = id % per;
    m0 = (first + r % rows) * BM;
    n0 = r / rows * BN;
    const long z = blockIdx.z;
    a += z * (long)M * K;
    b += b_shared ? 0 : z * (long)K * N;
    c += z * (long)M * N;
}

// ---- flags between blocks of one launch --------------------------------------------------------
// A block publishes data for others (stores, __threadfence, __syncthreads), then one thread sets
// the flag with release order at GPU scope; a waiting block's thread spins on it with acquire
// order, then __syncthreads, and the block reads the data past L1 (__ldcg). A block may only wait
// for blocks that are already running (e.g. smaller tickets from an atomic counter). A wait of
// over 2^32 cycles traps (the launch fails) rather than hang the GPU.
__device__ __forceinline__ void flag_set(unsigned* f) {
#ifndef KILN_EMU
    asm volatile("st.release.gpu.global.u32 [%0], %1;" :: "l"(f), "r"(1u) : "memory");
#else
    std::atomic_ref<unsigned>(*f).store(1u, std::memory_order_release);
#endif
}
__device__ __forceinline__ void flag_wait(const unsigned* f) {
#ifndef KILN_EMU
    const long long t0 = clock64();
    for (;;) {
        unsigned v;
        asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(f) : "memory");
        if (v != 0) break;
        if (clock64() - t0 > (1ll << 32)) __trap();  // ~2 s: a protocol bug, not a slow block
        __nanosleep(64);
    }
#else
    // (blocks run one after another here: a flag not set yet never will be, and the runtime
    // reports the spin as a deadlock)
    while (std::atomic_ref<unsigned>(*const_cast<unsigned*>(f)).load(std::memory_order_acquire) == 0) kiln_emu::spin(false);
    kiln_emu::spin(true);
#endif
}

// Drop one 128-byte line (128-aligned) from L2 without writing it back to memory: for scratch that
// nobody reads again, which would otherwise cost its bytes in HBM writes when evicted. Its
// contents are undefined afterwards; the emulator fills it with 0xff bytes (a NaN in every f32),
// so a line discarded while still needed shows in the results.
__device__ __forceinline__ void discard_l2(void* line) {
#ifndef KILN_EMU
    asm volatile("discard.global.L2 [%0], 128;" :: "l"(line) : "memory");
#else
    memset(line, 0xff, 128);
#endif
}

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
// The same with an L2 eviction priority (a policy from l2_policy): evict_last for data read again
// soon (it outlives the streams around it), evict_first for a last read. The emulator has no L2.
__device__ __forceinline__ void cp_async16_hint(void* smem, const void* gmem, bool valid, u64 policy) {
#ifndef KILN_EMU
    asm volatile("cp.async.cg.shared.global.L2::cache_hint [%0], [%1], 16, %2, %3;"
                 :: "r"(smem_addr(smem)), "l"(gmem), "r"(valid ? 16 : 0), "l"(policy));
#else
    (void)policy;
    kiln_emu::cp_async16(smem, gmem, valid);
#endif
}
// An L2 policy for every access it is given to: last = true evicts those lines last, else first.
__device__ __forceinline__ u64 l2_policy(bool last) {
#ifndef KILN_EMU
    u64 p;
    if (last)
        asm volatile("createpolicy.fractional.L2::evict_last.b64 %0, 1.0;" : "=l"(p));
    else
        asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;" : "=l"(p));
    return p;
#else
    return last;
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
    asm volatile("cp.async.wait_group %0;" :: "n"(N) : "memory");   // no shared read moves above it
#else
    kiln_emu::cp_async_wait(N);
#endif
}

// One 16-byte piece of 8 bf16 at g (elements g[0 .. lim) exist, 0 <= lim <= 8) into shared s:
// cp.async when vec (lim is then 0 or 8 and g 16-byte aligned; base is any valid address, read
// by none), else predicated scalar loads and one 16-byte shared store. Zeros past lim.
__device__ __forceinline__ void load_piece8(bf16* s, const bf16* g, const bf16* base, int lim, bool vec) {
    if (vec) {
        cp_async16(s, lim > 0 ? g : base, lim > 0);
    } else {
        u32 w[4];
#pragma unroll
        for (int e = 0; e < 4; e++) {
            u32 lo = 2 * e < lim ? (u32)g[2 * e].bits : 0u;
            u32 hi = 2 * e + 1 < lim ? (u32)g[2 * e + 1].bits : 0u;
            w[e] = lo | (hi << 16);
        }
        *reinterpret_cast<uint4*>(s) = make_uint4(w[0], w[1], w[2], w[3]);
    }
}
// ROWS rows r0 .. r0 + ROWS - 1 (those < r0 + n exist) of a row-major (., width) bf16 matrix into a
// [ROWS][ld] shared tile, columns col0 .. col0 + cols - 1 (those < width exist; cols a multiple
// of 8), zeros elsewhere. vec: 16-byte cp.async (width and col0 multiples of 8, g 16-byte aligned).
template <int ROWS>
__device__ __forceinline__ void load_rows_bf16(bf16* s, int ld, const bf16* g, long r0, int n, int width, int col0, int cols, bool vec) {
    const int per = cols / 8;
    for (int e = threadIdx.x; e < ROWS * per; e += blockDim.x) {
        int r = e / per, c = (e % per) * 8;
        int lim = (r < n && col0 + c < width) ? min(8, width - col0 - c) : 0;
        load_piece8(s + r * ld + c, g + (lim > 0 ? (r0 + r) * width + col0 + c : 0), g, lim, vec);
    }
}

// ---- warpgroup MMA: sm_90a only (kernels/matmul_sm90.cu, compiled for compute_90a alone) -------
// Templates, so these instructions reach only the PTX of the families that call them. `window` is
// the emulator's stand-in for the shared window: the block's dynamic shared array, which descriptor
// addresses are offsets into (kernels/emu.h); a GPU ignores it.
// D (64 x 128, f32, this warpgroup) += A (64 x 16) B (16 x 128), both bf16 in shared memory, each
// described by a matrix descriptor (PTX ISA, "Matrix Descriptor Format"). TA / TB: the operand is
// MN-major (1) or K-major (0). Fragment of D: thread t of the warpgroup, w = t / 32, l = t % 32,
// holds d[4i + 2h + c] = D[16w + l/4 + 8h][8i + 2(l%4) + c] (i < 16, h, c < 2).
template <int TA, int TB>
__device__ __forceinline__ void wgmma_m64n128k16(float d[64], u64 da, u64 db, const void* window) {
#ifndef KILN_EMU
    asm volatile(
        "{\n"
        ".reg .pred p;\n"
        "setp.ne.b32 p, %68, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {"
        "%0, %1, %2, %3, %4, %5, %6, %7, "
        "%8, %9, %10, %11, %12, %13, %14, %15, "
        "%16, %17, %18, %19, %20, %21, %22, %23, "
        "%24, %25, %26, %27, %28, %29, %30, %31, "
        "%32, %33, %34, %35, %36, %37, %38, %39, "
        "%40, %41, %42, %43, %44, %45, %46, %47, "
        "%48, %49, %50, %51, %52, %53, %54, %55, "
        "%56, %57, %58, %59, %60, %61, %62, %63"
        "}, %64, %65, p, 1, 1, %66, %67;\n"
        "}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
          "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
          "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
          "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]),
          "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]),
          "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),
          "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
          "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
        : "l"(da), "l"(db), "n"(TA), "n"(TB), "r"(1));
#else
    kiln_emu::wgmma_bf16(d, 128, da, db, TA, TB, window);
#endif
}
// As wgmma_m64n128k16 with N = 256: D (64 x 256) in d[128] (i < 32 in the fragment formula), one
// instruction where two n128 ones read the A tile from shared memory twice.
template <int TA, int TB>
__device__ __forceinline__ void wgmma_m64n256k16(float d[128], u64 da, u64 db, const void* window) {
#ifndef KILN_EMU
    asm volatile(
        "{\n"
        ".reg .pred p;\n"
        "setp.ne.b32 p, %132, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16 {"
        "%0, %1, %2, %3, %4, %5, %6, %7, "
        "%8, %9, %10, %11, %12, %13, %14, %15, "
        "%16, %17, %18, %19, %20, %21, %22, %23, "
        "%24, %25, %26, %27, %28, %29, %30, %31, "
        "%32, %33, %34, %35, %36, %37, %38, %39, "
        "%40, %41, %42, %43, %44, %45, %46, %47, "
        "%48, %49, %50, %51, %52, %53, %54, %55, "
        "%56, %57, %58, %59, %60, %61, %62, %63, "
        "%64, %65, %66, %67, %68, %69, %70, %71, "
        "%72, %73, %74, %75, %76, %77, %78, %79, "
        "%80, %81, %82, %83, %84, %85, %86, %87, "
        "%88, %89, %90, %91, %92, %93, %94, %95, "
        "%96, %97, %98, %99, %100, %101, %102, %103, "
        "%104, %105, %106, %107, %108, %109, %110, %111, "
        "%112, %113, %114, %115, %116, %117, %118, %119, "
        "%120, %121, %122, %123, %124, %125, %126, %127"
        "}, %128, %129, p, 1, 1, %130, %131;\n"
        "}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
          "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
          "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
          "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]),
          "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]),
          "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),
          "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
          "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]),
          "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]),
          "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]),
          "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]),
          "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]),
          "+f"(d[96]), "+f"(d[97]), "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]),
          "+f"(d[104]), "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]), "+f"(d[110]), "+f"(d[111]),
          "+f"(d[112]), "+f"(d[113]), "+f"(d[114]), "+f"(d[115]), "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]),
          "+f"(d[120]), "+f"(d[121]), "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127])
        : "l"(da), "l"(db), "n"(TA), "n"(TB), "r"(1));
#else
    kiln_emu::wgmma_bf16(d, 256, da, db, TA, TB, window);
#endif
}
// Pin accumulators in place for the compiler: no read or write of d may move across this point.
// Without it, reads of the epilogue can be hoisted above wgmma_wait, and ptxas then serialises
// every MMA (kernels_compile fails on that report).
template <int N> __device__ __forceinline__ void wgmma_hold(float* d) {
#ifndef KILN_EMU
#pragma unroll
    for (int i = 0; i < N; i++) asm volatile("" : "+f"(d[i])::"memory");
#endif
}
// Order this thread's register and shared-memory accesses before the warpgroup MMAs that follow.
template <int X = 0> __device__ __forceinline__ void wgmma_fence() {
#ifndef KILN_EMU
    asm volatile("wgmma.fence.sync.aligned;" ::: "memory");
#endif
}
// Close the group of MMAs issued since the last commit.
template <int X = 0> __device__ __forceinline__ void wgmma_commit() {
#ifndef KILN_EMU
    asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory");
#else
    kiln_emu::wgmma_commit();
#endif
}
// Wait until at most N committed groups are still running (their accumulators are then final).
template <int N> __device__ __forceinline__ void wgmma_wait() {
#ifndef KILN_EMU
    asm volatile("wgmma.wait_group.sync.aligned %0;" :: "n"(N) : "memory");
#else
    kiln_emu::wgmma_wait(N);
#endif
}
// Make this thread's shared-memory writes (stores, cp.async) visible to the async proxy wgmma reads with.
template <int X = 0> __device__ __forceinline__ void fence_proxy_async() {
#ifndef KILN_EMU
    asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
#endif
}
