// maxpool.cu: non-overlapping max-pooling (Keras 'valid', stride = pool) with the
// winner's index, and the feedback that goes only to the winner; the reference is
// brainprop_np/kernels/cpu.py (maxpool_forward, maxpool_feedback).
//
//   x    (N, H, W, C); y, arg (N, Ho, Wo, C) with Ho = H / pool, Wo = W / pool;
//   arg  int8 index dy·pool + dx of the winner inside its window (first maximum on ties).
//
// Every array holds fewer than 2^31 elements (kernels/gpu.py checks).
// Self-contained (no #include): compiles with nvcc and with NVRTC (cupy.RawModule).

namespace bp_maxpool {

// Each thread: one output unit e = ((n·Ho + i)·Wo + j)·C + c (grid-stride). It scans its
// pool×pool window in row-major order and keeps the first maximum (strict >), which is
// numpy's argmax and TensorFlow's choice on ties.
template <typename T>
__device__ __forceinline__ void forward(const T* __restrict__ x, T* __restrict__ y,
                                        signed char* __restrict__ arg, int H, int W, int C,
                                        int pool, int Ho, int Wo, int total) {
    for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x; e < total;
         e += (long long)gridDim.x * blockDim.x) {
        const int i_e = (int)e;
        const int c = i_e % C;
        int rest = i_e / C;
        const int j = rest % Wo;
        rest /= Wo;
        const int i = rest % Ho;
        const int n = rest / Ho;
        const T* win = x + ((n * H + i * pool) * W + j * pool) * C + c;
        T best = win[0];
        int best_k = 0;
        for (int dy = 0; dy < pool; ++dy) {
            for (int dx = 0; dx < pool; ++dx) {
                const T v = win[(dy * W + dx) * C];
                // v != v: a NaN wins over numbers, as with numpy's argmax
                if (v > best || (v != v && best == best)) { best = v; best_k = dy * pool + dx; }
            }
        }
        y[i_e] = best;
        arg[i_e] = (signed char)best_k;
    }
}

// Each thread: one input unit e = ((n·H + h)·W + w)·C + c (grid-stride). It takes the
// feedback of its window's output unit if it was that window's winner, else 0 (rows and
// columns beyond the last whole window get 0). A gather: no atomics, no zero-fill pass.
template <typename T>
__device__ __forceinline__ void feedback(const T* __restrict__ fb,
                                         const signed char* __restrict__ arg,
                                         T* __restrict__ out, int H, int W, int C, int pool,
                                         int Ho, int Wo, int total) {
    for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x; e < total;
         e += (long long)gridDim.x * blockDim.x) {
        const int i_e = (int)e;
        const int c = i_e % C;
        int rest = i_e / C;
        const int w = rest % W;
        rest /= W;
        const int h = rest % H;
        const int n = rest / H;
        const int i = h / pool, j = w / pool;
        T v = T(0);
        if (i < Ho && j < Wo) {
            const int o = ((n * Ho + i) * Wo + j) * C + c;
            if ((int)arg[o] == (h - i * pool) * pool + (w - j * pool)) v = fb[o];
        }
        out[i_e] = v;
    }
}

}  // namespace bp_maxpool

// ---- entry points: one per dtype (loaded by name from kernels/gpu.py) ----------------

extern "C" __global__ void maxpool_forward_f32(const float* __restrict__ x, float* __restrict__ y,
                                               signed char* __restrict__ arg, int H, int W, int C,
                                               int pool, int Ho, int Wo, int total) {
    bp_maxpool::forward(x, y, arg, H, W, C, pool, Ho, Wo, total);
}

extern "C" __global__ void maxpool_forward_f64(const double* __restrict__ x, double* __restrict__ y,
                                               signed char* __restrict__ arg, int H, int W, int C,
                                               int pool, int Ho, int Wo, int total) {
    bp_maxpool::forward(x, y, arg, H, W, C, pool, Ho, Wo, total);
}

extern "C" __global__ void maxpool_feedback_f32(const float* __restrict__ fb,
                                                const signed char* __restrict__ arg,
                                                float* __restrict__ out, int H, int W, int C,
                                                int pool, int Ho, int Wo, int total) {
    bp_maxpool::feedback(fb, arg, out, H, W, C, pool, Ho, Wo, total);
}

extern "C" __global__ void maxpool_feedback_f64(const double* __restrict__ fb,
                                                const signed char* __restrict__ arg,
                                                double* __restrict__ out, int H, int W, int C,
                                                int pool, int Ho, int Wo, int total) {
    bp_maxpool::feedback(fb, arg, out, H, W, C, pool, Ho, Wo, total);
}
