// kernels/lora_stream.cuh: lora_mma's streaming twin (included by kernels/lora.cu, whose header
// states the contract): C (m x n) = alpha A1 B1 over one pair, every operand read with 16-byte
// cp.async in its own layout. AT: A1 (m x k) is m-contiguous (else k-contiguous); BT: B1 (k x n)
// is k-contiguous (else n-contiguous). The contiguous dimension, the other stride and k are
// multiples of 8 (every 16-byte piece wholly inside or outside the operand, and aligned).
// Split-K as lora_mma (gridDim.z splits of kchunk, a multiple of 32).
//
// Why: a thin product (a decode step's 16 rows x 4096 x 4096, LoRA's x A, dY B^T, X^T g, t^T dY)
// is bound by the bytes in flight. lora_mma keeps one k-tile a block in registers and takes
// row-contiguous operands through a transposing put; here both go global -> shared as they lie,
// LS_ST stages deep (LS_ST - 1 k-tiles in flight a block), and the tensor cores read the
// transposed ones with ldmatrix.trans. Tiles: k-contiguous [64 rows][LM_LD] (lora_mma's layout),
// row-contiguous [32 k][LS_LDN]; 128 threads as 2 x 2 warps of 32 x 32 outputs (lm_mac's layout).

#define LS_ST 4
#define LS_LDN 72   // B tile row pitch (bf16): 144 bytes, ldmatrix rows on distinct banks

#define LS_TILE (64 * LM_LD)   // bf16 of one operand's stage: [64][LM_LD] >= [32][LS_LDN]

// One operand's k-tile (64 rows x 32 k) into tile: ROWC (row-contiguous: element (row, k) at
// p[k * ks + row]) as [32 k][LS_LDN], else (k-contiguous: p[row * rs + k]) as [64 row][LM_LD].
template <bool ROWC>
__device__ __forceinline__ void ls_load(unsigned short* tile, const bf16* __restrict__ p, long st, int row0, int rows,
                                        int k0, int kend, int tid) {
#pragma unroll
    for (int l = 0; l < 2; ++l) {
        const int e = tid + 128 * l;
        const int r = ROWC ? row0 + 8 * (e % 8) : row0 + e / 4, k = ROWC ? k0 + e / 8 : k0 + 8 * (e % 4);
        const bool ok = r < rows && k < kend;
        unsigned short* dst = ROWC ? tile + (e / 8) * LS_LDN + 8 * (e % 8) : tile + (e / 4) * LM_LD + 8 * (e % 4);
        cp_async16(dst, ok ? p + (ROWC ? (long)k * st + r : (long)r * st + k) : p, ok);
    }
}

template <bool AT, bool BT, typename TC>
__device__ void lora_stream_body(const bf16* __restrict__ a1, long a1s, const bf16* __restrict__ b1, long b1s, int k1,
                                 TC* __restrict__ c, int m, int n, float alpha, int kchunk) {
    __shared__ __align__(16) unsigned short As[LS_ST][LS_TILE];
    __shared__ __align__(16) unsigned short Bs[LS_ST][LS_TILE];
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int wm = warp >> 1, wn = warp & 1, g = lane >> 2, t = lane & 3;
    const int row0 = blockIdx.y * 64, col0 = blockIdx.x * 64;
    const int kbeg = blockIdx.z * kchunk, kend = min(k1, kbeg + kchunk);
    const int tiles = kend > kbeg ? (kend - kbeg + LM_BK - 1) / LM_BK : 0;
    // k-tile kt into stage s; B is the (n x k) operand B1^T, row-contiguous unless BT.
    auto load = [&](int kt, int s) {
        const int k0 = kbeg + kt * LM_BK;
        ls_load<AT>(As[s], a1, a1s, row0, m, k0, kend, tid);
        ls_load<!BT>(Bs[s], b1, b1s, col0, n, k0, kend, tid);
    };
    float acc[2][4][4];
    lm_zero(acc);

#pragma unroll
    for (int s = 0; s < LS_ST - 1; ++s) {
        if (s < tiles) load(s, s);
        cp_async_commit();                          // always: the group count stays in step
    }
    for (int kt = 0; kt < tiles; ++kt) {
        cp_async_wait<LS_ST - 2>();                 // this thread's copies of tile kt have landed...
        __syncthreads();                            // ...and everyone's; tile kt - 1's stage is free
        if (kt + LS_ST - 1 < tiles) load(kt + LS_ST - 1, (kt + LS_ST - 1) % LS_ST);
        cp_async_commit();
        const unsigned short* A = As[kt % LS_ST];
        const unsigned short* B = Bs[kt % LS_ST];
#pragma unroll
        for (int ks = 0; ks < LM_BK; ks += 16) {
            u32 af[2][4], bfr[4][2];
#pragma unroll
            for (int mi = 0; mi < 2; ++mi) {
                const int r = wm * 32 + mi * 16;
                if (AT) {
                    // matrices 0..3 = (rows 0-7, k 0-7), (rows 8-15, k 0-7), (rows 0-7, k 8-15), (rows 8-15, k 8-15)
                    ldmatrix_x4_trans(af[mi], A + (ks + (lane & 7) + (lane >> 4) * 8) * LS_LDN + r + ((lane >> 3) & 1) * 8);
                } else {
                    af[mi][0] = *(const u32*)&A[(r + g) * LM_LD + ks + 2 * t];
                    af[mi][1] = *(const u32*)&A[(r + g + 8) * LM_LD + ks + 2 * t];
                    af[mi][2] = *(const u32*)&A[(r + g) * LM_LD + ks + 2 * t + 8];
                    af[mi][3] = *(const u32*)&A[(r + g + 8) * LM_LD + ks + 2 * t + 8];
                }
            }
#pragma unroll
            for (int ni = 0; ni < 4; ni += 2) {
                const int nc = wn * 32 + ni * 8;
                if (BT) {
#pragma unroll
                    for (int h = 0; h < 2; ++h) {
                        bfr[ni + h][0] = *(const u32*)&B[(nc + 8 * h + g) * LM_LD + ks + 2 * t];
                        bfr[ni + h][1] = *(const u32*)&B[(nc + 8 * h + g) * LM_LD + ks + 2 * t + 8];
                    }
                } else {
                    // matrices 0..3 = (n 0-7, k 0-7), (n 0-7, k 8-15), (n 8-15, k 0-7), (n 8-15, k 8-15)
                    u32 rr[4];
                    ldmatrix_x4_trans(rr, B + (ks + (lane & 7) + ((lane >> 3) & 1) * 8) * LS_LDN + nc + (lane >> 4) * 8);
                    bfr[ni][0] = rr[0];
                    bfr[ni][1] = rr[1];
                    bfr[ni + 1][0] = rr[2];
                    bfr[ni + 1][1] = rr[3];
                }
            }
#pragma unroll
            for (int mi = 0; mi < 2; ++mi)
#pragma unroll
                for (int ni = 0; ni < 4; ++ni) mma_bf16_16816(acc[mi][ni], af[mi], bfr[ni]);
        }
    }
    cp_async_wait<0>();                             // no copy in flight when the block exits
    lm_store(c, acc, row0, col0, m, n, alpha, wm, wn, g, t);
}
