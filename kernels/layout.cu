// kernels/layout.cu: data movement. permute (a transposing copy), strided block copies (narrow,
// concat), index_select (a row gather) and its deterministic scatter-add adjoint index_add.
// Twin: src/backend/cpu/layout.rs (embedding's gather and backward are index_select / index_add
// with outer = 1, as in backend/cpu/embedding.rs).
//
// The pure moves do not look at the bits they move: each is instanced per "word" of 2, 4, 8 or 16
// bytes (w2 w4 w8 w16), and the wrapper picks the widest word that divides every contiguous run,
// so a row of bf16 moves 8 elements per 16-byte load. Index arithmetic is 32-bit (i32 instances)
// when every offset fits, 64-bit (i64) otherwise.
//
// 2-D launches (copy2d, gather, index_add): threadIdx.x / blockIdx.x stride over the columns of a
// row, threadIdx.y / blockIdx.y over the rows; both loops are grid-stride, so any grid works.

typedef unsigned short u16;

__device__ __forceinline__ void set_zero(u16& w) { w = 0; }
__device__ __forceinline__ void set_zero(u32& w) { w = 0; }
__device__ __forceinline__ void set_zero(uint2& w) { w = make_uint2(0, 0); }
__device__ __forceinline__ void set_zero(uint4& w) { w = make_uint4(0, 0, 0, 0); }

// ---- permute ----------------------------------------------------------------------------------
// Output dims (outermost first) and, for each, the source stride in words; rank <= 8. The wrapper
// drops size-1 dims and merges dims that are contiguous in the source. Exactly 128 bytes.
struct Perm { u32 rank; u32 dim[8]; u32 pad[7]; u64 stride[8]; };

// y[i] = x[off(i)], y contiguous: one thread per output word, grid-stride. The dim loop is fully
// unrolled with a uniform `d < rank` test, so `p` is read with constant indices and stays in the
// parameter bank (no local-memory copy).
template <typename W, typename I>
__device__ __forceinline__ void permute_k(const W* x, W* y, I n, const Perm& p) {
    for (I i = (I)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (I)blockDim.x * gridDim.x) {
        I rem = i, off = 0;
#pragma unroll
        for (int d = 7; d >= 0; d--) {
            if (d < (int)p.rank) {
                I dim = (I)p.dim[d], q = rem / dim;
                off += (rem - q * dim) * (I)p.stride[d];
                rem = q;
            }
        }
        y[i] = x[off];
    }
}

// ---- permute, tiled: the innermost output dim is strided in x --------------------------------
// Output dim q is x's innermost (stride 1), the last output dim A is strided in x. Each 32 x 32
// tile of (A, q) at one index of the other ("batch") dims goes through shared memory: read
// coalesced along q, written coalesced along A. One tile per block (grid-stride over tiles);
// any block shape works, the wrapper launches (32, 8). Batch dims: rank <= 6, outermost first,
// with their x and y strides. Exactly 128 bytes.
struct Batch { u32 rank; u32 dim[6]; u32 pad; u64 xs[6]; u64 ys[6]; };

// Tile t (a-tiles fastest, then q-tiles, then the batch index, outermost last) of SIDE x SIDE:
// its first a and q, and the x / y offsets of its batch index. ta, tq: tiles along A and q. The
// dim loop is unrolled with a uniform `d < rank` test, so bt stays in the parameter bank.
template <int SIDE, typename I>
__device__ __forceinline__ void tile_origin(I t, I ta, I tq, const Batch& bt, I& a0, I& q0, I& xo, I& yo) {
    I rem = t;
    a0 = (rem % ta) * SIDE; rem /= ta;
    q0 = (rem % tq) * SIDE; rem /= tq;
    xo = 0;
    yo = 0;
#pragma unroll
    for (int d = 5; d >= 0; d--) {
        if (d < (int)bt.rank) {
            I dim = (I)bt.dim[d], k = rem / dim, i = rem - k * dim;
            xo += i * (I)bt.xs[d];
            yo += i * (I)bt.ys[d];
            rem = k;
        }
    }
}

