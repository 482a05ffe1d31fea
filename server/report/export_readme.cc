#include "server/report/export_readme.h"

#include <optional>

#include <cctype>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "server/report/report_format.h"
#include "server/study_file/study_view.h"

namespace hpsearch::server {
namespace {

std::string Figure(bool has, double value) { return has ? absl::StrFormat("%.4f", value) : "—"; }

std::string MethodWord(v1::FineTuneMethod method) {
  switch (method) {
    case v1::FINE_TUNE_METHOD_LORA:
      return "lora";
    case v1::FINE_TUNE_METHOD_FULL:
      return "full";
    default:
      return "qlora";
  }
}

// The shell-quoted form of a path for the commands shown.
std::string Quoted(const std::string& path) {
  for (char c : path) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '/' || c == '.' || c == '-' ||
          c == '_')) {
      std::string quoted = "'";
      for (char d : path) quoted += d == '\'' ? std::string("'\\''") : std::string(1, d);
      return quoted + "'";
    }
  }
  return path;
}

}  // namespace

std::string RenderExportReadme(const ExportedArtifact& e) {
  const v1::StudySpec& spec = e.study.spec();
  const v1::Trial& trial = e.trial;
  const bool final = trial.kind() == v1::TRIAL_KIND_FINAL;
  const v1::FineTuneMethod method = spec.fine_tune().method();
  const bool random_init = spec.model().has_random_init();
  const std::string base = random_init ? "random_init" : spec.model().path();
  std::string out;
  bool converted = false;
  const bool reused = final && FinalTrialReused(spec, trial, &converted);
  absl::StrAppend(&out, "# ", spec.name(), ": trial ", trial.number(),
                  !final   ? ""
                  : reused ? " (the final stage)"
                           : " (the final retrain)",
                  "\n\n");
  absl::StrAppend(&out, "Exported by `hpsearch export` from study `", spec.name(), "` (`",
                  e.study.id(), "`), trial ", trial.number(), ", attempt ", e.attempt, ".\n\n");

  absl::StrAppend(&out, "## How it was trained\n\n");
  if (reused) {
    absl::StrAppend(&out, "- **Trial**: the final stage reused trial ", trial.source_trial_number(),
                    "'s model instead of retraining it",
                    converted ? ": a retrain on the same data with the same seed would repeat it "
                                "exactly"
                              : " (`retrain_on: reuse`)",
                    "; it was evaluated on the test set. This is search trial ",
                    trial.source_trial_number(), "'s model, trained on the training split\n");
  } else if (final) {
    absl::StrAppend(&out, "- **Trial**: the final stage: search trial ",
                    trial.source_trial_number(),
                    " (the best) retrained with the same parameters and seed",
                    spec.final_stage().retrain_on() == v1::RETRAIN_ON_TRAIN_VALIDATION
                        ? " on train + validation"
                        : " on the training split",
                    ", then evaluated on the test set\n");
  } else {
    absl::StrAppend(&out, "- **Trial**: search trial ", trial.number(), "\n");
  }
  absl::StrAppend(&out, "- **Fine-tuning**: ", MethodWord(method));
  if (method != v1::FINE_TUNE_METHOD_FULL) {
    const v1::LoraSpec& lora = spec.fine_tune().lora();
    absl::StrAppend(&out, " (LoRA r ", lora.r(), ", alpha ", lora.alpha(), ", dropout ",
                    lora.dropout(), ", target modules ", absl::StrJoin(lora.target_modules(), ", "),
                    ")");
  }
  absl::StrAppend(&out, "\n");
  if (random_init) {
    const v1::RandomInitArchitecture& a = spec.model().random_init();
    absl::StrAppend(&out, "- **Base model**: a randomly initialised GPT-2 (", a.n_layer(),
                    " layers, ", a.n_embd(), " wide, ", a.n_head(),
                    " heads), rebuilt from the seed below: it has no pretrained weights\n");
  } else {
    absl::StrAppend(&out, "- **Base checkpoint**: `", base, "`\n");
  }
  absl::StrAppend(&out, "- **Tokenizer**: `",
                  spec.model().tokenizer().empty() ? base : spec.model().tokenizer(),
                  "` (a copy is in this folder)\n");
  absl::StrAppend(
      &out, "- **Data**: train `", spec.data().train_file(), "`",
      spec.data().validation_file().empty()
          ? absl::StrFormat(" (%.0f%% split off for validation)",
                            100 * spec.data().validation_fraction())
          : absl::StrCat(", validation `", spec.data().validation_file(), "`"),
      spec.data().test_file().empty() ? "" : absl::StrCat(", test `", spec.data().test_file(), "`"),
      "; texts cut to ", spec.data().max_length(), " tokens\n");
  absl::StrAppend(&out, "- **Seed**: ", trial.seed(), "\n");
  absl::StrAppend(&out, "- **Parameters**:\n");
  for (const v1::ParamAssignment& p : trial.params()) {
    absl::StrAppend(&out, "  - ", TitleCase(p.name()), " (`", p.name(),
                    "`): ", ParamValueText(p.value()), "\n");
  }

  absl::StrAppend(&out, "\n## Metrics\n\n");
  absl::StrAppend(&out, "| Epoch | Training Loss | Validation Loss | Accuracy | F1 (weighted) |\n");
  absl::StrAppend(&out, "|-------|---------------|-----------------|----------|---------------|\n");
  for (const v1::EpochMetrics& m : trial.epochs()) {
    absl::StrAppend(&out, "| ", m.epoch(), " | ", Figure(m.has_train_loss(), m.train_loss()), " | ",
                    Figure(m.has_val_loss(), m.val_loss()), " | ",
                    Figure(m.has_val_accuracy(), m.val_accuracy()), " | ",
                    Figure(m.has_val_f1(), m.val_f1()), " |\n");
  }
  const v1::TrainSummary& train = trial.result().train();
  if (train.global_steps() > 0) {
    absl::StrAppend(&out, "\nTraining: ", train.global_steps(), " steps, ", train.epochs(),
                    " epochs, mean loss ", absl::StrFormat("%.4f", train.train_loss()), ", ",
                    absl::StrFormat("%.1f", train.runtime_seconds()), " s, ",
                    absl::StrFormat("%.1f", train.samples_per_second()), " samples/s.\n");
  }
  if (trial.result().has_test()) {
    const v1::TestMetrics& t = trial.result().test();
    absl::StrAppend(&out, "\nTest set: loss ", Figure(t.has_test_loss(), t.test_loss()),
                    ", accuracy ", Figure(t.has_test_accuracy(), t.test_accuracy()),
                    ", F1 weighted ", Figure(t.has_test_f1(), t.test_f1()), ", F1 macro ",
                    Figure(t.has_test_f1_macro(), t.test_f1_macro()), ".\n");
  }

  absl::StrAppend(&out, "\n## Files\n\n| file | bytes | sha256 |\n|---|---|---|\n");
  for (const transfer::ArtifactFile& f : e.files) {
    absl::StrAppend(&out, "| `", f.name, "` | ", f.bytes, " | `", f.sha256, "` |\n");
  }
  absl::StrAppend(&out, "| `README.md` | | this file |\n");
  absl::StrAppend(&out,
                  "\n`hpsearch_model.json` names the classes in id order and the architecture; "
                  "`metrics.json` holds the figures above as JSON.\n");

  const std::string dir = Quoted(e.dir);
  absl::StrAppend(&out,
                  "\n## Using it\n\nWith `hpsearch-core predict` (one JSON object per line in "
                  "and out):\n\n```sh\n");
  absl::StrAppend(&out, "echo '{\"text\": \"my card has not arrived yet\"}' > texts.jsonl\n");
  absl::StrAppend(&out, "hpsearch-core predict --adapter ", dir,
                  " --input texts.jsonl --max-length ", spec.data().max_length());
  if (!random_init && method != v1::FINE_TUNE_METHOD_FULL) {
    absl::StrAppend(&out, " \\\n    --model ", Quoted(base),
                    "   # the base checkpoint; pass "
                    "where it lives on this machine");
  }
  absl::StrAppend(&out,
                  "\n```\n\nEach output line holds `label`, `label_id`, `probability` and "
                  "`probabilities` (in label id order).\n\n");
  if (method == v1::FINE_TUNE_METHOD_FULL) {
    absl::StrAppend(
        &out,
        "With transformers (the folder is a whole `GPT2ForSequenceClassification` checkpoint):\n\n"
        "```python\nfrom transformers import AutoModelForSequenceClassification, "
        "GPT2TokenizerFast\n",
        "model = AutoModelForSequenceClassification.from_pretrained(\"", e.dir, "\")\n",
        "tokenizer = GPT2TokenizerFast.from_pretrained(\"", e.dir, "\")\n```\n");
  } else if (random_init) {
    absl::StrAppend(&out,
                    "PEFT needs the base model's weights, and this base was random: only "
                    "`hpsearch-core predict` can rebuild it (from the seed in "
                    "`hpsearch_model.json`).\n");
  } else {
    absl::StrAppend(
        &out,
        "With PEFT (the folder is a PEFT LoRA adapter with the classification head saved in "
        "`modules_to_save`):\n\n```python\nfrom transformers import "
        "AutoModelForSequenceClassification, GPT2TokenizerFast\nfrom peft import PeftModel\n",
        "base = AutoModelForSequenceClassification.from_pretrained(\"", base,
        "\", num_labels=NUM_LABELS)  # NUM_LABELS: the classes in hpsearch_model.json\n",
        "base.config.pad_token_id = 50256\n", "model = PeftModel.from_pretrained(base, \"", e.dir,
        "\")\n", "tokenizer = GPT2TokenizerFast.from_pretrained(\"", e.dir, "\")\n```\n");
    if (method == v1::FINE_TUNE_METHOD_QLORA) {
      absl::StrAppend(&out,
                      "\nIt was trained over NF4-quantised base weights (QLoRA); load the base "
                      "with `BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=\"nf4\")` "
                      "to match, or in full precision for a close approximation.\n");
    }
  }
  return out;
}

}  // namespace hpsearch::server
