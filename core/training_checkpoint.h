// The trainer's resumable state after a finished epoch: trainable weights, optimizer state, step,
// the default CPU generator's state (dropout), running totals, the tag of the run it belongs to and
// the finished epochs' results. Written atomically (temporary file, fsync, rename) as
// DIR/trainer-checkpoint.pt, with a format version; frozen weights are not saved (they are rebuilt
// from the model source). Checkpoints written before tags existed read back with an empty tag and
// no epoch results.
#pragma once

#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>

#include <cstdint>
#include <string>

namespace hpsearch::core {

struct TrainingState {
  int64_t epochs_done = 0;
  int64_t global_step = 0;
  double loss_sum = 0;  // sum of step losses so far
  double total_flos = 0;
  double runtime_seconds = 0;      // wall time of the finished epochs, evaluation included
  std::string tag;                 // the run it belongs to (TrainerOptions::checkpoint_tag)
  std::string epochs_json = "[]";  // the finished epochs' results, a JSON array (trainer.cc)
};

// Saves the state. Throws core::Error(kIo) naming the file when it cannot be written.
void SaveTrainingCheckpoint(const std::string& dir, const torch::nn::Module& model,
                            torch::optim::Optimizer& optimizer, const TrainingState& state);

// Restores a checkpoint written by SaveTrainingCheckpoint into model, optimizer and *state, and the
// default CPU generator. Returns false when DIR holds none. Throws core::Error(kDataLoss) naming
// the file when it is unreadable, of another version, or does not match the model's trainable
// parameters.
bool LoadTrainingCheckpoint(const std::string& dir, torch::nn::Module& model,
                            torch::optim::Optimizer& optimizer, TrainingState* state);

// The state of the checkpoint in DIR without touching any model (to decide whether to resume it),
// or false when DIR holds none. Throws core::Error(kDataLoss) as LoadTrainingCheckpoint.
bool PeekTrainingCheckpoint(const std::string& dir, TrainingState* state);

}  // namespace hpsearch::core