template <typename W, typename I>
__device__ __forceinline__ void permute_tiled_k(const W* x, W* y, I nA, I nQ, I xsA, I ysQ, I tiles, const Batch& bt) {
    __shared__ W tile[32][33];
    I ta = (nA + 31) / 32, tq = (nQ + 31) / 32;
    for (I t = blockIdx.x; t < tiles; t += gridDim.x) {
        I a0, q0, xo, yo;
        tile_origin<32>(t, ta, tq, bt, a0, q0, xo, yo);
        __syncthreads();                           // the previous tile's readers are done
        for (int k = threadIdx.y; k < 32; k += blockDim.y)
            for (int c = threadIdx.x; c < 32; c += blockDim.x) {
                I a = a0 + k, q = q0 + c;
                if (a < nA && q < nQ) tile[k][c] = x[xo + a * xsA + q];
            }
        __syncthreads();
        for (int k = threadIdx.y; k < 32; k += blockDim.y)
            for (int c = threadIdx.x; c < 32; c += blockDim.x) {
                I q = q0 + k, a = a0 + c;
                if (a < nA && q < nQ) y[yo + q * ysQ + a] = tile[c][k];
            }
    }
}

// The entry points of a tiled transpose body K##_k: 2- and 4-byte elements, 32- and 64-bit indices.
#define TILED_ONE(K, W, WS, I, IS)                                                                    \
extern "C" __global__ void K##_##WS##_##IS(const W* x, W* y, I nA, I nQ, I xsA, I ysQ, I tiles, Batch bt) { \
    K##_k(x, y, nA, nQ, xsA, ysQ, tiles, bt);                                                         \
}
#define TILED_KERNELS(K) TILED_ONE(K, u16, w2, u32, i32) TILED_ONE(K, u32, w4, u32, i32) \
                         TILED_ONE(K, u16, w2, u64, i64) TILED_ONE(K, u32, w4, u64, i64)
TILED_KERNELS(permute_tiled)

// 2-byte elements with nA and nQ even: 64 x 64 tiles moved as u32 pairs, so every global access
// is 4 bytes (128 bytes per warp) instead of 2. Loads take pairs (q, q+1) of one row a; stores
// take pairs (a, a+1) of one row q, built from two 2-byte shared reads. nQ even makes every x
// stride even and nA even every y stride, so each pair starts at an even element (4-byte
// aligned). Arguments as permute_tiled_k, in elements; tiles counts 64 x 64 tiles.
template <typename I>
__device__ __forceinline__ void permute_tiled2_k(const u16* x, u16* y, I nA, I nQ, I xsA, I ysQ, I tiles, const Batch& bt) {
    __shared__ u32 tw[64][33];                      // 64 rows (a) x 66 u16 (q), 4-byte aligned
    u16 (*tile)[66] = reinterpret_cast<u16 (*)[66]>(tw);
    const u32* x2 = reinterpret_cast<const u32*>(x);
    u32* y2 = reinterpret_cast<u32*>(y);
    I ta = (nA + 63) / 64, tq = (nQ + 63) / 64;
    for (I t = blockIdx.x; t < tiles; t += gridDim.x) {
        I a0, q0, xo, yo;
        tile_origin<64>(t, ta, tq, bt, a0, q0, xo, yo);
        __syncthreads();                           // the previous tile's readers are done
        for (int k = threadIdx.y; k < 64; k += blockDim.y)
            for (int c = threadIdx.x; c < 32; c += blockDim.x) {
                I a = a0 + k, q = q0 + 2 * c;        // q even, nQ even: q < nQ => q + 1 < nQ
                if (a < nA && q < nQ) tw[k][c] = x2[(xo + a * xsA + q) / 2];
            }
        __syncthreads();
        for (int k = threadIdx.y; k < 64; k += blockDim.y)
            for (int c = threadIdx.x; c < 32; c += blockDim.x) {
                I q = q0 + k, a = a0 + 2 * c;        // a even, nA even: a < nA => a + 1 < nA
                if (a < nA && q < nQ)
                    y2[(yo + q * ysQ + a) / 2] = (u32)tile[2 * c][k] | ((u32)tile[2 * c + 1][k] << 16);
            }
    }
}
extern "C" __global__ void permute_tiled2_w2_i32(const u16* x, u16* y, u32 nA, u32 nQ, u32 xsA, u32 ysQ, u32 tiles, Batch bt) {
    permute_tiled2_k(x, y, nA, nQ, xsA, ysQ, tiles, bt);
}
extern "C" __global__ void permute_tiled2_w2_i64(const u16* x, u16* y, u64 nA, u64 nQ, u64 xsA, u64 ysQ, u64 tiles, Batch bt) {
    permute_tiled2_k(x, y, nA, nQ, xsA, ysQ, tiles, bt);
}

