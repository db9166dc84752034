// dropout.cu: the inverted-dropout mask from uniforms; the reference is
// brainprop_np/kernels/cpu.py (dropout_mask).
//
//   mask = [u >= rate] / (1 − rate), from the uniforms u in [0, 1) that the network's
//   generator drew (so the CPU and the GPU give the same mask from the same u).
// `rate` and `scale` arrive already rounded to the array's dtype, as numpy rounds them.
//
// Every array holds fewer than 2^31 elements (kernels/gpu.py checks).
// Self-contained (no #include): compiles with nvcc and with NVRTC (cupy.RawModule).

namespace bp_dropout {

__device__ __forceinline__ float mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double mul_rn(double a, double b) { return __dmul_rn(a, b); }

// Each thread: element e (grid-stride): mask[e] = scale if u[e] >= rate else 0.
template <typename T>
__device__ __forceinline__ void mask(const T* __restrict__ u, T* __restrict__ out, T rate, T scale,
                                     int total) {
    for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x; e < total;
         e += (long long)gridDim.x * blockDim.x)
        out[e] = (u[e] >= rate) ? scale : T(0);
}

// Each thread: element e (grid-stride): the mask as above, and y[e] = x[e]·mask[e] (one
// product: the reference's bits) — the layer's forward pass in one launch instead of two.
template <typename T>
__device__ __forceinline__ void forward(const T* __restrict__ x, const T* __restrict__ u, T* __restrict__ y,
                                        T* __restrict__ out, T rate, T scale, int total) {
    for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x; e < total;
         e += (long long)gridDim.x * blockDim.x) {
        const T m = (u[e] >= rate) ? scale : T(0);
        out[e] = m;
        y[e] = mul_rn(x[e], m);
    }
}

}  // namespace bp_dropout

// ---- entry points: one per dtype (loaded by name from kernels/gpu.py) ----------------

extern "C" __global__ void dropout_mask_f32(const float* __restrict__ u, float* __restrict__ out,
                                            float rate, float scale, int total) {
    bp_dropout::mask(u, out, rate, scale, total);
}

extern "C" __global__ void dropout_mask_f64(const double* __restrict__ u, double* __restrict__ out,
                                            double rate, double scale, int total) {
    bp_dropout::mask(u, out, rate, scale, total);
}

extern "C" __global__ void dropout_forward_f32(const float* __restrict__ x, const float* __restrict__ u,
                                               float* __restrict__ y, float* __restrict__ mask,
                                               float rate, float scale, int total) {
    bp_dropout::forward(x, u, y, mask, rate, scale, total);
}

extern "C" __global__ void dropout_forward_f64(const double* __restrict__ x, const double* __restrict__ u,
                                               double* __restrict__ y, double* __restrict__ mask,
                                               double rate, double scale, int total) {
    bp_dropout::forward(x, u, y, mask, rate, scale, total);
}
