#include "kernels/nf4_reference.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

namespace hpsearch::kernels {
namespace {

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

void RequireBlockSize(int block_size, const char* function) {
  if (block_size != kNf4BlockSize) {
    throw std::invalid_argument(std::string(function) + ": NF4 block size " +
                                std::to_string(block_size) +
                                " is not supported; hpsearch stores NF4 " + "only in blocks of " +
                                std::to_string(kNf4BlockSize) + " values");
  }
}

void RequireCount(int64_t count, const void* data, const char* function, const char* what) {
  if (count < 0) {
    throw std::invalid_argument(std::string(function) + ": " + what + " count " +
                                std::to_string(count) + " is negative");
  }
  if (count > 0 && data == nullptr) {
    throw std::invalid_argument(std::string(function) + ": " + what + " is null but " +
                                std::to_string(count) + " values were promised");
  }
}

// torch.linspace(start, end, steps) for float32 as PyTorch's CPU kernel spells it: the step is
// computed in float, the first half counts up from start and the second half down from end, each
// value rounded after the multiply and after the add. Real PyTorch builds differ from this in the
// last bit of some values (1.13 vectorised the kernel in chunks of 8, and compilers may fuse the
// multiply-add), which is why the map travels with bitsandbytes' quantisation state; see
// DynamicSignedMap().
std::vector<float> TorchLinspace(float start, float end, int64_t steps) {
  const float step = (end - start) / static_cast<float>(steps - 1);
  const int64_t halfway = steps / 2;
  std::vector<float> values(static_cast<size_t>(steps));
  for (int64_t i = 0; i < steps; ++i) {
    values[i] = i < halfway ? start + step * static_cast<float>(i)
                            : end - step * static_cast<float>(steps - i - 1);
  }
  return values;
}

std::array<float, 256> BuildDynamicSignedMap() {
  // 7 exponent levels 10^-6 .. 10^0; level i splits [0.1, 1] into 2^i intervals and contributes
  // their midpoints, scaled, with both signs: 2 * (2^7 - 1) = 254 values, plus 0 and 1.
  constexpr double kLevelScale[7] = {1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0};
  std::vector<float> values;
  values.reserve(256);
  for (int level = 0; level < 7; ++level) {
    const std::vector<float> bounds = TorchLinspace(0.1f, 1.0f, (int64_t{1} << level) + 1);
    const float scale = static_cast<float>(kLevelScale[level]);
    for (size_t k = 0; k + 1 < bounds.size(); ++k) {
      const float magnitude = scale * ((bounds[k] + bounds[k + 1]) / 2.0f);
      values.push_back(magnitude);
      values.push_back(-magnitude);
    }
  }
  values.push_back(0.0f);
  values.push_back(1.0f);
  std::sort(values.begin(), values.end());
  std::array<float, 256> map{};
  std::copy(values.begin(), values.end(), map.begin());
  return map;
}

// bitsandbytes wrote its NF4 decision thresholds into CUDA source as float literals spelled like
// Python's repr() of the double midpoints (the shortest decimal that reads back as the same
// double). A float literal is rounded from that decimal, not from the double: where the double
// midpoint is exactly halfway between two floats (0.8614784181118011...), the two roundings differ.
// Reproduce the literal's rounding.
float DecimalLiteralToFloat(double value) {
  char text[40];
  for (int digits = 1; digits <= 17; ++digits) {
    std::snprintf(text, sizeof(text), "%.*g", digits, value);
    if (std::strtod(text, nullptr) == value) break;
  }
  return std::strtof(text, nullptr);
}

// The thresholds ascend, so counting those exceeded is a 4-step binary search; NaN exceeds none.
uint8_t CodeAmong(const std::array<float, 15>& t, float scaled) {
  int code = scaled > t[7] ? 8 : 0;
  code += scaled > t[code + 3] ? 4 : 0;
  code += scaled > t[code + 1] ? 2 : 0;
  code += scaled > t[code] ? 1 : 0;
  return static_cast<uint8_t>(code);
}

void CheckFinite(const float* values, int64_t count, const char* function, const char* what) {
  for (int64_t i = 0; i < count; ++i) {
    if (!std::isfinite(values[i])) {
      throw std::invalid_argument(std::string(function) + ": " + what + "[" + std::to_string(i) +
                                  "] is " + std::to_string(values[i]) +
                                  "; NF4 quantisation needs finite values, fix the tensor first");
    }
  }
}

void CheckSize(size_t actual, int64_t expected, const char* what) {
  if (static_cast<int64_t>(actual) != expected) {
    throw std::invalid_argument(std::string("Nf4Tensor: ") + what + " holds " +
                                std::to_string(actual) + " entries but numel and block size need " +
                                std::to_string(expected) +
                                "; the tensor is corrupt or was built by hand");
  }
}

}  // namespace

const std::array<float, 16>& Nf4CodeTable() {
  // Standard normal quantiles normalised to [-1, 1], as the float32 constants every NF4
  // implementation (QLoRA, bitsandbytes) stores; they define the format and cannot be recomputed
  // bit-exactly here.
  static const std::array<float, 16> kTable = {
      -1.0f,
      -0.6961928009986877f,
      -0.5250730514526367f,
      -0.39491748809814453f,
      -0.28444138169288635f,
      -0.18477343022823334f,
      -0.09105003625154495f,
      0.0f,
      0.07958029955625534f,
      0.16093020141124725f,
      0.24611230194568634f,
      0.33791524171829224f,
      0.44070982933044434f,
      0.5626170039176941f,
      0.7229568362236023f,
      1.0f,
  };
  return kTable;
}

const std::array<float, 15>& Nf4Thresholds() {
  static const std::array<float, 15> kThresholds = [] {
    const std::array<float, 16>& code = Nf4CodeTable();
    std::array<float, 15> thresholds{};
    for (size_t k = 0; k < thresholds.size(); ++k) {
      const double midpoint =
          (static_cast<double>(code[k]) + static_cast<double>(code[k + 1])) / 2.0;
      thresholds[k] = DecimalLiteralToFloat(midpoint);
    }
    return thresholds;
  }();
  return kThresholds;
}

const std::array<float, 256>& DynamicSignedMap() {
  static const std::array<float, 256> kMap = BuildDynamicSignedMap();
  return kMap;
}

uint8_t Nf4CodeOf(float scaled) { return CodeAmong(Nf4Thresholds(), scaled); }

uint8_t DynamicMapIndex(const std::array<float, 256>& map, float scaled) {
  // Seven halving steps from index 127 leave an untested final pivot between the last tested
  // entries below (lower) and above (upper) the value; the value is compared with the float
  // midpoint between the pivot and the neighbour on its side. Ties go to the pivot.
  int pivot = 127;
  int lower_index = 0;
  int upper_index = 255;
  float lower = -1.0f;
  float upper = 1.0f;
  float value = map[pivot];
  for (int step = 64; step > 0; step >>= 1) {
    if (scaled > value) {
      lower_index = pivot;
      lower = value;
      pivot += step;
    } else {
      upper_index = pivot;
      upper = value;
      pivot -= step;
    }
    value = map[pivot];
  }
  if (upper_index == 255) upper = map[255];
  if (lower_index == 0) lower = map[0];
  if (scaled > value) {
    const float midpoint = (upper + value) * 0.5f;
    return static_cast<uint8_t>(scaled > midpoint ? upper_index : pivot);
  }
  const float midpoint = (lower + value) * 0.5f;
  return static_cast<uint8_t>(scaled < midpoint ? lower_index : pivot);
}

uint16_t FloatToBf16(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return 0x7FFF;
  // Adding 0x7FFF plus the kept lowest bit carries into the upper half exactly when the dropped
  // half is above the midpoint, or on it with an odd kept part; infinities stay infinite.
  const uint32_t rounding = 0x7FFFu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>((bits + rounding) >> 16);
}

float Bf16ToFloat(uint16_t bits) {
  const uint32_t widened = static_cast<uint32_t>(bits) << 16;
  float value;
  std::memcpy(&value, &widened, sizeof(value));
  return value;
}

Nf4Blocks QuantizeNf4(const float* weights, int64_t numel, int block_size) {
  RequireBlockSize(block_size, "QuantizeNf4");
  RequireCount(numel, weights, "QuantizeNf4", "weights");
  CheckFinite(weights, numel, "QuantizeNf4", "weights");
  const int64_t num_blocks = CeilDiv(numel, block_size);
  const std::array<float, 15>& thresholds = Nf4Thresholds();
  Nf4Blocks out;
  out.packed.assign(static_cast<size_t>(CeilDiv(numel, 2)), 0);
  out.absmax.assign(static_cast<size_t>(num_blocks), 0.0f);
  for (int64_t block = 0; block < num_blocks; ++block) {
    const int64_t begin = block * block_size;
    const int64_t end = std::min(begin + block_size, numel);
    float absmax = 0.0f;
    for (int64_t i = begin; i < end; ++i) absmax = std::max(absmax, std::fabs(weights[i]));
    out.absmax[block] = absmax;
    // Reciprocal then multiply, as the bitsandbytes kernel does; absmax 0 gives inf and NaN
    // products.
    const float reciprocal = 1.0f / absmax;
    // The block size is even, so a byte never straddles two blocks; a missing odd value is padded
    // with 0.
    for (int64_t i = begin; i < end; i += 2) {
      const float second = i + 1 < end ? weights[i + 1] : 0.0f;
      const uint8_t high = CodeAmong(thresholds, weights[i] * reciprocal);
      const uint8_t low = CodeAmong(thresholds, second * reciprocal);
      out.packed[i / 2] = static_cast<uint8_t>((high << 4) | low);
    }
  }
  return out;
}

namespace {

// Walks block by block so the absmax lookup and the nibble split stay out of the per-value work.
template <typename Store>
void DequantizeBlocks(const uint8_t* packed, const float* absmax, int64_t numel, Store store) {
  const std::array<float, 16>& code = Nf4CodeTable();
  for (int64_t begin = 0; begin < numel; begin += kNf4BlockSize) {
    const float scale = absmax[begin / kNf4BlockSize];
    const int64_t end = std::min(begin + kNf4BlockSize, numel);
    for (int64_t i = begin; i < end; i += 2) {
      const uint8_t byte = packed[i / 2];
      store(i, code[byte >> 4] * scale);
      if (i + 1 < end) store(i + 1, code[byte & 0x0F] * scale);
    }
  }
}

void CheckDequantizeArgs(const uint8_t* packed, const float* absmax, int64_t numel, int block_size,
                         const void* out, const char* function) {
  RequireBlockSize(block_size, function);
  RequireCount(numel, packed, function, "packed");
  RequireCount(numel, absmax, function, "absmax");
  RequireCount(numel, out, function, "out");
}

}  // namespace

void DequantizeNf4(const uint8_t* packed, const float* absmax, int64_t numel, int block_size,
                   float* out) {
  CheckDequantizeArgs(packed, absmax, numel, block_size, out, "DequantizeNf4");
  DequantizeBlocks(packed, absmax, numel, [out](int64_t i, float value) { out[i] = value; });
}

void DequantizeNf4Bf16(const uint8_t* packed, const float* absmax, int64_t numel, int block_size,
                       uint16_t* out) {
  CheckDequantizeArgs(packed, absmax, numel, block_size, out, "DequantizeNf4Bf16");
  DequantizeBlocks(packed, absmax, numel,
                   [out](int64_t i, float value) { out[i] = FloatToBf16(value); });
}

DoubleQuantizedAbsmax DoubleQuantize(const float* absmax, int64_t count) {
  RequireCount(count, absmax, "DoubleQuantize", "absmax");
  CheckFinite(absmax, count, "DoubleQuantize", "absmax");
  DoubleQuantizedAbsmax out;
  if (count == 0) return out;
  double sum = 0.0;
  for (int64_t i = 0; i < count; ++i) sum += absmax[i];
  out.offset = static_cast<float>(sum / static_cast<double>(count));

  const std::array<float, 256>& map = DynamicSignedMap();
  const int64_t num_groups = CeilDiv(count, kAbsmaxBlockSize);
  out.codes.assign(static_cast<size_t>(count), 0);
  out.scales.assign(static_cast<size_t>(num_groups), 0.0f);
  std::vector<float> centred(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) centred[i] = absmax[i] - out.offset;
  for (int64_t group = 0; group < num_groups; ++group) {
    const int64_t begin = group * kAbsmaxBlockSize;
    const int64_t end = std::min(begin + kAbsmaxBlockSize, count);
    float scale = 0.0f;
    for (int64_t i = begin; i < end; ++i) scale = std::max(scale, std::fabs(centred[i]));
    out.scales[group] = scale;
    // A group whose absmaxes all equal the mean has scale 0; its NaN products land on a negative
    // map entry times 0, so it still dequantises to exactly the offset.
    const float reciprocal = 1.0f / scale;
    for (int64_t i = begin; i < end; ++i)
      out.codes[i] = DynamicMapIndex(map, centred[i] * reciprocal);
  }
  return out;
}

void DequantizeAbsmax(const uint8_t* codes, const float* scales, float offset, int64_t count,
                      const float* code_map, float* out) {
  RequireCount(count, codes, "DequantizeAbsmax", "codes");
  RequireCount(count, scales, "DequantizeAbsmax", "scales");
  RequireCount(count, code_map, "DequantizeAbsmax", "code_map");
  RequireCount(count, out, "DequantizeAbsmax", "out");
  for (int64_t i = 0; i < count; ++i) {
    const float scaled = code_map[codes[i]] * scales[i / kAbsmaxBlockSize];
    out[i] = scaled + offset;
  }
}

int64_t Nf4Tensor::StorageBytes() const {
  int64_t bytes = static_cast<int64_t>(packed.size());
  if (double_quant) {
    bytes += static_cast<int64_t>(absmax_dq.codes.size()) +
             static_cast<int64_t>(absmax_dq.scales.size() * sizeof(float)) + sizeof(float);
  } else {
    bytes += static_cast<int64_t>(absmax.size() * sizeof(float));
  }
  return bytes;
}

int64_t Nf4StorageBytes(int64_t numel, bool double_quant) {
  const int64_t blocks = CeilDiv(numel, kNf4BlockSize);
  const int64_t packed = CeilDiv(numel, 2);
  if (!double_quant) return packed + blocks * static_cast<int64_t>(sizeof(float));
  if (blocks == 0) return packed + static_cast<int64_t>(sizeof(float));
  return packed + blocks + CeilDiv(blocks, kAbsmaxBlockSize) * static_cast<int64_t>(sizeof(float)) +
         static_cast<int64_t>(sizeof(float));
}

Nf4Tensor QuantizeNf4Tensor(const float* weights, const std::vector<int64_t>& shape,
                            bool double_quant) {
  int64_t numel = 1;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] < 0) {
      throw std::invalid_argument("QuantizeNf4Tensor: dimension " + std::to_string(d) + " is " +
                                  std::to_string(shape[d]) + "; sizes must be >= 0");
    }
    numel *= shape[d];
  }
  Nf4Blocks blocks = QuantizeNf4(weights, numel, kNf4BlockSize);
  Nf4Tensor tensor;
  tensor.shape = shape;
  tensor.numel = numel;
  tensor.block_size = kNf4BlockSize;
  tensor.packed = std::move(blocks.packed);
  tensor.double_quant = double_quant;
  if (double_quant) {
    tensor.absmax_dq =
        DoubleQuantize(blocks.absmax.data(), static_cast<int64_t>(blocks.absmax.size()));
  } else {
    tensor.absmax = std::move(blocks.absmax);
  }
  return tensor;
}