// 16-byte accesses: nA and nQ multiples of V = 16 / sizeof(W) (4 f32, 8 bf16). 64 x 64 tiles;
// loads take V consecutive q of one row a, stores V consecutive a of one row q, so each warp
// moves 512 bytes per access and a 256-thread block keeps 16 KB in flight (4 accesses a thread)
// instead of 4 KB (bf16: two tiles a step). Every x stride is a multiple of nQ and every y stride of nA (see tiled2), so
// each access is 16-byte aligned. Row pitch 64 + 4 / sizeof(W) elements: one 4-byte bank word
// past the 64 elements, which keeps the column reads of the store phase conflict-free for bf16
// and 2-way for f32. Arguments as permute_tiled_k; tiles counts 64 x 64 tiles.
template <typename W> struct Vec16;
template <> struct Vec16<u32> {
    static constexpr int V = 4;
    __device__ __forceinline__ static void put(uint4 v, u32* t) { t[0] = v.x; t[1] = v.y; t[2] = v.z; t[3] = v.w; }
    __device__ __forceinline__ static uint4 get(const u32 (*t)[65], int r, int k) {
        return make_uint4(t[r][k], t[r + 1][k], t[r + 2][k], t[r + 3][k]);
    }
};
template <> struct Vec16<u16> {
    static constexpr int V = 8;
    __device__ __forceinline__ static void put(uint4 v, u16* t) {
        const u32 w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
        for (int e = 0; e < 4; e++) { t[2 * e] = (u16)(w[e] & 0xffffu); t[2 * e + 1] = (u16)(w[e] >> 16); }
    }
    __device__ __forceinline__ static uint4 get(const u16 (*t)[66], int r, int k) {
        u32 w[4];
#pragma unroll
        for (int e = 0; e < 4; e++) w[e] = (u32)t[r + 2 * e][k] | ((u32)t[r + 2 * e + 1][k] << 16);
        return make_uint4(w[0], w[1], w[2], w[3]);
    }
};

