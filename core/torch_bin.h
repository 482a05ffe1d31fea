// Reader of the files torch.save writes for a state_dict (Hugging Face's pytorch_model.bin), in
// both formats:
//  - zip (PyTorch >= 1.6): "<archive>/data.pkl" holds the pickled OrderedDict, whose tensors refer
//  through
//    persistent ids ('storage', torch.FloatStorage, key, location, numel) to "<archive>/data/<key>"
//    entries;
//  - legacy (PyTorch < 1.6, e.g. DialoGPT's 2019 checkpoints): five pickles in a row (magic number,
//  protocol
//    version 1001, sys_info, the state dict, the list of storage keys), then each storage as an
//    8-byte little-endian element count followed by its raw bytes, in the order of that list.
// LibTorch's own loader reads neither (it expects TorchScript archives). Nothing in the file is
// executed: see pickle.h for the allow-list of globals.
//
// Tensors come back on the CPU in their saved dtype, with their saved sizes, strides and storage
// offsets: tensors that shared a storage in Python (tied weights, views) share it here too, and may
// be non-contiguous. Little-endian hosts and files only. Thread-safe for distinct paths.
#pragma once

#include <filesystem>

#include "core/tensor_map.h"

namespace hpsearch::core {

// Reads the state dict in `path`. Throws core::Error naming the file (and the tensor, storage key
// or pickle global at fault): kNotFound when missing; kUnsupported for a disallowed pickle global,
// a compressed zip entry, a tar-format (PyTorch < 0.4) file, a big-endian file or an unknown
// storage type; kDataLoss when truncated or malformed (bad magic number, missing or short storage
// data, a tensor reaching past its storage, a top-level object that is not a dict of tensors, a
// duplicated name).
TensorMap ReadTorchBin(const std::filesystem::path& path);

}  // namespace hpsearch::core
