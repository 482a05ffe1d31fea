#include <ATen/ATen.h>
#include "core/catch_torch.h"

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/core_test_files.h"
#include "core/error_matchers.h"
#include "core/safetensors.h"
#include "testing/testing.h"

namespace hpsearch::core {
namespace {

using nlohmann::json;

// Writes a safetensors file by hand: the header exactly as given, then `data`.
void WriteRaw(const std::filesystem::path& path, const std::string& header,
              const std::string& data) {
  std::ofstream out(path, std::ios::binary);
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out.put(static_cast<char>(n >> (8 * i)));
  out << header << data;
}

TEST_CASE("ReadSafetensors reads every dtype of a file written in Python", "[core][safetensors]") {
  SafetensorsContents st =
      ReadSafetensors(testing::CheckpointFixtureDir() / "mixed_dtypes.safetensors");
  REQUIRE(st.metadata == std::map<std::string, std::string>{{"note", "mixed dtypes"}});
  std::ifstream in(testing::CheckpointFixtureDir() / "mixed_dtypes.json");
  json expected = json::parse(in);
  REQUIRE(st.tensors.size() == expected.size());
  const std::map<std::string, at::ScalarType> dtypes = {
      {"f16", at::kHalf}, {"bf16", at::kBFloat16}, {"i64", at::kLong},   {"i32", at::kInt},
      {"u8", at::kByte},  {"flag", at::kBool},     {"empty", at::kFloat}};
  for (const auto& [name, want] : expected.items()) {
    INFO(name);
    const at::Tensor& t = st.tensors.at(name);
    REQUIRE(t.scalar_type() == dtypes.at(name));
    REQUIRE(t.sizes().vec() == want["shape"].get<std::vector<int64_t>>());
    at::Tensor values = t.to(at::kDouble).reshape({-1});
    auto expected_values = want["values"].get<std::vector<double>>();
    REQUIRE(values.numel() == static_cast<int64_t>(expected_values.size()));
    for (size_t i = 0; i < expected_values.size(); ++i) {
      REQUIRE(values[i].item<double>() == expected_values[i]);
    }
  }
}

TEST_CASE("WriteSafetensors round-trips tensors and metadata bit for bit", "[core][safetensors]") {
  testing::TempDir dir;
  at::manual_seed(7);
  TensorMap tensors = {
      {"a.weight", at::randn({3, 5})},
      {"transposed", at::randn({4, 6}).t()},  // non-contiguous input
      {"half", at::randn({7}).to(at::kHalf)},
      {"bf16", at::randn({2, 2}).to(at::kBFloat16)},
      {"ids", at::arange(10, at::kLong)},
      {"mask", at::rand({9}) > 0.5},
      {"scalar", at::scalar_tensor(2.5)},
      {"empty", at::empty({0, 4})},
  };
  const std::map<std::string, std::string> metadata = {{"format", "pt"}, {"rank", "8"}};
  const auto path = dir / "adapter.safetensors";
  WriteSafetensors(path, tensors, metadata);
  REQUIRE(std::filesystem::directory_iterator(dir.path()) != std::filesystem::directory_iterator());
  size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    ++files;
    REQUIRE(e.path().filename() == "adapter.safetensors");  // no temporary file left behind
  }
  REQUIRE(files == 1);
  const std::string bytes = testing::ReadFileBytes(path);
  uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i)
    header_size = (header_size << 8) | static_cast<unsigned char>(bytes[i]);
  REQUIRE(header_size % 8 == 0);

  SafetensorsContents back = ReadSafetensors(path);
  REQUIRE(back.metadata == metadata);
  REQUIRE(back.tensors.size() == tensors.size());
  for (const auto& [name, t] : tensors) {
    INFO(name);
    const at::Tensor& r = back.tensors.at(name);
    REQUIRE(r.scalar_type() == t.scalar_type());
    REQUIRE(r.sizes() == t.sizes());
    REQUIRE(r.is_contiguous());
    REQUIRE(at::equal(r, t));
  }

  // Overwriting replaces the whole file.
  WriteSafetensors(path, {{"only", at::ones({2})}});
  SafetensorsContents replaced = ReadSafetensors(path);
  REQUIRE(replaced.tensors.size() == 1);
  REQUIRE(replaced.metadata.empty());
  REQUIRE(at::equal(replaced.tensors.at("only"), at::ones({2})));
}

TEST_CASE("WriteSafetensors refuses what it cannot store", "[core][safetensors]") {
  testing::TempDir dir;
  const auto path = dir / "x.safetensors";
  REQUIRE_CORE_ERROR(WriteSafetensors(path, {{"__metadata__", at::ones({1})}}),
                     ErrorCode::kInvalidArgument, "__metadata__");
  REQUIRE_CORE_ERROR(WriteSafetensors(path, {{"undefined", at::Tensor()}}),
                     ErrorCode::kInvalidArgument, "undefined");
  REQUIRE_CORE_ERROR(WriteSafetensors(path, {{"z", at::ones({2}, at::kComplexFloat)}}),
                     ErrorCode::kUnsupported, "\"z\"");
  REQUIRE_CORE_ERROR(
      WriteSafetensors(dir / "no-such-dir" / "x.safetensors", {{"a", at::ones({1})}}),
      ErrorCode::kIo, "no-such-dir");
  REQUIRE_FALSE(std::filesystem::exists(path));
}