// NT tiles a step (2 bf16, 1 f32): a bf16 tile is half an f32 one, and at one tile a step the
// H200 moved 8192^2 bf16 at 0.69 of the copy rate (f32 0.87); two keep the same 16 KB in flight.
template <typename W, typename I>
__device__ __forceinline__ void permute_tiled16_k(const W* x, W* y, I nA, I nQ, I xsA, I ysQ, I tiles, const Batch& bt) {
    constexpr int V = Vec16<W>::V, R = 64 / V;      // elements per access, accesses per tile row
    constexpr int NT = V / 4, U = 4 / NT;           // tiles a step; accesses a thread per tile and pass
    __shared__ __align__(16) W tile[NT][64][64 + 4 / sizeof(W)];
    const int tid = threadIdx.y * blockDim.x + threadIdx.x, nt = blockDim.x * blockDim.y;   // any block shape
    I ta = (nA + 63) / 64, tq = (nQ + 63) / 64;
    for (I t0 = (I)blockIdx.x * NT; t0 < tiles; t0 += (I)gridDim.x * NT) {
        I a0[NT], q0[NT], xo[NT], yo[NT];
#pragma unroll
        for (int p = 0; p < NT; p++) {
            a0[p] = nA; q0[p] = nQ; xo[p] = yo[p] = 0;   // past the last tile: nothing in range
            if (t0 + p < tiles) tile_origin<64>(t0 + p, ta, tq, bt, a0[p], q0[p], xo[p], yo[p]);
        }
        __syncthreads();                           // the previous step's readers are done
        for (int i0 = tid; i0 < 64 * R; i0 += U * nt) {
            uint4 v[NT][U];                         // all loads issued before the shared stores
#pragma unroll
            for (int p = 0; p < NT; p++)
#pragma unroll
                for (int u = 0; u < U; u++) {
                    int i = i0 + u * nt, k = i / R, c = i % R;
                    I a = a0[p] + k, q = q0[p] + V * c;   // V | nQ: q < nQ => q + V - 1 < nQ
                    if (i < 64 * R && a < nA && q < nQ) v[p][u] = *reinterpret_cast<const uint4*>(x + xo[p] + a * xsA + q);
                }
#pragma unroll
            for (int p = 0; p < NT; p++)
#pragma unroll
                for (int u = 0; u < U; u++) {
                    int i = i0 + u * nt, k = i / R, c = i % R;
                    if (i < 64 * R && a0[p] + k < nA && q0[p] + V * c < nQ) Vec16<W>::put(v[p][u], &tile[p][k][V * c]);
                }
        }
        __syncthreads();
#pragma unroll
        for (int p = 0; p < NT; p++)
            for (int i = tid; i < 64 * R; i += nt) {
                int k = i / R, c = i % R;
                I q = q0[p] + k, a = a0[p] + V * c;   // V | nA: a < nA => a + V - 1 < nA
                if (a < nA && q < nQ) *reinterpret_cast<uint4*>(y + yo[p] + q * ysQ + a) = Vec16<W>::get(tile[p], V * c, k);
            }
    }
}
TILED_KERNELS(permute_tiled16)

// ---- strided block copy: narrow and concat ----------------------------------------------------
// rows x cols words: y[r * ypitch + yoff + c] = x[r * xpitch + xoff + c]
template <typename W, typename I>
__device__ __forceinline__ void copy2d_k(const W* x, W* y, I rows, I cols, I xpitch, I xoff, I ypitch, I yoff) {
    for (I r = (I)blockIdx.y * blockDim.y + threadIdx.y; r < rows; r += (I)blockDim.y * gridDim.y)
        for (I c = (I)blockIdx.x * blockDim.x + threadIdx.x; c < cols; c += (I)blockDim.x * gridDim.x)
            y[r * ypitch + yoff + c] = x[r * xpitch + xoff + c];
}

// ---- index_select -----------------------------------------------------------------------------
// x: (outer, dim, inner), ids: (n) -> y: (outer, n, inner), in words. Row r = o * n + j of y is
// row o * dim + ids[j] of x; an id >= dim (refused before the call) gives a zero row, never a
// read out of bounds.
template <typename W, typename I>
__device__ __forceinline__ void gather_k(const W* x, const u32* ids, W* y, I outer, I n, I dim, I inner) {
    for (I r = (I)blockIdx.y * blockDim.y + threadIdx.y; r < outer * n; r += (I)blockDim.y * gridDim.y) {
        I o = r / n, j = r - o * n, id = ids[j];
        for (I c = (I)blockIdx.x * blockDim.x + threadIdx.x; c < inner; c += (I)blockDim.x * gridDim.x) {
            W w;
            if (id < dim) w = x[(o * dim + id) * inner + c]; else set_zero(w);
            y[r * inner + c] = w;
        }
    }
}

