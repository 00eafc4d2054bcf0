// kernels/linear_attention_wg_bwd.cuh: the walk of the backward's dK and dV in one fused wgmma
// kernel (included by linear_attention_wg.cu, whose helpers it uses and which holds the entry
// point, linattn_wg_fused_dkdv_bf16; `KILN_LINATTN=wgmma-fused`). Twin: backend/cpu/linear_attention.rs.
//
// With G = sum over later tokens of q^T do (Dk x Dv, f32), walked from the end (rev):
//   dV_s = sum_{t >= s} (k_s . q_t) do_t + k_s G,    dK_s = sum_{t >= s} (v_s . do_t) q_t + v_s G^T,
// i.e. the two reversed forward walks the three-launch backward runs (dV over (k, q, do) with state
// G, dK over (v, do, q) with state G^T), sharing their one state and their loads: q, k, v and do are
// read once, not q and do twice, and G is summed once. Per chunk and warpgroup w (Dv half w of dV,
// Dk half w of dK, G's Dv half w in registers as S_w in the forward):
//   1. A = K Q^T and dV_w = K G_w (8 + 8 m64n64k16), A masked (t >= s) into registers, dV_w += A dO_w (4);
//   2. A = V dO^T and dK_w = V G^T[:, Dk half w] (8 + 8; G^T read K-major from both warpgroups'
//      bf16 copies of G), A masked, dK_w += A Q_w (4), with G_w += Q^T dO_w (8) behind them;
//   3. dV_w, dK_w stored; once both warpgroups are done with the copies, G_w's copy refreshed.
// dV, the final G (dS0) and every sum are bitwise the three-launch walk's; dK's state is summed
// as G rather than G^T (the same products, not promised to round alike).

#define LWB_BUF (4 * LW_TILE)  // Q, K, V, dO of one chunk
// dynamic shared memory: LW_ST * LWB_BUF + 2 * LW_S + 1024 = 225 KiB (WG_BWD_SMEM)

// The dK / dV walk over chunks first, first - 1, .. (count of them) from the state G (this
// thread's part, as lw_at), which it carries on. l2 as lw_body's.
__device__ __forceinline__ void lw_bwd_body(const bf16* __restrict__ qh, const bf16* __restrict__ kh, const bf16* __restrict__ vh,
                                            const bf16* __restrict__ dh, float (&G)[2][32], bf16* __restrict__ dkh,
                                            bf16* __restrict__ dvh, int first, int count, int t_len, unsigned char* smem, int l2) {
    unsigned char* base = smem + ((1024 - (int)((unsigned long long)smem & 1023)) & 1023);
    const int wg = threadIdx.x >> 7;
    unsigned char* Gc = base + LW_ST * LWB_BUF;  // copy c: G[:, 64 c .. 64 c + 63] as [128 dk][64 dv]
    unsigned char* Gw = Gc + wg * LW_S;

    const u64 pol = l2 < 0 ? 0 : l2_policy(l2 == 1);
    auto fetch = [&](int ci, int buf) {  // chunk ci of the walk: Q, K, V, dO rows c0 .. c0 + 63
        const int c0 = (first - ci) * LW_C;
        const bf16* const src[4] = {qh, kh, vh, dh};
        lw_fetch<4>(base + buf * LWB_BUF, src, c0, min(LW_C, t_len - c0), l2 >= 0, pol);
    };
    // (k-step kk of a product over a 128-wide dimension: column block kk / 4, 32 bytes into its rows)
    auto at = [](int kk) { return (kk >> 2) * 8192 + (kk & 3) * 32; };

#pragma unroll
    for (int p = 0; p < LW_ST - 1; p++) {
        if (p < count) fetch(p, p);
        cp_async_commit();
    }
    lw_publish(Gw, G);
    for (int ci = 0; ci < count; ci++) {
        const int buf = ci % LW_ST, c0 = (first - ci) * LW_C, n = min(LW_C, t_len - c0);
        cp_async_wait<LW_ST - 2>();
        fence_proxy_async();
        __syncthreads();  // chunk ci landed for all; both G copies refreshed; chunk ci - 1 done
        if (ci + LW_ST - 1 < count) fetch(ci + LW_ST - 1, (ci + LW_ST - 1) % LW_ST);
        cp_async_commit();
        const unsigned char* Q = base + buf * LWB_BUF;
        const unsigned char* K = Q + LW_TILE;
        const unsigned char* V = K + LW_TILE;
        const unsigned char* D = V + LW_TILE;
        float A[32], O[32];
        u32 af[4][4];

        // ---- 1. dV_w = mask(K Q^T) dO_w + K G_w
        lw_fresh(A, O);
#pragma unroll
        for (int kk = 0; kk < 8; kk++) wgmma_m64n64k16<0, 0>(A, wgmma_desc(K + at(kk), 16, 1024, smem), wgmma_desc(Q + at(kk), 16, 1024, smem), smem);
#pragma unroll
        for (int kk = 0; kk < 8; kk++) wgmma_m64n64k16<0, 1>(O, wgmma_desc(K + at(kk), 16, 1024, smem), wgmma_desc(Gw + kk * 2048, 8192, 1024, smem), smem);
        lw_wait(A, O);
        lw_mask_pack(A, af, 1);
        wgmma_fence();
#pragma unroll
        for (int j = 0; j < 4; j++) wgmma_m64n64k16_rs<1>(O, af[j], wgmma_desc(D + wg * 8192 + j * 2048, 8192, 1024, smem), smem);
        wgmma_commit();
        wgmma_wait<0>();
        wgmma_hold<32>(O);
        lw_store_rows(dvh, O, c0, n);

        // ---- 2. dK_w = mask(V dO^T) Q_w + V G^T[:, Dk half w]; G_w += Q^T dO_w
        lw_fresh(A, O);
#pragma unroll
        for (int kk = 0; kk < 8; kk++) wgmma_m64n64k16<0, 0>(A, wgmma_desc(V + at(kk), 16, 1024, smem), wgmma_desc(D + at(kk), 16, 1024, smem), smem);
        // B = G^T: k = dv along copy kk / 4's rows, n = its rows dk 64 w ..: K-major
#pragma unroll
        for (int kk = 0; kk < 8; kk++)
            wgmma_m64n64k16<0, 0>(O, wgmma_desc(V + at(kk), 16, 1024, smem), wgmma_desc(Gc + (kk >> 2) * LW_S + wg * 8192 + (kk & 3) * 32, 16, 1024, smem), smem);
        lw_wait(A, O);
        lw_mask_pack(A, af, 1);
        wgmma_fence();
#pragma unroll
        for (int j = 0; j < 4; j++) wgmma_m64n64k16_rs<1>(O, af[j], wgmma_desc(Q + wg * 8192 + j * 2048, 8192, 1024, smem), smem);
        // (unconditional, also after the last chunk: see lw_body)
        lw_update_state(G, Q, D, smem);
        wgmma_commit();
        wgmma_wait<0>();
        wgmma_hold<32>(O);
        wgmma_hold<32>(G[0]);
        wgmma_hold<32>(G[1]);
        lw_store_rows(dkh, O, c0, n);

        // ---- 3. the other warpgroup read this one's copy in step 2: both done before it changes
        __syncthreads();
        if (ci + 1 < count) lw_publish(Gw, G);
    }
    cp_async_wait<0>();  // nothing in flight at exit
}