std::vector<float> EffectiveAbsmax(const Nf4Tensor& tensor) {
  RequireBlockSize(tensor.block_size, "EffectiveAbsmax");
  const int64_t blocks = tensor.num_blocks();
  CheckSize(tensor.packed.size(), CeilDiv(tensor.numel, 2), "packed");
  if (!tensor.double_quant) {
    CheckSize(tensor.absmax.size(), blocks, "absmax");
    return tensor.absmax;
  }
  CheckSize(tensor.absmax_dq.codes.size(), blocks, "absmax_dq.codes");
  CheckSize(tensor.absmax_dq.scales.size(), CeilDiv(blocks, kAbsmaxBlockSize), "absmax_dq.scales");
  std::vector<float> absmax(static_cast<size_t>(blocks));
  DequantizeAbsmax(tensor.absmax_dq.codes.data(), tensor.absmax_dq.scales.data(),
                   tensor.absmax_dq.offset, blocks, DynamicSignedMap().data(), absmax.data());
  return absmax;
}

std::vector<float> DequantizeNf4TensorToFloat(const Nf4Tensor& tensor) {
  const std::vector<float> absmax = EffectiveAbsmax(tensor);
  std::vector<float> out(static_cast<size_t>(tensor.numel));
  DequantizeNf4(tensor.packed.data(), absmax.data(), tensor.numel, tensor.block_size, out.data());
  return out;
}

std::vector<uint16_t> DequantizeNf4TensorToBf16(const Nf4Tensor& tensor) {
  const std::vector<float> absmax = EffectiveAbsmax(tensor);
  std::vector<uint16_t> out(static_cast<size_t>(tensor.numel));
  DequantizeNf4Bf16(tensor.packed.data(), absmax.data(), tensor.numel, tensor.block_size,
                    out.data());
  return out;
}

}  // namespace hpsearch::kernels