#define MOVE_KERNELS(W, WS, I, IS)                                                                    \
extern "C" __global__ void permute_##WS##_##IS(const W* x, W* y, I n, Perm p) { permute_k(x, y, n, p); } \
extern "C" __global__ void copy2d_##WS##_##IS(const W* x, W* y, I rows, I cols, I xpitch, I xoff, I ypitch, I yoff) { \
    copy2d_k(x, y, rows, cols, xpitch, xoff, ypitch, yoff);                                         \
}                                                                                                     \
extern "C" __global__ void gather_##WS##_##IS(const W* x, const u32* ids, W* y, I outer, I n, I dim, I inner) { \
    gather_k(x, ids, y, outer, n, dim, inner);                                                      \
}
MOVE_KERNELS(u16, w2, u32, i32)
MOVE_KERNELS(u32, w4, u32, i32)
MOVE_KERNELS(uint2, w8, u32, i32)
MOVE_KERNELS(uint4, w16, u32, i32)
MOVE_KERNELS(u16, w2, u64, i64)
MOVE_KERNELS(u32, w4, u64, i64)
MOVE_KERNELS(uint2, w8, u64, i64)
MOVE_KERNELS(uint4, w16, u64, i64)

// ---- index_add: deterministic bucketing of ids ------------------------------------------------
// index_add sums, for each target row v, the dy rows j with ids[j] == v, in increasing j (the
// CPU's order), with no float atomics. Four small passes turn ids into a CSR list of the js of
// each v, sorted by j:
//   1. bucket_count: counts[v] = #{j : ids[j] == v}           (integer atomics: exact)
//   2. bucket_scan:  counts -> exclusive offsets (dim + 1), cursor = offsets   (in pieces of 1024)
//   3. bucket_place: tmp[atomicAdd(cursor[v], 1)] = j         (a bucket's order is arbitrary here)
//   4. bucket_order: order[offsets[v] + #{k in bucket v : tmp[k] < j}] = j   (sorted: js are unique)
// Pass 4 costs the sum of squared bucket sizes (N^2 if every id is the same, tiny for real text).
// Ids >= dim are left out of every bucket.

extern "C" __global__ void bucket_count(const u32* ids, u32 n, u32 dim, u32* counts) {
    for (u32 j = blockIdx.x * blockDim.x + threadIdx.x; j < n; j += blockDim.x * gridDim.x)
        if (ids[j] < dim) atomicAdd(&counts[ids[j]], 1u);
}

// Exclusive scan of the piece a[base, base + blockDim.x) (entries >= n read as 0), plus carry,
// written back to a (and to copy when not null); returns the piece's total to every thread.
// blockDim.x a multiple of 32, <= 1024: a warp-shuffle inclusive scan per warp, one warp scans the
// warp totals, three barriers. wsum: 32 u32 of shared memory.
__device__ u32 scan_piece(u32* a, u32* copy, u32 base, u32 n, u32 carry, u32* wsum) {
    const u32 tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, nw = blockDim.x >> 5;
    const u32 v = base + tid;
    const u32 c = v < n ? a[v] : 0u;
    u32 x = c;                                   // inclusive scan within the warp
    for (u32 off = 1; off < 32; off <<= 1) {
        u32 y = __shfl_up_sync(0xffffffffu, x, off);
        if (lane >= off) x += y;
    }
    if (lane == 31) wsum[warp] = x;
    __syncthreads();
    if (warp == 0) {                             // inclusive scan of the warp totals
        u32 w = lane < nw ? wsum[lane] : 0u;
        for (u32 off = 1; off < 32; off <<= 1) {
            u32 y = __shfl_up_sync(0xffffffffu, w, off);
            if (lane >= off) w += y;
        }
        if (lane < nw) wsum[lane] = w;
    }
    __syncthreads();
    const u32 excl = carry + (warp > 0 ? wsum[warp - 1] : 0u) + x - c;
    if (v < n) {
        a[v] = excl;
        if (copy) copy[v] = excl;
    }
    const u32 total = wsum[nw - 1];
    __syncthreads();                             // wsum is rewritten by the next piece
    return total;
}

