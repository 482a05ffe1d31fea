#include <ATen/ATen.h>
#include "core/catch_torch.h"

#include <fstream>

#include "core/core_test_files.h"
#include "core/error_matchers.h"
#include "core/safetensors.h"
#include "core/torch_bin.h"
#include "testing/testing.h"

namespace hpsearch::core {
namespace {

void WriteAll(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

TEST_CASE("ReadTorchBin keeps views, strides and offsets in both formats", "[core][torch_bin]") {
  const at::Tensor base = at::arange(24, at::kFloat).reshape({4, 6});
  for (const char* file : {"views_zip.bin", "views_zip_p4.bin", "views_legacy.bin"}) {
    INFO(file);
    TensorMap t = ReadTorchBin(testing::CheckpointFixtureDir() / file);
    REQUIRE(t.size() == 4);
    REQUIRE(at::equal(t.at("base"), base));
    REQUIRE(at::equal(t.at("transposed"), base.t()));
    REQUIRE_FALSE(t.at("transposed").is_contiguous());
    REQUIRE(t.at("transposed").data_ptr() == t.at("base").data_ptr());  // one storage, as in Python
    REQUIRE(at::equal(t.at("row2"), base[2]));
    REQUIRE(t.at("row2").storage_offset() == 12);
    REQUIRE(at::equal(t.at("col1"), base.select(1, 1)));
    REQUIRE(t.at("col1").strides() == at::IntArrayRef({6}));
  }
}

TEST_CASE("ReadTorchBin resolves the storage slices of old legacy files", "[core][torch_bin]") {
  // "on_slice" lies on elements [2, 8) of a 10-element storage, at offset 1 with strides (2, 1).
  TensorMap t = ReadTorchBin(testing::CheckpointFixtureDir() / "storage_slice_legacy.bin");
  REQUIRE(at::equal(t.at("whole"), at::arange(10, at::kFloat)));
  REQUIRE(at::equal(t.at("on_slice"), at::tensor({3.f, 4.f, 5.f, 6.f}).reshape({2, 2})));
  REQUIRE(t.at("on_slice").data_ptr<float>() == t.at("whole").data_ptr<float>() + 3);
}

TEST_CASE("ReadTorchBin reads half, bfloat16 and int64 storages", "[core][torch_bin]") {
  TensorMap t = ReadTorchBin(testing::CheckpointFixtureDir() / "dtypes_zip.bin");
  REQUIRE(t.at("h").scalar_type() == at::kHalf);
  REQUIRE(at::equal(t.at("h"), at::linspace(-2, 2, 5).to(at::kHalf)));
  REQUIRE(t.at("b").scalar_type() == at::kBFloat16);
  REQUIRE(at::equal(t.at("b"), at::linspace(-2, 2, 5).to(at::kBFloat16)));
  REQUIRE(t.at("i").scalar_type() == at::kLong);
  REQUIRE(t.at("i")[2].item<int64_t>() == (int64_t{1} << 40));
  REQUIRE(t.at("i")[0].item<int64_t>() == -7);
}

TEST_CASE("ReadTorchBin reads Hugging Face state dicts in zip and legacy format",
          "[core][torch_bin]") {
  TensorMap zip =
      ReadTorchBin(testing::CheckpointFixtureDir() / "tiny-gpt2-zip" / "pytorch_model.bin");
  TensorMap legacy =
      ReadTorchBin(testing::CheckpointFixtureDir() / "tiny-gpt2-legacy" / "pytorch_model.bin");
  TensorMap st = ReadSafetensors(testing::CheckpointFixtureDir() / "tiny-gpt2-safetensors" /
                                 "model.safetensors")
                     .tensors;
  // 28 GPT2Model tensors; zip adds 2 x (attn.bias, masked_bias) + lm_head, legacy 2 x attn.bias.
  REQUIRE(zip.size() == 28 + 4 + 1);
  REQUIRE(legacy.size() == 28 + 2);
  REQUIRE(zip.at("lm_head.weight").data_ptr() == zip.at("transformer.wte.weight").data_ptr());
  REQUIRE(zip.at("transformer.h.1.attn.bias").scalar_type() == at::kBool);
  REQUIRE(zip.at("transformer.h.1.attn.bias").sizes() == at::IntArrayRef({1, 1, 32, 32}));
  REQUIRE(legacy.at("h.0.attn.bias").scalar_type() == at::kFloat);
  size_t compared = 0;
  for (const auto& [name, tensor] : st) {
    if (name == "score.weight") continue;
    INFO(name);
    REQUIRE(at::equal(zip.at(name), tensor));
    REQUIRE(at::equal(legacy.at(name.substr(std::string("transformer.").size())), tensor));
    ++compared;
  }
  REQUIRE(compared == 28);
}

TEST_CASE("ReadTorchBin refuses disallowed globals and compressed entries", "[core][torch_bin]") {
  const auto evil = (testing::CheckpointFixtureDir() / "evil_zip.bin").string();
  REQUIRE_CORE_ERROR(ReadTorchBin(evil), ErrorCode::kUnsupported, evil, "posix.system");
  const auto compressed = (testing::CheckpointFixtureDir() / "compressed_zip.bin").string();
  REQUIRE_CORE_ERROR(ReadTorchBin(compressed), ErrorCode::kUnsupported, compressed,
                     "pytorch_model/data.pkl", "compressed");
}

TEST_CASE("ReadTorchBin reports truncated and corrupt files", "[core][torch_bin]") {
  testing::TempDir dir;
  const auto path = dir / "pytorch_model.bin";
  const std::string file = path.string();
  const std::string zip = testing::ReadFileBytes(testing::CheckpointFixtureDir() / "tiny-gpt2-zip" /
                                                 "pytorch_model.bin");
  const std::string legacy = testing::ReadFileBytes(testing::CheckpointFixtureDir() /
                                                    "tiny-gpt2-legacy" / "pytorch_model.bin");

  SECTION("missing") { REQUIRE_CORE_ERROR(ReadTorchBin(path), ErrorCode::kNotFound, file); }
  SECTION("not a checkpoint") {
    WriteAll(path, "hello, world");
    REQUIRE_CORE_ERROR(ReadTorchBin(path), ErrorCode::kDataLoss, file, "neither");
  }
  SECTION("zip cut in half") {
    WriteAll(path, zip.substr(0, zip.size() / 2));
    REQUIRE_CORE_ERROR(ReadTorchBin(path), ErrorCode::kDataLoss, file, "end-of-central-directory");
  }
  SECTION("zip storage byte flipped") {
    std::string bytes = zip;
    const std::string name = "pytorch_model/data/0";
    const size_t name_pos = bytes.find(name);
    REQUIRE(name_pos != std::string::npos);
    const size_t extra_len = static_cast<unsigned char>(bytes[name_pos - 2]) |
                             static_cast<unsigned char>(bytes[name_pos - 1]) << 8;
    bytes[name_pos + name.size() + extra_len] ^= 0x40;
    WriteAll(path, bytes);
    REQUIRE_CORE_ERROR(ReadTorchBin(path), ErrorCode::kDataLoss, file, name, "CRC");
  }
  SECTION("zip storage entry missing") {
    std::string bytes = zip;
    for (size_t pos = bytes.find("/data/9"); pos != std::string::npos;
         pos = bytes.find("/data/9", pos)) {
      bytes[pos + 6] = 'Z';
    }
    WriteAll(path, bytes);
    REQUIRE_CORE_ERROR(ReadTorchBin(path), ErrorCode::kDataLoss, file, "storage \"9\"",
                       "pytorch_model/data/9");
  }
  SECTION("legacy cut inside the last storage") {
    WriteAll(path, legacy.substr(0, legacy.size() - 10));
    REQUIRE_CORE_ERROR(ReadTorchBin(path), ErrorCode::kDataLoss, file, "storage \"", "truncated");
  }
  SECTION("legacy cut inside the pickle") {
    WriteAll(path, legacy.substr(0, 200));
    REQUIRE_CORE_ERROR(ReadTorchBin(path), ErrorCode::kDataLoss, file, "state_dict pickle",
                       "truncated");
  }
  SECTION("legacy cut before the first storage's data") {
    WriteAll(path, legacy.substr(0, 400));
    REQUIRE_CORE_ERROR(ReadTorchBin(path), ErrorCode::kDataLoss, file, "storage ",
                       "more than the file can hold");
  }
  SECTION("legacy with a wrong magic number") {
    std::string bytes = legacy;
    bytes[4] ^= 0x01;
    WriteAll(path, bytes);
    REQUIRE_CORE_ERROR(ReadTorchBin(path), ErrorCode::kDataLoss, file, "magic number");
  }
}

}  // namespace
}  // namespace hpsearch::core
