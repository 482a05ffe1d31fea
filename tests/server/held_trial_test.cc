// HeldTrial keeps an ended trial serialised: what it gives back must be the trial it was given.
#include "server/held_trial.h"

#include <google/protobuf/util/message_differencer.h>
#include <malloc.h>

#include <catch2/catch.hpp>
#include <memory>
#include <vector>

namespace hpsearch::server {
namespace {

using google::protobuf::util::MessageDifferencer;

// An ended trial as a command runner's study leaves it: every kind of field set.
v1::Trial EndedTrial(int number) {
  v1::Trial trial;
  trial.set_study_id("st-0123456789abcdef0123456789abcdef");
  trial.set_number(number);
  trial.set_kind(v1::TRIAL_KIND_SEARCH);
  trial.set_state(v1::TRIAL_STATE_COMPLETE);
  trial.set_attempt(2);
  trial.set_seed(0x1234567890ull + number);
  v1::ParamAssignment* lr = trial.add_params();
  lr->set_name("learning_rate");
  lr->mutable_value()->set_double_value(3e-4);
  v1::EpochMetrics* epoch = trial.add_epochs();
  epoch->set_epoch(1);
  epoch->set_val_accuracy(0.5);
  epoch->set_val_loss(1.0);
  (*epoch->mutable_extra())["tokens"] = 1234;
  trial.mutable_result()->mutable_train()->set_train_loss(0.25);
  trial.set_objective_value(0.5);
  trial.set_worker_id("soak-12");
  trial.set_error("first attempt: lease expired");
  trial.set_created_unix_ms(1'700'000'000'000 + number);
  trial.set_started_unix_ms(1'700'000'000'100 + number);
  trial.set_ended_unix_ms(1'700'000'000'200 + number);
  trial.set_source_trial_number(-1);
  trial.add_attempts()->set_attempt(1);
  return trial;
}

TEST_CASE("A packed trial keeps its scalar fields in the head and gives back the whole trial",
          "[server][held_trial]") {
  const v1::Trial original = EndedTrial(7);
  HeldTrial held(original);
  CHECK_FALSE(held.packed());
  CHECK(MessageDifferencer::Equals(held.head(), original));

  held.PackIfEnded();
  REQUIRE(held.packed());
  const v1::Trial& head = held.head();
  CHECK(head.number() == 7);
  CHECK(head.kind() == v1::TRIAL_KIND_SEARCH);
  CHECK(head.state() == v1::TRIAL_STATE_COMPLETE);
  CHECK(head.attempt() == 2);
  CHECK(head.seed() == original.seed());
  REQUIRE(head.has_objective_value());
  CHECK(head.objective_value() == 0.5);
  CHECK(head.ended_unix_ms() == original.ended_unix_ms());
  CHECK(head.source_trial_number() == -1);
  // What allocates is in the serialised form only.
  CHECK(head.study_id().empty());
  CHECK(head.params_size() == 0);
  CHECK(head.epochs_size() == 0);
  CHECK_FALSE(head.has_result());
  CHECK(head.error().empty());
  CHECK(head.attempts_size() == 0);

  CHECK(MessageDifferencer::Equals(held.Full(), original));
}

TEST_CASE("A changed packed trial is unpacked whole and packs again with the change",
          "[server][held_trial]") {
  HeldTrial held(EndedTrial(3));
  held.Pack();
  v1::Trial& trial = held.Mutable();
  CHECK_FALSE(held.packed());
  CHECK(trial.params_size() == 1);
  CHECK(trial.epochs(0).extra().at("tokens") == 1234);
  trial.mutable_result()->mutable_test()->set_test_accuracy(0.75);
  trial.set_error("");
  held.Pack();
  const v1::Trial whole = held.Full();
  CHECK(whole.result().test().test_accuracy() == 0.75);
  CHECK(whole.result().train().train_loss() == 0.25);
  CHECK(whole.error().empty());
  CHECK(whole.params(0).name() == "learning_rate");
}

TEST_CASE("Only a trial in an end state is packed by PackIfEnded", "[server][held_trial]") {
  for (v1::TrialState state : {v1::TRIAL_STATE_WAITING, v1::TRIAL_STATE_RUNNING}) {
    v1::Trial trial = EndedTrial(1);
    trial.set_state(state);
    HeldTrial held(trial);
    held.PackIfEnded();
    CHECK_FALSE(held.packed());
    CHECK(held.head().params_size() == 1);
  }
  for (v1::TrialState state :
       {v1::TRIAL_STATE_COMPLETE, v1::TRIAL_STATE_PRUNED, v1::TRIAL_STATE_FAILED}) {
    v1::Trial trial = EndedTrial(1);
    trial.set_state(state);
    HeldTrial held(trial);
    held.PackIfEnded();
    CHECK(held.packed());
    CHECK(held.head().state() == state);
  }
}

// The reason it exists: a study holds every trial for its whole life.
TEST_CASE("Packed trials hold under half the heap of parsed ones", "[server][held_trial]") {
  constexpr int kTrials = 2000;
  auto heap_of = [](bool pack) {
    auto trials = std::make_unique<std::vector<HeldTrial>>();
    trials->reserve(kTrials);
    const size_t reserved = mallinfo2().uordblks;
    for (int i = 0; i < kTrials; ++i) {
      trials->emplace_back(EndedTrial(i));
      if (pack) trials->back().Pack();
    }
    const size_t held = mallinfo2().uordblks - reserved;
    return static_cast<double>(held) / kTrials;
  };
  const double parsed = heap_of(false);
  const double packed = heap_of(true);
  INFO("heap per trial: parsed " << parsed << " B, packed " << packed << " B");
  CHECK(parsed > 0);
  CHECK(packed < 0.5 * parsed);
}

}  // namespace
}  // namespace hpsearch::server
