#include "core/gpt2_model.h"

#include <ATen/ATen.h>
#include <torch/utils.h>

#include <limits>
#include <regex>
#include <set>

#include "core/error.h"
#include "core/grad_checkpoint.h"
#include "core/shape_string.h"

namespace hpsearch::core {
namespace {

double LowestFinite(c10::ScalarType dtype) {
  switch (dtype) {
    case c10::kFloat:
      return std::numeric_limits<float>::lowest();
    case c10::kDouble:
      return std::numeric_limits<double>::lowest();
    case c10::kHalf:
      return static_cast<double>(std::numeric_limits<c10::Half>::lowest());
    case c10::kBFloat16:
      return static_cast<double>(std::numeric_limits<c10::BFloat16>::lowest());
    default:
      Fail(ErrorCode::kUnsupported, std::string("attention bias: dtype ") + c10::toString(dtype) +
                                        " is not a floating type; run the model in float, double, "
                                        "half or bfloat16");
  }
}

torch::nn::Embedding MakeEmbedding(int64_t rows, int64_t width, double std,
                                   at::Generator& generator, bool trainable) {
  torch::NoGradGuard no_grad;
  // Passing the weight in keeps EmbeddingImpl::reset from drawing normal(0, 1) from the global
  // generator.
  torch::nn::Embedding embedding(
      torch::nn::EmbeddingOptions(rows, width)
          ._weight(at::empty({rows, width}).normal_(0.0, std, generator)));
  embedding->weight.set_requires_grad(trainable);
  return embedding;
}

// One tensor of a Hugging Face GPT-2 checkpoint and where it lives here.
struct HfSlot {
  std::string name;
  torch::Tensor target;  // undefined for a weight replaced by a FrozenWeight
  // For a Conv1D weight, the layer holding it: stored [in, out] by Hugging Face, [out, in] here.
  const LoraLinearImpl* conv1d = nullptr;
};

void AddLinearSlots(const std::string& prefix, const LoraLinear& layer,
                    std::vector<HfSlot>* slots) {
  slots->push_back({prefix + ".weight", layer->weight, layer.get()});
  slots->push_back({prefix + ".bias", layer->bias});
}

std::vector<HfSlot> HfSlots(const Gpt2ModelImpl& model) {
  std::vector<HfSlot> slots;
  slots.push_back({"wte.weight", model.wte->weight});
  slots.push_back({"wpe.weight", model.wpe->weight});
  for (size_t i = 0; i < model.blocks().size(); ++i) {
    const Gpt2Block& block = model.blocks()[i];
    const std::string prefix = "h." + std::to_string(i);
    slots.push_back({prefix + ".ln_1.weight", block->ln_1->weight});
    slots.push_back({prefix + ".ln_1.bias", block->ln_1->bias});
    AddLinearSlots(prefix + ".attn.c_attn", block->attn->c_attn, &slots);
    AddLinearSlots(prefix + ".attn.c_proj", block->attn->c_proj, &slots);
    slots.push_back({prefix + ".ln_2.weight", block->ln_2->weight});
    slots.push_back({prefix + ".ln_2.bias", block->ln_2->bias});
    AddLinearSlots(prefix + ".mlp.c_fc", block->mlp->c_fc, &slots);
    AddLinearSlots(prefix + ".mlp.c_proj", block->mlp->c_proj, &slots);
  }
  slots.push_back({"ln_f.weight", model.ln_f->weight});
  slots.push_back({"ln_f.bias", model.ln_f->bias});
  return slots;
}

bool IgnoredHfName(const std::string& name) {
  static const std::regex kMaskBuffer(R"(h\.\d+\.attn\.(bias|masked_bias))");
  return name == "lm_head.weight" || std::regex_match(name, kMaskBuffer);
}

std::string JoinFirst(const std::vector<std::string>& items, size_t limit) {
  std::string out;
  for (size_t i = 0; i < items.size() && i < limit; ++i) out += (i ? ", " : "") + items[i];
  if (items.size() > limit) out += ", ... (" + std::to_string(items.size() - limit) + " more)";
  return out;
}

}  // namespace

torch::Tensor Gpt2AttentionBias(const torch::Tensor& attention_mask, int64_t batch, int64_t seq,
                                c10::ScalarType dtype, c10::Device device) {
  const double lowest = LowestFinite(dtype);
  torch::Tensor allowed = at::ones({seq, seq}, at::TensorOptions().dtype(at::kBool).device(device))
                              .tril()
                              .view({1, 1, seq, seq});
  if (attention_mask.defined()) {
    if (attention_mask.dim() != 2 || attention_mask.size(0) != batch ||
        attention_mask.size(1) != seq) {
      Fail(ErrorCode::kInvalidArgument,
           "attention_mask has shape " + ShapeString(attention_mask.sizes()) + "; expected [" +
               std::to_string(batch) + ", " + std::to_string(seq) + "] like input_ids");
    }
    allowed = allowed.logical_and(attention_mask.to(device).ne(0).view({batch, 1, 1, seq}));
  } else {
    allowed = allowed.expand({batch, 1, seq, seq});
  }
  return at::zeros({batch, 1, seq, seq}, at::TensorOptions().dtype(dtype).device(device))
      .masked_fill(allowed.logical_not(), lowest);
}

Gpt2ModelImpl::Gpt2ModelImpl(const Gpt2Config& config, const FineTuningOptions& fine_tuning,
                             at::Generator generator)
    : config_(config) {
  ValidateGpt2Config(config_);
  ValidateFineTuningOptions(fine_tuning);
  const bool full = fine_tuning.method == FineTuningMethod::kFull;
  wte = register_module("wte", MakeEmbedding(config_.vocab_size, config_.n_embd,
                                             config_.initializer_range, generator, full));
  wpe = register_module("wpe", MakeEmbedding(config_.n_positions, config_.n_embd,
                                             config_.initializer_range, generator, full));
  h = register_module("h", torch::nn::ModuleList());
  for (int64_t i = 0; i < config_.n_layer; ++i) {
    Gpt2Block block(config_, fine_tuning, "transformer.h." + std::to_string(i), generator);
    h->push_back(block);
    blocks_.push_back(block);
  }
  ln_f = register_module(
      "ln_f", torch::nn::LayerNorm(
                  torch::nn::LayerNormOptions({config_.n_embd}).eps(config_.layer_norm_epsilon)));
  for (auto& parameter : ln_f->parameters()) parameter.set_requires_grad(full);
}

torch::Tensor Gpt2ModelImpl::forward(const torch::Tensor& input_ids,
                                     const torch::Tensor& attention_mask) {
  if (input_ids.dim() != 2) {
    Fail(ErrorCode::kInvalidArgument,
         "input_ids has shape " + ShapeString(input_ids.sizes()) + "; expected [batch, sequence]");
  }
  const int64_t batch = input_ids.size(0);
  const int64_t seq = input_ids.size(1);
  if (seq > config_.n_positions) {
    Fail(ErrorCode::kInvalidArgument,
         "input_ids has " + std::to_string(seq) + " positions; the model has n_positions = " +
             std::to_string(config_.n_positions) + "; truncate the sequences");
  }
  const torch::Tensor positions =
      at::arange(seq, at::TensorOptions().dtype(at::kLong).device(input_ids.device()));
  torch::Tensor hidden = wte(input_ids) + wpe(positions);
  hidden = at::dropout(hidden, config_.embd_pdrop, is_training());
  // sdpa takes the mask in q's dtype; building it there keeps the lowest value finite (float32's
  // lowest rounds to -inf in bfloat16).
  const c10::ScalarType bias_dtype =
      config_.attn_implementation == "sdpa" && compute_dtype_ != c10::ScalarType::Undefined
          ? compute_dtype_
          : hidden.scalar_type();
  const torch::Tensor attn_bias =
      Gpt2AttentionBias(attention_mask, batch, seq, bias_dtype, hidden.device());
  const bool checkpoint = gradient_checkpointing_ && is_training() && at::GradMode::is_enabled();
  for (Gpt2Block& block : blocks_) {
    if (checkpoint) {
      Gpt2Block held = block;  // the autograd graph keeps the block alive until backward
      hidden = CheckpointedCall(
          [held](const torch::Tensor& x, const torch::Tensor& bias) mutable {
            return held->forward(x, bias);
          },
          hidden, attn_bias, block->parameters());
    } else {
      hidden = block->forward(hidden, attn_bias);
    }
  }
  return ln_f(hidden);
}

void Gpt2ModelImpl::set_compute_dtype(c10::ScalarType dtype) {
  compute_dtype_ = dtype;
  // A frozen token embedding is only gathered and added to the float32 residual stream, which the
  // add does by type promotion: in a half-width compute dtype it takes half the memory (103 MB, not
  // 206 MB, at GPT-2's vocabulary) and rounds each input once, as the linear layers round theirs.
  // wpe stays float32: 4 MB at 1,024 positions, where a second half-width operand would make the
  // sum itself half-width.
  if (!wte->weight.requires_grad()) {
    const bool half_width = dtype == at::kBFloat16 || dtype == at::kHalf;
    torch::NoGradGuard no_grad;
    wte->weight.set_data(wte->weight.to(half_width ? dtype : at::kFloat));
  }
  for (Gpt2Block& block : blocks_) {
    block->attn->c_attn->set_compute_dtype(dtype);
    block->attn->c_proj->set_compute_dtype(dtype);
    block->mlp->c_fc->set_compute_dtype(dtype);
    block->mlp->c_proj->set_compute_dtype(dtype);
  }
}

void Gpt2ModelImpl::LoadHfWeights(const std::map<std::string, torch::Tensor>& weights) {
  const std::vector<HfSlot> slots = HfSlots(*this);
  std::vector<std::string> missing;
  std::vector<std::string> wrong_shape;
  std::vector<std::string> unexpected;
  std::set<std::string> known;
  for (const HfSlot& slot : slots) {
    known.insert(slot.name);
    if (!slot.target.defined()) {
      Fail(ErrorCode::kInvalidArgument,
           "LoadHfWeights: " + slot.name +
               " is no longer a dense parameter (its base was replaced by a FrozenWeight); load "
               "pretrained weights before ReplaceFrozenBaseWeights");
    }
    auto it = weights.find(slot.name);
    if (it == weights.end()) {
      missing.push_back(slot.name);
      continue;
    }
    const torch::Tensor& source = it->second;
    const torch::Tensor expected = slot.conv1d != nullptr ? slot.target.t() : slot.target;
    if (!source.defined() || source.sizes() != expected.sizes()) {
      wrong_shape.push_back(slot.name + " is " +
                            (source.defined() ? ShapeString(source.sizes()) : "undefined") +
                            ", expected " + ShapeString(expected.sizes()));
    }
  }
  for (const auto& item : weights) {
    if (known.count(item.first) == 0 && !IgnoredHfName(item.first))
      unexpected.push_back(item.first);
  }
  if (!missing.empty() || !wrong_shape.empty() || !unexpected.empty()) {
    std::string message = "GPT-2 weights do not match the config (n_layer " +
                          std::to_string(config_.n_layer) + ", n_embd " +
                          std::to_string(config_.n_embd) + ", vocab_size " +
                          std::to_string(config_.vocab_size) + ", n_positions " +
                          std::to_string(config_.n_positions) + "):";
    if (!missing.empty()) message += " missing: " + JoinFirst(missing, 8) + ";";
    if (!wrong_shape.empty()) message += " wrong shape: " + JoinFirst(wrong_shape, 8) + ";";
    if (!unexpected.empty()) message += " unexpected: " + JoinFirst(unexpected, 8) + ";";
    message += " check that config.json belongs to this checkpoint";
    Fail(missing.empty() ? ErrorCode::kInvalidArgument : ErrorCode::kNotFound, message);
  }
  torch::NoGradGuard no_grad;
  for (const HfSlot& slot : slots) {
    const torch::Tensor& source = weights.at(slot.name);
    slot.target.copy_(slot.conv1d != nullptr ? source.t() : source);
  }
}

std::map<std::string, torch::Tensor> Gpt2ModelImpl::HfWeights() const {
  std::map<std::string, torch::Tensor> out;
  for (const HfSlot& slot : HfSlots(*this)) {
    if (slot.conv1d != nullptr) {
      out[slot.name] = slot.conv1d->BaseWeight(at::kFloat).t().contiguous();
    } else {
      out[slot.name] = slot.target.detach().to(at::kFloat).contiguous();
    }
  }
  return out;
}

}  // namespace hpsearch::core
