#include "server/study_file/study_file.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/status/status.h"
#include "server/study_file/study_view.h"
#include "server/study_file/study_yaml.h"

namespace hpsearch::server {
namespace {

namespace fs = std::filesystem;

std::string Resolve(const std::string& base_dir, const std::string& path) {
  if (path.empty() || fs::path(path).is_absolute()) return path;
  return (fs::path(base_dir) / path).lexically_normal().string();
}

void ResolvePaths(const std::string& base_dir, v1::StudySpec* spec) {
  v1::ModelSpec* model = spec->mutable_model();
  if (model->has_path()) model->set_path(Resolve(base_dir, model->path()));
  model->set_tokenizer(Resolve(base_dir, model->tokenizer()));
  v1::DataSpec* data = spec->mutable_data();
  data->set_train_file(Resolve(base_dir, data->train_file()));
  data->set_validation_file(Resolve(base_dir, data->validation_file()));
  data->set_test_file(Resolve(base_dir, data->test_file()));
  spec->set_artifacts_root(Resolve(base_dir, spec->artifacts_root()));
  v1::RunnerSpec* runner = spec->mutable_runner();
  if (runner->type() == v1::RUNNER_TYPE_COMMAND && runner->working_dir().empty()) {
    runner->set_working_dir(base_dir);
  }
  runner->set_working_dir(Resolve(base_dir, runner->working_dir()));
}

// The position of the closest written ancestor of a dotted path ("a.b[2].c" → "a.b[2]" → "a.b" →
// "a").
internal::YamlPosition Locate(const std::map<std::string, internal::YamlPosition>& positions,
                              std::string field) {
  while (!field.empty()) {
    auto it = positions.find(field);
    if (it != positions.end()) return it->second;
    size_t cut = field.find_last_of(".[");
    if (cut == std::string::npos) break;
    field.resize(cut);
  }
  return {1, 1};
}

// A search parameter overrides the fixed value of the same name in every trial; say so when the
// file also writes that value, which the spec alone cannot tell once defaults are filled in.
void WarnAboutOverrides(const v1::StudySpec& spec,
                        const std::map<std::string, internal::YamlPosition>& positions,
                        const std::string& display_name, std::vector<StudyFileIssue>* issues) {
  static const std::map<std::string, std::string> kLoraKeys = {
      {"lora_r", "fine_tune.lora.r"},
      {"lora_alpha", "fine_tune.lora.alpha"},
      {"lora_dropout", "fine_tune.lora.dropout"}};
  for (const v1::ParameterSpec& p : spec.search_space()) {
    auto lora = kLoraKeys.find(p.name());
    const std::string fixed = lora != kLoraKeys.end() ? lora->second : "training." + p.name();
    if (positions.count(fixed) == 0) continue;
    const std::string field = "search_space." + p.name();
    internal::YamlPosition at = Locate(positions, field);
    issues->push_back({ValidationIssue::Severity::kWarning, display_name, at.line, at.column, field,
                       "overrides " + fixed + " in every trial"});
  }
}

}  // namespace

std::string StudyFileIssue::ToString() const {
  std::ostringstream out;
  out << file;
  if (line > 0) out << ":" << line << ":" << column;
  out << ": " << (severity == ValidationIssue::Severity::kError ? "error" : "warning") << ": ";
  if (!field.empty()) out << field << ": ";
  out << message;
  return out.str();
}

bool LoadedStudy::ok() const {
  for (const StudyFileIssue& issue : issues) {
    if (issue.severity == ValidationIssue::Severity::kError) return false;
  }
  return true;
}

LoadedStudy ParseStudyYaml(const std::string& yaml_text, const std::string& display_name,
                           const std::string& base_dir, const ValidationOptions& options) {
  LoadedStudy loaded;
  internal::YamlParseResult parsed = internal::ParseStudyYamlText(yaml_text);
  for (const internal::YamlParseError& e : parsed.errors) {
    loaded.issues.push_back({ValidationIssue::Severity::kError, display_name, e.position.line,
                             e.position.column, e.field, e.message});
  }
  if (!parsed.errors.empty()) return loaded;
  loaded.spec = std::move(parsed.spec);
  ResolvePaths(base_dir, &loaded.spec);
  for (const ValidationIssue& issue : NormalizeStudySpec(&loaded.spec, options)) {
    internal::YamlPosition at = Locate(parsed.positions, issue.field);
    loaded.issues.push_back(
        {issue.severity, display_name, at.line, at.column, issue.field, issue.message});
  }
  if (UsesBuiltInTrainer(loaded.spec)) {
    WarnAboutOverrides(loaded.spec, parsed.positions, display_name, &loaded.issues);
  }
  return loaded;
}

absl::StatusOr<LoadedStudy> LoadStudyFile(const std::string& path,
                                          const ValidationOptions& options) {
  std::error_code error;
  if (fs::is_directory(path, error)) {
    return absl::InvalidArgumentError("'" + path +
                                      "' is a folder, not a study file: name the YAML or JSON file "
                                      "in it (e.g. " +
                                      (fs::path(path) / "study.yaml").string() + ")");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError("cannot open study file '" + path + "': check the path");
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return absl::DataLossError("cannot read study file '" + path + "'");
  std::string base_dir = fs::absolute(fs::path(path)).parent_path().lexically_normal().string();
  return ParseStudyYaml(text.str(), path, base_dir, options);
}

std::string StudySpecToYaml(const v1::StudySpec& spec) { return internal::EmitStudyYaml(spec); }

}  // namespace hpsearch::server