// counts (n + 1) -> exclusive offsets, offsets[n] = total, cursor (when not null) = offsets: one
// block walks the pieces in order, carrying the running total. Used alone when n fits one piece,
// and on the piece totals of the three-launch scan below.
extern "C" __global__ void bucket_scan(u32* counts, u32* cursor, u32 n) {
    __shared__ u32 wsum[32];
    u32 carry = 0;                               // the same in every thread
    for (u32 base = 0; base < n; base += blockDim.x) carry += scan_piece(counts, cursor, base, n, carry, wsum);
    if (threadIdx.x == 0) counts[n] = carry;
}
// The scan of a long counts array over the whole GPU (V = 128256: 126 pieces at once, where one
// block walking them in order took ~0.2 ms): (1) every block scans its piece, part[b] = its total;
// (2) bucket_scan on part (one block, few pieces); (3) every piece adds its part offset.
extern "C" __global__ void bucket_scan_local(u32* counts, u32 dim, u32* part) {
    __shared__ u32 wsum[32];
    const u32 total = scan_piece(counts, (u32*)0, blockIdx.x * blockDim.x, dim, 0u, wsum);
    if (threadIdx.x == 0) part[blockIdx.x] = total;
}
extern "C" __global__ void bucket_scan_add(u32* counts, u32* cursor, u32 dim, const u32* part) {
    const u32 v = blockIdx.x * blockDim.x + threadIdx.x;
    if (v < dim) {
        const u32 o = counts[v] + part[blockIdx.x];
        counts[v] = o;
        cursor[v] = o;
    }
    if (v == 0) counts[dim] = part[gridDim.x];
}

extern "C" __global__ void bucket_place(const u32* ids, u32 n, u32 dim, u32* cursor, u32* tmp) {
    for (u32 j = blockIdx.x * blockDim.x + threadIdx.x; j < n; j += blockDim.x * gridDim.x) {
        u32 v = ids[j];
        if (v < dim) tmp[atomicAdd(&cursor[v], 1u)] = j;
    }
}

extern "C" __global__ void bucket_order(const u32* ids, u32 n, u32 dim, const u32* offsets, const u32* tmp, u32* order) {
    for (u32 j = blockIdx.x * blockDim.x + threadIdx.x; j < n; j += blockDim.x * gridDim.x) {
        u32 v = ids[j];
        if (v >= dim) continue;
        u32 s = offsets[v], e = offsets[v + 1], rank = 0;
        for (u32 k = s; k < e; k++) rank += tmp[k] < j;
        order[s + rank] = j;
    }
}

// ---- index_add: the sums ----------------------------------------------------------------------
// dy: (outer, n, inner) -> dx: (outer, dim, inner); dx row r = o * dim + v is the sum, in
// bucket order (increasing j), of dy rows o * n + j, f32 accumulation; an empty bucket writes
// zeros. VEC consecutive columns per thread (VEC = 4 needs inner % 4 == 0; index_add_bf16_v8
// below is the same loop with 8 bf16 columns per thread).
struct F4 { float v[4]; };
__device__ __forceinline__ void add4(F4& a, const float* p, long i) {
    float4 t = *reinterpret_cast<const float4*>(p + i);
    a.v[0] += t.x; a.v[1] += t.y; a.v[2] += t.z; a.v[3] += t.w;
}
__device__ __forceinline__ void add4(F4& a, const bf16* p, long i) {
    uint2 t = *reinterpret_cast<const uint2*>(p + i);
    a.v[0] += __uint_as_float(t.x << 16); a.v[1] += __uint_as_float(t.x & 0xffff0000u);
    a.v[2] += __uint_as_float(t.y << 16); a.v[3] += __uint_as_float(t.y & 0xffff0000u);
}
__device__ __forceinline__ void put4(float* p, long i, const F4& a) {
    *reinterpret_cast<float4*>(p + i) = make_float4(a.v[0], a.v[1], a.v[2], a.v[3]);
}
__device__ __forceinline__ void put4(bf16* p, long i, const F4& a) {
    *reinterpret_cast<uint2*>(p + i) = make_uint2(pack_bf16(a.v[0], a.v[1]), pack_bf16(a.v[2], a.v[3]));
}

