#include "core/training_checkpoint.h"

#include <ATen/CPUGeneratorImpl.h>
#include <fcntl.h>
#include <torch/serialize.h>
#include <unistd.h>

#include <filesystem>
#include <mutex>

#include "core/error.h"

namespace hpsearch::core {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kFormatVersion = 2;  // 2: FlatAdamW optimizer state
constexpr char kFileName[] = "trainer-checkpoint.pt";

void FsyncPath(const fs::path& path, bool directory) {
  int fd = ::open(path.c_str(), directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
  if (fd < 0) Fail(ErrorCode::kIo, "cannot open " + path.string() + " to sync it");
  const bool ok = ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) Fail(ErrorCode::kIo, "cannot sync " + path.string());
}

torch::Tensor Scalar(double value) { return torch::tensor(value, torch::kFloat64); }

// The version check and every TrainingState field.
void ReadState(torch::serialize::InputArchive& archive, const fs::path& path,
               TrainingState* state) {
  // InputArchive::read copies into a defined tensor (converting its dtype), so each read gets a
  // new one.
  auto read = [&archive](const char* key) {
    torch::Tensor value;
    archive.read(key, value);
    return value;
  };
  const int64_t version = read("version").item<int64_t>();
  if (version != kFormatVersion) {
    Fail(ErrorCode::kDataLoss, path.string() + ": checkpoint format version " +
                                   std::to_string(version) + ", expected " +
                                   std::to_string(kFormatVersion) + "; delete it to start over");
  }
  state->epochs_done = read("epochs_done").item<int64_t>();
  state->global_step = read("global_step").item<int64_t>();
  state->loss_sum = read("loss_sum").item<double>();
  state->total_flos = read("total_flos").item<double>();
  state->runtime_seconds = read("runtime_seconds").item<double>();
  // Tag and epoch results are absent from checkpoints written before they existed.
  c10::IValue value;
  state->tag = archive.try_read("tag", value) && value.isString() ? value.toStringRef() : "";
  state->epochs_json =
      archive.try_read("epochs_json", value) && value.isString() ? value.toStringRef() : "[]";
}
torch::Tensor Scalar(int64_t value) { return torch::tensor(value, torch::kInt64); }

}  // namespace

void SaveTrainingCheckpoint(const std::string& dir, const torch::nn::Module& model,
                            torch::optim::Optimizer& optimizer, const TrainingState& state) {
  const fs::path final_path = fs::path(dir) / kFileName;
  const fs::path temp_path = fs::path(dir) / (std::string(kFileName) + ".tmp");
  try {
    fs::create_directories(dir);
    torch::serialize::OutputArchive archive;
    archive.write("version", Scalar(kFormatVersion));
    archive.write("epochs_done", Scalar(state.epochs_done));
    archive.write("global_step", Scalar(state.global_step));
    archive.write("loss_sum", Scalar(state.loss_sum));
    archive.write("total_flos", Scalar(state.total_flos));
    archive.write("runtime_seconds", Scalar(state.runtime_seconds));
    archive.write("tag", c10::IValue(state.tag));
    archive.write("epochs_json", c10::IValue(state.epochs_json));
    {
      at::Generator generator = at::detail::getDefaultCPUGenerator();
      std::lock_guard<std::mutex> lock(generator.mutex());
      archive.write("cpu_rng_state", generator.get_state());
    }
    torch::serialize::OutputArchive weights;
    for (const auto& item : model.named_parameters()) {
      if (item.value().requires_grad()) weights.write(item.key(), item.value().detach());
    }
    archive.write("trainable", weights);
    torch::serialize::OutputArchive optimizer_archive;
    optimizer.save(optimizer_archive);
    archive.write("optimizer", optimizer_archive);
    archive.save_to(temp_path.string());
    FsyncPath(temp_path, false);
    fs::rename(temp_path, final_path);
    FsyncPath(dir, true);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    Fail(ErrorCode::kIo,
         "cannot write training checkpoint " + final_path.string() + ": " + e.what());
  }
}

bool LoadTrainingCheckpoint(const std::string& dir, torch::nn::Module& model,
                            torch::optim::Optimizer& optimizer, TrainingState* state) {
  const fs::path path = fs::path(dir) / kFileName;
  if (!fs::exists(path)) return false;
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(path.string());
    ReadState(archive, path, state);
    torch::serialize::InputArchive weights;
    archive.read("trainable", weights);
    torch::NoGradGuard no_grad;
    for (auto& item : model.named_parameters()) {
      if (!item.value().requires_grad()) continue;
      torch::Tensor saved;
      if (!weights.try_read(item.key(), saved)) {
        Fail(ErrorCode::kDataLoss,
             path.string() + ": no saved tensor for trainable parameter " + item.key() +
                 "; the checkpoint is from another model: delete it to start over");
      }
      if (!saved.sizes().equals(item.value().sizes())) {
        Fail(ErrorCode::kDataLoss,
             path.string() + ": tensor " + item.key() + " has another shape than the model's");
      }
      item.value().copy_(saved);
    }
    torch::serialize::InputArchive optimizer_archive;
    archive.read("optimizer", optimizer_archive);
    optimizer.load(optimizer_archive);
    torch::Tensor rng;
    archive.read("cpu_rng_state", rng);
    at::Generator generator = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(generator.mutex());
    generator.set_state(rng);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    Fail(ErrorCode::kDataLoss, "cannot read training checkpoint " + path.string() + ": " +
                                   e.what() + "; delete it to start over");
  }
  return true;
}

bool PeekTrainingCheckpoint(const std::string& dir, TrainingState* state) {
  const fs::path path = fs::path(dir) / kFileName;
  if (!fs::exists(path)) return false;
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(path.string());
    ReadState(archive, path, state);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    Fail(ErrorCode::kDataLoss, "cannot read training checkpoint " + path.string() + ": " +
                                   e.what() + "; delete it to start over");
  }
  return true;
}

}  // namespace hpsearch::core
