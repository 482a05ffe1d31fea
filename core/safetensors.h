// Reader and writer of the safetensors format (https://github.com/huggingface/safetensors): an
// 8-byte little-endian header length N, N bytes of JSON mapping each tensor name to {"dtype",
// "shape", "data_offsets": [begin, end]} (offsets relative to the byte after the header) plus an
// optional
// "__metadata__" object of strings, then the tensors' bytes back to back.
//
// The reader trusts nothing in the file: every length and offset is checked against the file size
// before anything is allocated or read, and the tensors must tile the data section exactly (sorted,
// no gap, no overlap, nothing after the last one), as the reference implementation demands. Tensors
// come back on the CPU, contiguous, in the file's dtype, each owning its memory. Little-endian
// hosts only.
//
// Both functions are thread-safe for distinct paths.
#pragma once

#include <filesystem>
#include <map>
#include <string>

#include "core/tensor_map.h"

namespace hpsearch::core {

struct SafetensorsContents {
  TensorMap tensors;
  std::map<std::string, std::string> metadata;  // the "__metadata__" object; empty when absent
};

// Reads every tensor of `path`. Supported dtypes: F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL.
// Throws core::Error naming the file (and the tensor, where one is at fault):
//   kNotFound   the file does not exist;
//   kIo         it cannot be read;
//   kDataLoss   truncated (shorter than 8 bytes, header length beyond the file, data section
//   shorter than
//               the offsets say), header not a JSON object, an entry missing
//               dtype/shape/data_offsets, offsets out of range, overlapping, leaving gaps, or
//               spanning a byte count other than shape x dtype size;
//   kUnsupported an unknown dtype (U16, F8_E4M3, ...) or a big-endian host.
SafetensorsContents ReadSafetensors(const std::filesystem::path& path);

// Writes `tensors` (in name order, each padded to nothing: offsets are contiguous) and `metadata`
// to `path` atomically (temporary file, fsync, rename). Tensors may live on any device and have any
// strides; they are copied to contiguous CPU memory one at a time while writing. Throws
// core::Error: kInvalidArgument for an undefined tensor, an empty name or the reserved name
// "__metadata__"; kUnsupported for a dtype safetensors cannot hold (complex, quantized); kIo when
// writing fails (the previous file at `path`, if any, is then left untouched).
void WriteSafetensors(const std::filesystem::path& path, const TensorMap& tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace hpsearch::core
