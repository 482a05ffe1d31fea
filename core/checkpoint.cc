#include "core/checkpoint.h"

#include <ATen/ATen.h>

#include <set>

#include "core/error.h"
#include "core/safetensors.h"
#include "core/shape_string.h"
#include "core/torch_bin.h"

namespace hpsearch::core {
namespace {

constexpr char kPrefix[] = "transformer.";

bool StartsWith(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

// "h.<N>.attn.bias" and "h.<N>.attn.masked_bias" are causal-mask buffers, rebuilt by the model.
bool IsAttentionBuffer(const std::string& bare) {
  if (!StartsWith(bare, "h.")) return false;
  const size_t dot = bare.find('.', 2);
  if (dot == std::string::npos || dot == 2) return false;
  for (size_t i = 2; i < dot; ++i) {
    if (bare[i] < '0' || bare[i] > '9') return false;
  }
  const std::string rest = bare.substr(dot + 1);
  return rest == "attn.bias" || rest == "attn.masked_bias";
}

std::string QuotedNameList(const std::vector<std::string>& names) {
  std::string s;
  for (const std::string& n : names) s += (s.empty() ? "'" : ", '") + n + "'";
  return "[" + s + "]";
}

}  // namespace

std::vector<std::pair<std::string, std::vector<int64_t>>> Gpt2TensorShapes(
    const formats::HfGpt2Config& c) {
  const int64_t e = c.n_embd;
  std::vector<std::pair<std::string, std::vector<int64_t>>> shapes = {
      {"transformer.wte.weight", {c.vocab_size, e}},
      {"transformer.wpe.weight", {c.n_positions, e}},
  };
  for (int64_t i = 0; i < c.n_layer; ++i) {
    const std::string p = "transformer.h." + std::to_string(i) + ".";
    shapes.push_back({p + "ln_1.weight", {e}});
    shapes.push_back({p + "ln_1.bias", {e}});
    shapes.push_back({p + "attn.c_attn.weight", {e, 3 * e}});
    shapes.push_back({p + "attn.c_attn.bias", {3 * e}});
    shapes.push_back({p + "attn.c_proj.weight", {e, e}});
    shapes.push_back({p + "attn.c_proj.bias", {e}});
    shapes.push_back({p + "ln_2.weight", {e}});
    shapes.push_back({p + "ln_2.bias", {e}});
    shapes.push_back({p + "mlp.c_fc.weight", {e, c.n_inner}});
    shapes.push_back({p + "mlp.c_fc.bias", {c.n_inner}});
    shapes.push_back({p + "mlp.c_proj.weight", {c.n_inner, e}});
    shapes.push_back({p + "mlp.c_proj.bias", {e}});
  }
  shapes.push_back({"transformer.ln_f.weight", {e}});
  shapes.push_back({"transformer.ln_f.bias", {e}});
  return shapes;
}

Checkpoint LoadCheckpoint(const std::filesystem::path& dir, const CheckpointWarningFn& warn) {
  Checkpoint checkpoint;
  checkpoint.config = formats::LoadHfGpt2Config(dir / "config.json");
  const formats::HfGpt2Config& config = checkpoint.config;

  std::error_code ec;
  TensorMap raw;
  if (std::filesystem::exists(dir / "model.safetensors", ec)) {
    checkpoint.weights_path = dir / "model.safetensors";
    raw = ReadSafetensors(checkpoint.weights_path).tensors;
  } else if (std::filesystem::exists(dir / "pytorch_model.bin", ec)) {
    checkpoint.weights_path = dir / "pytorch_model.bin";
    raw = ReadTorchBin(checkpoint.weights_path);
  } else if (std::filesystem::exists(dir / "model.safetensors.index.json", ec) ||
             std::filesystem::exists(dir / "pytorch_model.bin.index.json", ec)) {
    Fail(ErrorCode::kUnsupported, dir.string() +
                                      ": sharded checkpoints (*.index.json) are not "
                                      "supported; save the model unsharded");
  } else {
    Fail(ErrorCode::kNotFound,
         dir.string() + ": has neither model.safetensors nor pytorch_model.bin");
  }
  const std::string where = checkpoint.weights_path.string();

  const auto expected = Gpt2TensorShapes(config);
  std::set<std::string> expected_names;
  for (const auto& [name, shape] : expected) expected_names.insert(name);

  TensorMap named;
  std::vector<std::string> unused;
  for (auto& [name, tensor] : raw) {
    if (StartsWith(name, "lm_head.")) continue;
    const std::string bare = StartsWith(name, kPrefix) ? name.substr(sizeof(kPrefix) - 1) : name;
    if (IsAttentionBuffer(bare)) continue;
    const std::string normal = name == kScoreWeightName ? name : kPrefix + bare;
    if (normal != kScoreWeightName && expected_names.count(normal) == 0) {
      unused.push_back(name);
      continue;
    }
    if (named.count(normal)) {
      Fail(ErrorCode::kInvalidArgument, where + ": tensor \"" + normal +
                                            "\" appears both with and without the \"transformer.\" "
                                            "prefix");
    }
    named.emplace(normal, tensor);
  }
  if (!unused.empty() && warn) {
    warn("Some weights of the checkpoint at " + where +
         " were not used by GPT2Model: " + QuotedNameList(unused));
  }

  auto take = [&](const std::string& name, const std::vector<int64_t>& shape) {
    at::Tensor t = named.at(name);
    if (t.sizes() != at::IntArrayRef(shape)) {
      Fail(ErrorCode::kInvalidArgument,
           where + ": tensor \"" + name + "\" has shape " + ShapeString(t.sizes()) +
               ", but config.json (" + "n_layer " + std::to_string(config.n_layer) + ", n_embd " +
               std::to_string(config.n_embd) + ", vocab_size " + std::to_string(config.vocab_size) +
               ", n_positions " + std::to_string(config.n_positions) + ", num_labels " +
               std::to_string(config.num_labels) + ") implies " + ShapeString(shape));
    }
    if (!at::isFloatingType(t.scalar_type())) {
      Fail(ErrorCode::kInvalidArgument, where + ": tensor \"" + name + "\" has dtype " +
                                            std::string(c10::toString(t.scalar_type())) +
                                            "; weights must be floating point");
    }
    t = t.to(at::kFloat).contiguous();
    // A view into a larger storage (a tied or sliced tensor) would keep all of it alive.
    if (t.storage().nbytes() != static_cast<size_t>(t.numel()) * sizeof(float)) t = t.clone();
    checkpoint.tensors.emplace(name, std::move(t));
  };
  for (const auto& [name, shape] : expected) {
    if (named.count(name) == 0) {
      Fail(ErrorCode::kNotFound, where + ": tensor \"" + name +
                                     "\" is missing (config.json has n_layer " +
                                     std::to_string(config.n_layer) +
                                     "); the file is incomplete or belongs to another model");
    }
    take(name, shape);
  }
  if (named.count(kScoreWeightName)) {
    take(kScoreWeightName, {config.num_labels, config.n_embd});
  } else if (warn) {
    warn(
        "Some weights of GPT2ForSequenceClassification were not initialized from the model "
        "checkpoint at " +
        dir.string() + " and are newly initialized: ['" + kScoreWeightName +
        "']; train the model on a down-stream task before using it for predictions");
  }
  return checkpoint;
}

}  // namespace hpsearch::core
