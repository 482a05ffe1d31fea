// NF4 (4-bit NormalFloat) block quantisation, the CPU reference every NF4 kernel is tested against.
// Plain C++17: no LibTorch, no CUDA. Everything here is a pure function of its arguments or an
// immutable process-wide table, so it is thread-safe. Errors (unsupported block size, non-finite
// input, inconsistent sizes) throw std::invalid_argument with a message naming the argument and the
// fix; kernels/ does not depend on core/, so core/ turns these into core::Error at its boundary.
//
// THE STORAGE CONTRACT. bitsandbytes-compatible: quantize_4bit(quant_type="nf4", blocksize=64,
// compress_statistics=True) on CUDA produces the same packed codes and block absmaxes, and reads
// these buffers the same way. Its double-quantisation codes can differ in rare cases, since its
// offset (a float32 torch mean) and its map (see DynamicSignedMap()) may differ in the last bits.
// GPU kernels in hpsearch must reproduce this reference bit for bit.
//
// Weights: a row-major [out, in] float tensor is read as one flat array w[0 .. numel). It is cut
// into consecutive blocks of kNf4BlockSize = 64 values; block b holds w[64b .. min(64b + 64,
// numel)), so only the last block may be partial. Rows do not restart blocks: a block may span two
// rows.
//
// Block scale: absmax[b] = max |w[i]| over the block, a float (exact).
//
// Codes: each value is scaled by the float reciprocal, s = w[i] * (1.0f / absmax[b]) (one rounding
// for the reciprocal, one for the product: multiply, not divide, like the bitsandbytes kernel) and
// mapped to code c in [0, 16): c = the number of thresholds t[k] with s > t[k] (strictly greater).
// The 15 thresholds (Nf4Thresholds()) sit at the midpoints of neighbouring NF4 code values, so a
// value exactly on a threshold takes the LOWER code. An all-zero block has absmax 0, so s = 0 * inf
// = NaN, which exceeds no threshold: all its codes are 0 (value -1.0), which dequantises to -1.0 *
// 0 = -0.0. Non-finite weights are rejected.
//
// Packing: two codes per byte, the FIRST (even-index) value in the HIGH nibble:
// byte j = (c[2j] << 4) | c[2j + 1]; ceil(numel / 2) bytes. If numel is odd, the low nibble of the
// last byte is padding holding the code of 0.0 in that block (7, or 0 in an all-zero block), as
// bitsandbytes writes it; readers ignore it. A byte never straddles two blocks (64 is even).
//
// Dequantisation: value = Nf4CodeTable()[c] * absmax[b], one float multiply, then converted to the
// output type with round-to-nearest-even (FloatToBf16 for bf16).
//
// Double quantisation (the absmaxes themselves quantised: 0.127 instead of 0.5 bits per weight):
// offset = mean of all absmax[b] (summed in double, rounded once to float; bitsandbytes' torch mean
// may differ in the last bit, but readers only use the stored offset); centred[b] = absmax[b] -
// offset (float). The centred values are cut into consecutive groups of kAbsmaxBlockSize = 256 (the
// last one partial); group g has scale[g] = max |centred| over it (float), and each value gets the
// 8-bit code q[b] = DynamicMapIndex(centred[b] * (1.0f / scale[g])), an index into
// DynamicSignedMap() (256 ascending floats; the nearest entry, ties as bitsandbytes' descent
// resolves them). A group whose centred values are all 0 has scale 0 and NaN products: codes 0, and
// its absmaxes dequantise to exactly the offset. Stored: q (uint8, one per NF4 block), scale
// (float, one per 256 NF4 blocks), offset (one float). Dequantised absmax = map[q[b]] * scale[b /
// 256] + offset: a float multiply, then a float add, each rounded on its own (never fused: GPU code
// uses __fmul_rn / __fadd_rn). The map is a format constant (bitsandbytes'
// create_dynamic_map(signed=True); see DynamicSignedMap() for how its last bits vary), not stored
// per tensor and not counted in memory figures.
//
// Memory: ceil(n / 2) bytes of codes plus 4 bytes per block, or with double quantisation 1 byte per
// block + 4 bytes per 256 blocks + 4 bytes: 4 + 8/64 + 32/(64 * 256) = 4.127 bits per weight for
// large tensors (4.5 without).
//
// Arithmetic is IEEE single precision without contraction (hpsearch builds C++17 in ISO mode, where
// GCC does not fuse a * b + c) and without flush-to-zero; a thread that enabled flush-denormal mode
// can differ from the GPU on absmaxes below 1e-37.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

