#include "core/safetensors.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/shape_string.h"
#include "formats/json_nesting.h"

namespace hpsearch::core {
namespace {

using nlohmann::json;

// The reference implementation refuses headers over 100 MB; a header that large is an attack, not a
// model.
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;
constexpr char kMetadataKey[] = "__metadata__";

struct DtypeName {
  const char* name;
  at::ScalarType type;
};
constexpr DtypeName kDtypes[] = {
    {"F64", at::kDouble}, {"F32", at::kFloat}, {"F16", at::kHalf},  {"BF16", at::kBFloat16},
    {"I64", at::kLong},   {"I32", at::kInt},   {"I16", at::kShort}, {"I8", at::kChar},
    {"U8", at::kByte},    {"BOOL", at::kBool},
};

bool HostIsLittleEndian() {
  const uint16_t probe = 1;
  unsigned char first = 0;
  std::memcpy(&first, &probe, 1);
  return first == 1;
}

struct Entry {
  std::string name;
  at::ScalarType dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0;
  uint64_t end = 0;
};

Entry ParseEntry(const std::string& where, const std::string& name, const json& j) {
  auto bad = [&](const std::string& what) {
    Fail(ErrorCode::kDataLoss, where + ": tensor \"" + name + "\": " + what);
  };
  if (!j.is_object()) bad("header entry is not an object: " + formats::JsonExcerpt(j));
  Entry e;
  e.name = name;
  auto dtype = j.find("dtype");
  if (dtype == j.end() || !dtype->is_string()) bad("header entry has no string \"dtype\"");
  const std::string dtype_name = dtype->get<std::string>();
  auto known = std::find_if(std::begin(kDtypes), std::end(kDtypes),
                            [&](const DtypeName& d) { return dtype_name == d.name; });
  if (known == std::end(kDtypes)) {
    Fail(ErrorCode::kUnsupported, where + ": tensor \"" + name + "\" has dtype \"" + dtype_name +
                                      "\", which this reader does not support (F64, F32, F16, "
                                      "BF16, I64, I32, I16, I8, U8, BOOL)");
  }
  e.dtype = known->type;
  auto shape = j.find("shape");
  if (shape == j.end() || !shape->is_array()) bad("header entry has no \"shape\" array");
  uint64_t numel = 1;
  for (const json& dim : *shape) {
    if (!dim.is_number_unsigned()) bad("shape has a dimension that is not a non-negative integer");
    uint64_t d = dim.get<uint64_t>();
    if (d > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
        (d != 0 && numel > std::numeric_limits<uint64_t>::max() / d)) {
      bad("shape " + formats::JsonExcerpt(*shape) + " overflows");
    }
    numel *= d;
    e.shape.push_back(static_cast<int64_t>(d));
  }
  auto offsets = j.find("data_offsets");
  if (offsets == j.end() || !offsets->is_array() || offsets->size() != 2 ||
      !(*offsets)[0].is_number_unsigned() || !(*offsets)[1].is_number_unsigned()) {
    bad("header entry has no \"data_offsets\" pair of non-negative integers");
  }
  e.begin = (*offsets)[0].get<uint64_t>();
  e.end = (*offsets)[1].get<uint64_t>();
  if (e.end < e.begin)
    bad("data_offsets " + formats::JsonExcerpt(*offsets) + " end before they begin");
  const uint64_t item = at::elementSize(e.dtype);
  if (numel > std::numeric_limits<uint64_t>::max() / item || e.end - e.begin != numel * item) {
    bad("data_offsets " + formats::JsonExcerpt(*offsets) + " span " +
        std::to_string(e.end - e.begin) + " bytes but shape " + ShapeString(e.shape) + " of " +
        dtype_name + " needs " + std::to_string(numel * item));
  }
  return e;
}

void ReadExact(std::ifstream& in, uint64_t offset, void* dst, uint64_t size,
               const std::string& where, const std::string& what) {
  in.seekg(static_cast<std::streamoff>(offset));
  in.read(static_cast<char*>(dst), static_cast<std::streamsize>(size));
  if (static_cast<uint64_t>(in.gcount()) != size) {
    Fail(ErrorCode::kIo, where + ": short read of " + what + " (" + std::to_string(in.gcount()) +
                             " of " + std::to_string(size) + " bytes at offset " +
                             std::to_string(offset) + ")");
  }
}

}  // namespace

SafetensorsContents ReadSafetensors(const std::filesystem::path& path) {
  const std::string where = path.string();
  if (!HostIsLittleEndian())
    Fail(ErrorCode::kUnsupported, where + ": big-endian hosts are unsupported");
  std::error_code ec;
  const uint64_t file_size = std::filesystem::file_size(path, ec);
  if (ec) Fail(ErrorCode::kNotFound, where + ": cannot stat safetensors file: " + ec.message());
  std::ifstream in(path, std::ios::binary);
  if (!in) Fail(ErrorCode::kIo, where + ": cannot open for reading");
  if (file_size < 8) {
    Fail(ErrorCode::kDataLoss, where + ": truncated: " + std::to_string(file_size) +
                                   " bytes, fewer than the 8-byte header length");
  }
  unsigned char length_bytes[8];
  ReadExact(in, 0, length_bytes, 8, where, "header length");
  uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i) header_size = (header_size << 8) | length_bytes[i];
  if (header_size > file_size - 8) {
    Fail(ErrorCode::kDataLoss, where + ": header length " + std::to_string(header_size) +
                                   " runs past the end of the " + std::to_string(file_size) +
                                   "-byte file (truncated, or not a safetensors file)");
  }
  if (header_size > kMaxHeaderBytes) {
    Fail(ErrorCode::kDataLoss,
         where + ": header length " + std::to_string(header_size) + " exceeds the 100 MB limit");
  }
  std::string header_text(header_size, '\0');
  ReadExact(in, 8, header_text.data(), header_size, where, "header");
  json header;
  formats::CheckJsonNesting(header_text, where + ": header", ErrorCode::kDataLoss);
  try {
    header = json::parse(header_text);
  } catch (const json::exception& e) {
    Fail(ErrorCode::kDataLoss,
         where + ": header is not valid JSON: " + formats::JsonErrorExcerpt(e));
  }
  if (!header.is_object()) Fail(ErrorCode::kDataLoss, where + ": header is not a JSON object");