// bf16 rows, 8 columns (16 bytes) per thread: VEC = 8 needs inner % 8 == 0.
struct F8 { float v[8]; };
__device__ __forceinline__ void add8(F8& a, const bf16* p, long i) {
    uint4 t = *reinterpret_cast<const uint4*>(p + i);
    a.v[0] += __uint_as_float(t.x << 16); a.v[1] += __uint_as_float(t.x & 0xffff0000u);
    a.v[2] += __uint_as_float(t.y << 16); a.v[3] += __uint_as_float(t.y & 0xffff0000u);
    a.v[4] += __uint_as_float(t.z << 16); a.v[5] += __uint_as_float(t.z & 0xffff0000u);
    a.v[6] += __uint_as_float(t.w << 16); a.v[7] += __uint_as_float(t.w & 0xffff0000u);
}
__device__ __forceinline__ void put8(bf16* p, long i, const F8& a) {
    *reinterpret_cast<uint4*>(p + i) = make_uint4(pack_bf16(a.v[0], a.v[1]), pack_bf16(a.v[2], a.v[3]),
                                                  pack_bf16(a.v[4], a.v[5]), pack_bf16(a.v[6], a.v[7]));
}
extern "C" __global__ void index_add_bf16_v8(const bf16* dy, const u32* order, const u32* offsets, bf16* dx,
                                             long outer, long n, long dim, long inner) {
    long cols = inner / 8;
    for (long r = (long)blockIdx.y * blockDim.y + threadIdx.y; r < outer * dim; r += (long)blockDim.y * gridDim.y) {
        long o = r / dim, v = r - o * dim;
        u32 s = offsets[v], e = offsets[v + 1];
        const bf16* src = dy + o * n * inner;
        for (long c = (long)blockIdx.x * blockDim.x + threadIdx.x; c < cols; c += (long)blockDim.x * gridDim.x) {
            F8 a = {{0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f}};
            for (u32 k = s; k < e; k++) add8(a, src, (long)order[k] * inner + 8 * c);
            put8(dx, r * inner + 8 * c, a);
        }
    }
}

template <typename T, int VEC>
__device__ __forceinline__ void index_add_k(const T* dy, const u32* order, const u32* offsets, T* dx,
                                            long outer, long n, long dim, long inner) {
    long cols = inner / VEC;
    for (long r = (long)blockIdx.y * blockDim.y + threadIdx.y; r < outer * dim; r += (long)blockDim.y * gridDim.y) {
        long o = r / dim, v = r - o * dim;
        u32 s = offsets[v], e = offsets[v + 1];
        const T* src = dy + o * n * inner;
        for (long c = (long)blockIdx.x * blockDim.x + threadIdx.x; c < cols; c += (long)blockDim.x * gridDim.x) {
            if (VEC == 4) {
                F4 a = {{0.f, 0.f, 0.f, 0.f}};
                for (u32 k = s; k < e; k++) add4(a, src, (long)order[k] * inner + 4 * c);
                put4(dx, r * inner + 4 * c, a);
            } else {
                float a = 0.f;
                for (u32 k = s; k < e; k++) a += load(src, (long)order[k] * inner + c);
                store(dx, r * inner + c, a);
            }
        }
    }
}

#define INDEX_ADD(T, S)                                                                               \
extern "C" __global__ void index_add_##S##_v1(const T* dy, const u32* order, const u32* offsets, T* dx, \
                                              long outer, long n, long dim, long inner) {             \
    index_add_k<T, 1>(dy, order, offsets, dx, outer, n, dim, inner);                                  \
}                                                                                                     \
extern "C" __global__ void index_add_##S##_v4(const T* dy, const u32* order, const u32* offsets, T* dx, \
                                              long outer, long n, long dim, long inner) {             \
    index_add_k<T, 4>(dy, order, offsets, dx, outer, n, dim, inner);                                  \
}
INDEX_ADD(float, f32)
INDEX_ADD(bf16, bf16)
