// im2col.cu: unfold receptive fields (im2col) and fold feedback back onto the input
// (col2im) for channels-last images; the reference is brainprop_np/kernels/cpu.py.
//
//   x     (N, H, W, C), C-contiguous.
//   cols  (R, K) with R = N·Ho·Wo rows r = (n·Ho + oy)·Wo + ox   (convolution), or
//         (Ho·Wo, N, K) rows r = (oy·Wo + ox)·N + n  ("positions first": the per-position
//         batched GEMM of the locally-connected layer);
//         K = kh·kw·C columns q = (dy·kw + dx)·C + c (Keras's kernel order), holding
//         x[n, stride·oy + dy − top, stride·ox + dx − left, c], 0 in the padding.
//
// Every array holds fewer than 2^31 elements (kernels/gpu.py checks), so int indices do.
// Self-contained (no #include): compiles with nvcc and with NVRTC (cupy.RawModule).

namespace bp_im2col {

// The output position (n, oy, ox) of one cols row, walked row after row in the order
// of the cols layout, so that a thread pays the divisions once per run of rows.
struct RowCursor {
    int n, oy, ox;

    __device__ __forceinline__ void start(int r, int N, int Ho, int Wo, int positions_first) {
        int p;
        if (positions_first) { p = r / N; n = r - p * N; }
        else { n = r / (Ho * Wo); p = r - n * (Ho * Wo); }
        oy = p / Wo;
        ox = p - oy * Wo;
    }

    __device__ __forceinline__ void next(int N, int Ho, int Wo, int positions_first) {
        if (positions_first) {
            if (++n == N) { n = 0; if (++ox == Wo) { ox = 0; ++oy; } }
        } else {
            if (++ox == Wo) { ox = 0; if (++oy == Ho) { oy = 0; ++n; } }
        }
    }
};

// Thread (tx, ty) of block (bx, by): column q = bx·blockDim.x + tx of cols, for the
// `rows` consecutive rows starting at (by·blockDim.y + ty)·rows (grid-stride over such
// runs). The lanes of a warp take consecutive q, i.e. consecutive channels of one input
// pixel: reads and writes are coalesced. A pure copy, bit-identical to the reference.
template <typename T>
__device__ __forceinline__ void im2col(const T* __restrict__ x, T* __restrict__ cols,
                                       int N, int H, int W, int C, int kh, int kw,
                                       int stride, int top, int left, int Ho, int Wo,
                                       int positions_first, int rows) {
    const int K = kh * kw * C;
    const int q = blockIdx.x * blockDim.x + threadIdx.x;
    if (q >= K) return;
    const int c = q % C, tap = q / C;
    const int dy = tap / kw, dx = tap - (tap / kw) * kw;
    const int R = N * Ho * Wo;
    const int n_runs = (R + rows - 1) / rows;
    for (int run = blockIdx.y * blockDim.y + threadIdx.y; run < n_runs;
         run += gridDim.y * blockDim.y) {
        int r = run * rows;
        const int r_end = (R - r < rows) ? R : r + rows;
        RowCursor at;
        at.start(r, N, Ho, Wo, positions_first);
        for (; r < r_end; ++r) {
            const int iy = at.oy * stride + dy - top;
            const int ix = at.ox * stride + dx - left;
            T v = T(0);
            if (iy >= 0 && iy < H && ix >= 0 && ix < W)
                v = x[((at.n * H + iy) * W + ix) * C + c];
            cols[r * K + q] = v;
            at.next(N, Ho, Wo, positions_first);
        }
    }
}

// The adjoint of im2col, as a gather. Thread (tx, ty): channel c = bx·blockDim.x + tx of
// the input feedback, for the `rows` consecutive input pixels p = (n·H + iy)·W + ix
// starting at (by·blockDim.y + ty)·rows. Each input unit sums the cols entries it was
// copied to, in (dy, dx) order — the order of the reference's loop — so there are no
// atomics and the result is deterministic (and equal to the reference bit for bit).
// Only the taps dy ≡ iy + top (mod stride) reach an output row: oy = (iy + top − dy)/stride.
template <typename T>
__device__ __forceinline__ void col2im(const T* __restrict__ dcols, T* __restrict__ out,
                                       int N, int H, int W, int C, int kh, int kw,
                                       int stride, int top, int left, int Ho, int Wo,
                                       int positions_first, int rows) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    const int K = kh * kw * C;
    const int P = N * H * W;
    const int n_runs = (P + rows - 1) / rows;
    for (int run = blockIdx.y * blockDim.y + threadIdx.y; run < n_runs;
         run += gridDim.y * blockDim.y) {
        int p = run * rows;
        const int p_end = (P - p < rows) ? P : p + rows;
        int n = p / (H * W);
        int iy = (p - n * (H * W)) / W;
        int ix = p - n * (H * W) - iy * W;
        for (; p < p_end; ++p) {
            const int ty = iy + top, tx = ix + left;     // coordinates in the padded input
            T acc = T(0);
            int dy = ty % stride, oy = ty / stride;      // first tap, and its output row
            for (; dy < kh && oy >= 0; dy += stride, --oy) {
                if (oy >= Ho) continue;
                int dx = tx % stride, ox = tx / stride;
                for (; dx < kw && ox >= 0; dx += stride, --ox) {
                    if (ox >= Wo) continue;
                    const int r = positions_first ? (oy * Wo + ox) * N + n : (n * Ho + oy) * Wo + ox;
                    acc += dcols[r * K + (dy * kw + dx) * C + c];
                }
            }
            out[p * C + c] = acc;
            if (++ix == W) { ix = 0; if (++iy == H) { iy = 0; ++n; } }
        }
    }
}

}  // namespace bp_im2col

// ---- entry points: one per dtype (loaded by name from kernels/gpu.py) ----------------

extern "C" __global__ void im2col_f32(const float* __restrict__ x, float* __restrict__ cols,
                                      int N, int H, int W, int C, int kh, int kw, int stride,
                                      int top, int left, int Ho, int Wo, int positions_first,
                                      int rows) {
    bp_im2col::im2col(x, cols, N, H, W, C, kh, kw, stride, top, left, Ho, Wo, positions_first, rows);
}

extern "C" __global__ void im2col_f64(const double* __restrict__ x, double* __restrict__ cols,
                                      int N, int H, int W, int C, int kh, int kw, int stride,
                                      int top, int left, int Ho, int Wo, int positions_first,
                                      int rows) {
    bp_im2col::im2col(x, cols, N, H, W, C, kh, kw, stride, top, left, Ho, Wo, positions_first, rows);
}

extern "C" __global__ void col2im_f32(const float* __restrict__ dcols, float* __restrict__ out,
                                      int N, int H, int W, int C, int kh, int kw, int stride,
                                      int top, int left, int Ho, int Wo, int positions_first,
                                      int rows) {
    bp_im2col::col2im(dcols, out, N, H, W, C, kh, kw, stride, top, left, Ho, Wo, positions_first, rows);
}

extern "C" __global__ void col2im_f64(const double* __restrict__ dcols, double* __restrict__ out,
                                      int N, int H, int W, int C, int kh, int kw, int stride,
                                      int top, int left, int Ho, int Wo, int positions_first,
                                      int rows) {
    bp_im2col::col2im(dcols, out, N, H, W, C, kh, kw, stride, top, left, Ho, Wo, positions_first, rows);
}
