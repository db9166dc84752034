// dropout.cu: the inverted-dropout mask; the reference is brainprop_np/kernels/cpu.py
// (dropout_mask, dropout_forward).
//
//   mask = [u >= rate] / (1 − rate), u in [0, 1): dropout_mask from given uniforms;
//   dropout_forward draws u itself, element e's from the counter-based generator
//   (philox.cuh: key (k0, k1) = (seed, DROPOUT·2^16 + layer), counter (e, trial step)),
//   so no uniform array is made and the CPU and every GPU give the same mask.
// `rate` and `scale` arrive already rounded to the array's dtype, as numpy rounds them.
//
// Every array holds fewer than 2^31 elements (kernels/gpu.py checks).
// Includes only philox.cuh (pasted in by kernels/cuda_module.py for NVRTC).

#include "philox.cuh"

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

// Each thread: element e (grid-stride): u = element e's uniform at `step`, the mask as
// above, and y[e] = x[e]·mask[e] (one product: the reference's bits) — the layer's forward
// pass, its random numbers included, in one launch.
template <typename T>
__device__ __forceinline__ void forward(const T* __restrict__ x, T* __restrict__ y, T* __restrict__ out,
                                        T rate, T scale, unsigned int k0, unsigned int k1,
                                        unsigned long long step, int total) {
    for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x; e < total;
         e += (long long)gridDim.x * blockDim.x) {
        const bp_philox::Words r = bp_philox::block(e, step, k0, k1);
        const T m = (bp_philox::uniform<T>(r.w[0], r.w[1]) >= rate) ? scale : T(0);
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

extern "C" __global__ void dropout_forward_f32(const float* __restrict__ x, float* __restrict__ y,
                                               float* __restrict__ mask, float rate, float scale,
                                               unsigned int k0, unsigned int k1, unsigned long long step,
                                               int total) {
    bp_dropout::forward(x, y, mask, rate, scale, k0, k1, step, total);
}

extern "C" __global__ void dropout_forward_f64(const double* __restrict__ x, double* __restrict__ y,
                                               double* __restrict__ mask, double rate, double scale,
                                               unsigned int k0, unsigned int k1, unsigned long long step,
                                               int total) {
    bp_dropout::forward(x, y, mask, rate, scale, k0, k1, step, total);
}