  SafetensorsContents contents;
  std::vector<Entry> entries;
  for (const auto& [name, value] : header.items()) {
    if (name == kMetadataKey) {
      if (!value.is_object()) Fail(ErrorCode::kDataLoss, where + ": __metadata__ is not an object");
      for (const auto& [key, text] : value.items()) {
        if (!text.is_string()) {
          Fail(ErrorCode::kDataLoss,
               where + ": __metadata__ value \"" + key + "\" is not a string");
        }
        contents.metadata[key] = text.get<std::string>();
      }
      continue;
    }
    entries.push_back(ParseEntry(where, name, value));
  }

  const uint64_t data_start = 8 + header_size;
  const uint64_t data_size = file_size - data_start;
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  for (const Entry& e : entries) {
    if (e.end > data_size) {
      Fail(ErrorCode::kDataLoss, where + ": tensor \"" + e.name + "\": data_offsets [" +
                                     std::to_string(e.begin) + ", " + std::to_string(e.end) +
                                     "] run past the " + std::to_string(data_size) +
                                     "-byte data section (file truncated?)");
    }
  }
  uint64_t expected_begin = 0;
  for (size_t i = 0; i < entries.size(); ++i) {
    const Entry& e = entries[i];
    if (e.begin < expected_begin) {
      Fail(ErrorCode::kDataLoss, where + ": tensor \"" + e.name + "\" overlaps tensor \"" +
                                     entries[i - 1].name + "\" (data_offsets begin at " +
                                     std::to_string(e.begin) + ", before " +
                                     std::to_string(expected_begin) + ")");
    }
    if (e.begin > expected_begin) {
      Fail(ErrorCode::kDataLoss, where + ": tensor \"" + e.name +
                                     "\" leaves a gap: its data begins at " +
                                     std::to_string(e.begin) + " but the previous tensor ends at " +
                                     std::to_string(expected_begin));
    }
    expected_begin = e.end;
  }
  if (expected_begin != data_size) {
    Fail(ErrorCode::kDataLoss, where + ": " + std::to_string(data_size - expected_begin) +
                                   " bytes after the last tensor's data; the file is corrupt");
  }

  for (const Entry& e : entries) {
    at::Tensor t = at::empty(e.shape, at::TensorOptions().dtype(e.dtype));
    if (e.end > e.begin) {
      ReadExact(in, data_start + e.begin, t.data_ptr(), e.end - e.begin, where,
                "tensor \"" + e.name + "\"");
    }
    contents.tensors.emplace(e.name, std::move(t));
  }
  return contents;
}

void WriteSafetensors(const std::filesystem::path& path, const TensorMap& tensors,
                      const std::map<std::string, std::string>& metadata) {
  const std::string where = path.string();
  if (!HostIsLittleEndian())
    Fail(ErrorCode::kUnsupported, where + ": big-endian hosts are unsupported");
  json header = json::object();
  if (!metadata.empty()) header[kMetadataKey] = metadata;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    if (name.empty() || name == kMetadataKey) {
      Fail(ErrorCode::kInvalidArgument, where + ": cannot write a tensor named \"" + name + "\"");
    }
    if (!tensor.defined()) {
      Fail(ErrorCode::kInvalidArgument, where + ": tensor \"" + name + "\" is undefined");
    }
    // A structured binding cannot be captured in C++17 (clang refuses it): capture the dtype.
    const at::ScalarType dtype = tensor.scalar_type();
    auto known = std::find_if(std::begin(kDtypes), std::end(kDtypes),
                              [&](const DtypeName& d) { return dtype == d.type; });
    if (known == std::end(kDtypes)) {
      Fail(ErrorCode::kUnsupported, where + ": tensor \"" + name + "\" has dtype " +
                                        std::string(c10::toString(tensor.scalar_type())) +
                                        ", which safetensors cannot store");
    }
    const uint64_t bytes = static_cast<uint64_t>(tensor.numel()) * tensor.element_size();
    header[name] = {{"dtype", known->name},
                    {"shape", tensor.sizes().vec()},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string header_text = header.dump();
  // Padding to 8 bytes keeps every tensor's data aligned for readers that map the file.
  header_text.append((8 - header_text.size() % 8) % 8, ' ');
  unsigned char length_bytes[8];
  uint64_t header_size = header_text.size();
  for (int i = 0; i < 8; ++i) length_bytes[i] = static_cast<unsigned char>(header_size >> (8 * i));

  AtomicFileWriter out(path);
  out.Write(length_bytes, sizeof(length_bytes));
  out.Write(header_text.data(), header_text.size());
  for (const auto& [name, tensor] : tensors) {
    at::Tensor cpu = tensor.to(at::kCPU).contiguous();
    out.Write(cpu.data_ptr(), static_cast<size_t>(cpu.numel()) * cpu.element_size());
  }
  out.Commit();
}

}  // namespace hpsearch::core
