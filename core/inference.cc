#include "core/inference.h"

#include <ATen/ATen.h>
#include <torch/types.h>

#include "core/batching.h"
#include "core/error.h"

namespace hpsearch::core {

at::Tensor ClassifyTexts(Gpt2ForSequenceClassificationImpl& model, const Gpt2Tokenizer& tokenizer,
                         const std::vector<std::string>& texts, int64_t max_length,
                         int64_t batch_size, const std::string& source) {
  if (max_length < 1) {
    Fail(ErrorCode::kInvalidArgument,
         "max_length is " + std::to_string(max_length) + "; texts need at least 1 token");
  }
  tokenizer.RequireFitsModel(model.options().config.vocab_size, "the model");
  TokenizedDataset data;
  data.source = source;
  data.max_length = max_length;
  data.pad_token_id = tokenizer.eos_token_id();
  for (size_t i = 0; i < texts.size(); ++i) {
    TokenizedExample example;
    example.ids = tokenizer.Encode(texts[i]);
    example.untruncated_length = static_cast<int64_t>(example.ids.size());
    if (example.ids.empty()) {
      Fail(ErrorCode::kInvalidArgument,
           source + ": text " + std::to_string(i + 1) +
               " (counting non-blank lines) is empty after tokenisation; every text needs at "
               "least one token");
    }
    if (static_cast<int64_t>(example.ids.size()) > max_length)
      example.ids.resize(static_cast<size_t>(max_length));
    example.line = static_cast<int64_t>(i + 1);
    data.examples.push_back(std::move(example));
  }
  const int64_t num_labels = model.options().config.num_labels;
  at::Tensor logits = at::zeros({data.size(), num_labels}, at::kFloat);
  if (data.size() == 0) return logits;
  model.eval();
  torch::NoGradGuard no_grad;
  BatchOptions batching;
  batching.batch_size = batch_size;
  batching.shuffle = false;
  for (const std::vector<int64_t>& indices : PlanBatches(data, batching, 0)) {
    TokenBatch batch = CollateBatch(data, indices);
    at::Tensor out = model.forward(batch.input_ids, batch.attention_mask, batch.last_token_index)
                         .to(at::kFloat)
                         .to(at::kCPU);
    logits.index_copy_(0, at::tensor(indices, at::kLong), out);
  }
  return logits;
}

}  // namespace hpsearch::core