namespace hpsearch::kernels {

// The only NF4 block size hpsearch supports (bitsandbytes' default for QLoRA).
inline constexpr int kNf4BlockSize = 64;
// Blocks of centred absmaxes sharing one scale in double quantisation.
inline constexpr int kAbsmaxBlockSize = 256;
// The most tensors one batched dequantisation launch takes (DequantizeNf4BatchToBf16 in
// kernels/nf4_dequant.cuh: their descriptors travel in the kernel's parameters). Here, not there,
// so that CPU builds group tensors the same way (core/nf4.h DequantizeWeights).
inline constexpr int kNf4MaxBatch = 8;

// The 16 NF4 code values, ascending, index = 4-bit code: -1, ..., 0 (code 7), ..., 1 (code 15).
// They are the quantiles of a standard normal normalised to [-1, 1] (QLoRA paper); as float32
// constants they are part of the storage format.
const std::array<float, 16>& Nf4CodeTable();

// The 15 decision thresholds, ascending: the midpoint of neighbouring codes, computed in double,
// written as its shortest round-trip decimal and read back as a float literal (how bitsandbytes'
// CUDA decision tree spells them; where the double midpoint is a float tie this differs from
// rounding the double directly).
const std::array<float, 15>& Nf4Thresholds();

// The signed dynamic 8-bit map used for double quantisation, 256 ascending floats: 127 negative
// values, 0.0 at index 127, 127 positive values and 1.0 at index 255. Built as bitsandbytes'
// create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8) builds it in float32, with
// torch.linspace's arithmetic as PyTorch's source writes it (multiply and add rounded separately).
// The map bitsandbytes computes depends on the PyTorch build in the last bits of some entries
// (LibTorch 1.13 here: 44 of 256 entries differ by one or two ulps), so bitsandbytes stores it with
// every quantised weight ("nested_quant_map"). Code importing such weights must use the stored map,
// which is why the CUDA kernel takes the map as an argument. Within hpsearch this table is the map.
const std::array<float, 256>& DynamicSignedMap();

// The 4-bit code of an already scaled value s (normally in [-1, 1]): the number of thresholds s
// exceeds. NaN gives 0.
uint8_t Nf4CodeOf(float scaled);

// The 8-bit index bitsandbytes' blockwise 8-bit quantiser picks for an already scaled value x in an
// ascending 256-entry map: a 7-step descent from index 127 ends at an untested pivot between the
// last entries tested below and above x; x is compared with the float midpoint (a + b) * 0.5f
// between the pivot and that neighbour, and a tie keeps the pivot. This is the nearest entry except
// at such ties. NaN gives 0.
uint8_t DynamicMapIndex(const std::array<float, 256>& map, float scaled);

// float -> bfloat16 bits, round to nearest, ties to even (what CUDA's __float2bfloat16_rn returns);
// NaN becomes the canonical 0x7FFF. bfloat16 bits -> float is exact.
uint16_t FloatToBf16(float value);
float Bf16ToFloat(uint16_t bits);

// Blockwise NF4 codes and per-block absmax of numel floats.
struct Nf4Blocks {
  std::vector<uint8_t> packed;  // ceil(numel / 2) bytes, layout above
  std::vector<float> absmax;    // ceil(numel / block_size) block maxima
};

// REQUIRES: block_size == kNf4BlockSize; numel >= 0; weights points to numel finite floats (may be
// null when numel == 0). Throws std::invalid_argument otherwise.
Nf4Blocks QuantizeNf4(const float* weights, int64_t numel, int block_size);

// Writes numel floats code[c] * absmax[block] to out (DequantizeNf4), or those values rounded to
// bfloat16 bits (DequantizeNf4Bf16).
// REQUIRES: block_size == kNf4BlockSize; packed holds ceil(numel / 2) bytes; absmax holds
// ceil(numel / block_size) floats; out holds numel values.
void DequantizeNf4(const uint8_t* packed, const float* absmax, int64_t numel, int block_size,
                   float* out);
void DequantizeNf4Bf16(const uint8_t* packed, const float* absmax, int64_t numel, int block_size,
                       uint16_t* out);

// The absmaxes of an NF4 tensor, quantised to 8 bits (double quantisation).
struct DoubleQuantizedAbsmax {
  std::vector<uint8_t> codes;  // one index into DynamicSignedMap() per absmax
  std::vector<float> scales;   // ceil(count / kAbsmaxBlockSize) block maxima of |absmax - offset|
  float offset = 0.0f;         // mean of the absmaxes
};

// REQUIRES: count >= 0; absmax points to count finite floats. count == 0 gives empty codes, offset
// 0.
DoubleQuantizedAbsmax DoubleQuantize(const float* absmax, int64_t count);

// Writes count floats code_map[codes[i]] * scales[i / kAbsmaxBlockSize] + offset (two roundings) to
// out. REQUIRES: code_map holds 256 floats (normally DynamicSignedMap().data()); scales holds
// ceil(count / kAbsmaxBlockSize) floats.
void DequantizeAbsmax(const uint8_t* codes, const float* scales, float offset, int64_t count,
                      const float* code_map, float* out);

// A quantised weight: plain data, copyable, owns its buffers.
struct Nf4Tensor {
  std::vector<int64_t> shape;       // the original shape, e.g. {out, in}
  int64_t numel = 0;                // product of shape
  int block_size = kNf4BlockSize;   // values per NF4 block
  std::vector<uint8_t> packed;      // ceil(numel / 2) bytes of 4-bit codes
  bool double_quant = true;         // which absmax representation below is filled
  std::vector<float> absmax;        // !double_quant: one float per block
  DoubleQuantizedAbsmax absmax_dq;  // double_quant: codes, scales and offset

  int64_t num_blocks() const { return (numel + block_size - 1) / block_size; }
  // Bytes of packed codes plus absmax storage (the layout's "Memory" line).
  int64_t StorageBytes() const;
};

// Bytes an NF4 tensor of numel values occupies (see Nf4Tensor::StorageBytes).
int64_t Nf4StorageBytes(int64_t numel, bool double_quant);

// Quantises numel = product(shape) floats.
// REQUIRES: every dimension >= 0; weights holds product(shape) finite floats.
Nf4Tensor QuantizeNf4Tensor(const float* weights, const std::vector<int64_t>& shape,
                            bool double_quant);

// The absmax of every block as dequantisation uses it: stored floats, or the double-quantised ones
// dequantised with DynamicSignedMap().
std::vector<float> EffectiveAbsmax(const Nf4Tensor& tensor);

// Dequantised values, numel of them, in the tensor's flat order.
// REQUIRES: the tensor's buffers have the sizes its numel, block_size and double_quant imply
// (checked).
std::vector<float> DequantizeNf4TensorToFloat(const Nf4Tensor& tensor);
std::vector<uint16_t> DequantizeNf4TensorToBf16(const Nf4Tensor& tensor);

}  // namespace hpsearch::kernels