TEST_CASE("ReadSafetensors names the file and tensor of every malformed case",
          "[core][safetensors]") {
  testing::TempDir dir;
  const auto path = dir / "bad.safetensors";
  const std::string file = path.string();
  const std::string eight(8, '\x01'), sixteen(16, '\x02');
  auto header = [](const json& j) { return j.dump(); };
  auto entry = [](const char* dtype, std::vector<int64_t> shape, uint64_t begin, uint64_t end) {
    return json{{"dtype", dtype}, {"shape", shape}, {"data_offsets", {begin, end}}};
  };

  SECTION("missing file") { REQUIRE_CORE_ERROR(ReadSafetensors(path), ErrorCode::kNotFound, file); }
  SECTION("shorter than the length field") {
    std::ofstream(path, std::ios::binary) << "abc";
    REQUIRE_CORE_ERROR(ReadSafetensors(path), ErrorCode::kDataLoss, file, "truncated");
  }
  SECTION("header length beyond the file") {
    WriteRaw(path, header({{"a", entry("F32", {2}, 0, 8)}}), eight);
    std::string bytes = testing::ReadFileBytes(path);
    bytes[0] = '\x7f';
    bytes[3] = '\x01';
    std::ofstream(path, std::ios::binary) << bytes;
    REQUIRE_CORE_ERROR(ReadSafetensors(path), ErrorCode::kDataLoss, file, "header length");
  }
  SECTION("header is not JSON") {
    WriteRaw(path, "{\"a\": [", "");
    REQUIRE_CORE_ERROR(ReadSafetensors(path), ErrorCode::kDataLoss, file, "JSON");
  }
  SECTION("data truncated") {
    WriteRaw(path, header({{"a", entry("F32", {2}, 0, 8)}, {"b", entry("F32", {4}, 8, 24)}}),
             eight + "\x02\x02\x02");
    REQUIRE_CORE_ERROR(ReadSafetensors(path), ErrorCode::kDataLoss, file, "\"b\"", "truncated");
  }
  SECTION("offsets out of range") {
    WriteRaw(path, header({{"a", entry("F32", {2}, 1000, 1008)}}), eight);
    REQUIRE_CORE_ERROR(ReadSafetensors(path), ErrorCode::kDataLoss, file, "\"a\"", "1000");
  }
  SECTION("overlapping tensors") {
    WriteRaw(path, header({{"a", entry("F32", {2}, 0, 8)}, {"b", entry("F32", {2}, 4, 12)}}),
             sixteen);
    REQUIRE_CORE_ERROR(ReadSafetensors(path), ErrorCode::kDataLoss, file, "\"b\"", "overlaps",
                       "\"a\"");
  }
  SECTION("a gap between tensors") {
    WriteRaw(path, header({{"a", entry("F32", {1}, 0, 4)}, {"b", entry("F32", {2}, 8, 16)}}),
             sixteen);
    REQUIRE_CORE_ERROR(ReadSafetensors(path), ErrorCode::kDataLoss, file, "\"b\"", "gap");
  }
  SECTION("bytes after the last tensor") {
    WriteRaw(path, header({{"a", entry("F32", {2}, 0, 8)}}), sixteen);
    REQUIRE_CORE_ERROR(ReadSafetensors(path), ErrorCode::kDataLoss, file, "after the last tensor");
  }
  SECTION("byte count disagrees with shape and dtype") {
    WriteRaw(path, header({{"w", entry("F16", {3}, 0, 8)}}), eight);
    REQUIRE_CORE_ERROR(ReadSafetensors(path), ErrorCode::kDataLoss, file, "\"w\"", "[3]", "F16");
  }
  SECTION("unknown dtype") {
    WriteRaw(path, header({{"q", entry("F8_E4M3", {8}, 0, 8)}}), eight);
    REQUIRE_CORE_ERROR(ReadSafetensors(path), ErrorCode::kUnsupported, file, "\"q\"", "F8_E4M3");
  }
  SECTION("entry without a shape") {
    WriteRaw(path, header({{"s", {{"dtype", "F32"}, {"data_offsets", {0, 8}}}}}), eight);
    REQUIRE_CORE_ERROR(ReadSafetensors(path), ErrorCode::kDataLoss, file, "\"s\"", "shape");
  }
  SECTION("metadata that is not strings") {
    WriteRaw(path, header({{"__metadata__", {{"n", 3}}}, {"a", entry("F32", {2}, 0, 8)}}), eight);
    REQUIRE_CORE_ERROR(ReadSafetensors(path), ErrorCode::kDataLoss, file, "__metadata__");
  }
}

}  // namespace
}  // namespace hpsearch::core
