#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <set>

#include "google/protobuf/descriptor.h"
#include "google/protobuf/reflection.h"
#include "server/study_file/study_yaml.h"
#include "server/study_file/validation_context.h"
#include "yaml-cpp/yaml.h"

namespace hpsearch::server::internal {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::EnumDescriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

std::string UpperSnake(const std::string& camel) {
  std::string out;
  for (size_t i = 0; i < camel.size(); ++i) {
    char c = camel[i];
    if (std::isupper(static_cast<unsigned char>(c)) && i > 0) out += '_';
    out += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return out;
}

bool IsQuoted(const YAML::Node& node) {
  return node.Tag() == "!" || node.Tag() == "tag:yaml.org,2002:str";
}

// A scalar as an error message quotes it: control bytes escaped, and a quoted number or boolean
// called what it is, since `low: "1"` reads as text, not as the number it looks like.
std::string Got(const std::string& scalar, bool quoted) {
  std::string shown;
  for (unsigned char c : scalar.substr(0, 80)) {
    if (c < 0x20 || c == 0x7f) {
      char escaped[8];
      std::snprintf(escaped, sizeof(escaped), "\\x%02x", c);
      shown += escaped;
    } else {
      shown += static_cast<char>(c);
    }
  }
  if (scalar.size() > 80) shown += "...";
  if (!quoted) return "'" + shown + "'";
  return "the quoted text \"" + shown + "\" (quotes make a value text: write numbers and true/false "
         "without them)";
}

bool ParseInt(const std::string& s, int64_t* out) {
  if (s.empty()) return false;
  size_t i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
  if (i == s.size()) return false;
  for (size_t j = i; j < s.size(); ++j) {
    if (!std::isdigit(static_cast<unsigned char>(s[j]))) return false;
  }
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(s.c_str(), &end, 10);
  if (errno == ERANGE) return false;
  *out = v;
  return true;
}

bool ParseDouble(const std::string& s, double* out) {
  if (s == ".inf" || s == "+.inf" || s == ".Inf") return *out = HUGE_VAL, true;
  if (s == "-.inf" || s == "-.Inf") return *out = -HUGE_VAL, true;
  if (s == ".nan" || s == ".NaN") return *out = std::nan(""), true;
  if (s.empty() || std::isspace(static_cast<unsigned char>(s[0]))) return false;
  // strtod also reads "nan", "inf" and hex floats; YAML spells those differently, so refuse letters
  // other than an exponent.
  for (char c : s) {
    if (std::isalpha(static_cast<unsigned char>(c)) && c != 'e' && c != 'E') return false;
  }
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size()) return false;
  *out = v;
  return true;
}

bool ParseBool(const std::string& s, bool* out) {
  if (s == "true" || s == "True" || s == "TRUE") return *out = true, true;
  if (s == "false" || s == "False" || s == "FALSE") return *out = false, true;
  return false;
}

class Reader {
 public:
  explicit Reader(YamlParseResult* result) : result_(result) {}

  void ParseStudy(const YAML::Node& root) {
    if (!root.IsDefined() || root.IsNull()) {
      result_->errors.push_back(
          {"", {1, 1}, "the study file is empty: start with `name: my-study`"});
      return;
    }
    ParseMessage(root, &result_->spec, "");
  }

 private:
  YamlPosition At(const YAML::Node& node) const {
    YAML::Mark mark = node.Mark();
    return {mark.line + 1, mark.column + 1};
  }

  void Error(const YAML::Node& node, const std::string& field, const std::string& message) {
    result_->errors.push_back({field, At(node), message});
  }

  static std::string Join(const std::string& path, const std::string& key) {
    return path.empty() ? key : path + "." + key;
  }

  // Iterates a mapping, recording key positions and refusing duplicate and non-scalar keys.
  template <typename Fn>
  void ForEachKey(const YAML::Node& map, const std::string& path, Fn fn) {
    std::set<std::string> seen;
    for (auto it = map.begin(); it != map.end(); ++it) {
      if (!it->first.IsScalar()) {
        Error(it->first, path, "keys must be plain names");
        continue;
      }
      const std::string key = it->first.Scalar();
      const std::string field = Join(path, key);
      if (!seen.insert(key).second) {
        Error(it->first, field, "duplicate key '" + key + "': keep one");
        continue;
      }
      result_->positions.emplace(field, At(it->first));
      fn(key, it->first, it->second, field);
    }
  }

  void ParseMessage(const YAML::Node& node, Message* msg, const std::string& path) {
    const Descriptor* desc = msg->GetDescriptor();
    if (node.IsScalar() && ScalarShorthand(node, msg, path)) return;
    if (!node.IsMap()) {
      Error(node, path, std::string("expected a mapping of keys (") + FieldList(desc) + ")");
      return;
    }
    ForEachKey(node, path,
               [&](const std::string& key, const YAML::Node& key_node, const YAML::Node& value,
                   const std::string& field) {
                 const FieldDescriptor* f = desc->FindFieldByName(key);
                 if (f == nullptr) {
                   std::vector<std::string> names;
                   for (int i = 0; i < desc->field_count(); ++i)
                     names.push_back(desc->field(i)->name());
                   Error(key_node, field, "unknown key '" + key + "'" + SuggestAmong(key, names));
                   return;
                 }
                 if (value.IsNull()) {
                   Error(key_node, field, "has no value: give one or remove the key");
                   return;
                 }
                 ParseField(value, msg, f, field);
               });
  }

  // `model: DIR`, `runner: command`, `sampler: tpe`, `pruner: median`.
  bool ScalarShorthand(const YAML::Node& node, Message* msg, const std::string& path) {
    const std::string& type = msg->GetDescriptor()->full_name();
    if (type == "hpsearch.v1.ModelSpec") {
      static_cast<v1::ModelSpec*>(msg)->set_path(node.Scalar());
      return true;
    }
    if (type == "hpsearch.v1.RunnerSpec" || type == "hpsearch.v1.SamplerSpec" ||
        type == "hpsearch.v1.PrunerSpec") {
      ParseField(node, msg, msg->GetDescriptor()->FindFieldByName("type"), Join(path, "type"));
      result_->positions.emplace(Join(path, "type"), At(node));
      return true;
    }
    return false;
  }

  static std::string FieldList(const Descriptor* desc) {
    std::string list;
    for (int i = 0; i < desc->field_count() && i < 12; ++i) {
      list += (i ? ", " : "") + desc->field(i)->name();
    }
    return list;
  }

  void ParseField(const YAML::Node& value, Message* msg, const FieldDescriptor* f,
                  const std::string& field) {
    const std::string& owner = f->containing_type()->full_name();
    if (owner == "hpsearch.v1.StudySpec" && f->name() == "search_space") {
      return ParseSearchSpace(value, static_cast<v1::StudySpec*>(msg), field);
    }
    if (owner == "hpsearch.v1.StudySpec" && f->name() == "enqueue") {
      return ParseEnqueue(value, static_cast<v1::StudySpec*>(msg), field);
    }
    if (owner == "hpsearch.v1.RunnerSpec" && f->name() == "command" && value.IsScalar()) {
      std::vector<std::string> argv;
      if (!SplitCommandLine(value.Scalar(), &argv)) {
        return Error(value, field, "unterminated quote in the command line");
      }
      for (auto& arg : argv) static_cast<v1::RunnerSpec*>(msg)->add_command(arg);
      return;
    }
    if (f->is_map()) return ParseStringMap(value, msg, f, field);
    if (f->is_repeated()) {
      if (value.IsScalar()) return ParseSingular(value, msg, f, field, /*repeated=*/true);
      if (!value.IsSequence()) return Error(value, field, "expected a list, e.g. [a, b]");
      for (size_t i = 0; i < value.size(); ++i) {
        const std::string item = field + "[" + std::to_string(i) + "]";
        result_->positions.emplace(item, At(value[i]));
        ParseSingular(value[i], msg, f, item, /*repeated=*/true);
      }
      return;
    }
    ParseSingular(value, msg, f, field, /*repeated=*/false);
  }

  void ParseStringMap(const YAML::Node& value, Message* msg, const FieldDescriptor* f,
                      const std::string& field) {
    if (!value.IsMap()) return Error(value, field, "expected a mapping of NAME: value");
    const Reflection* r = msg->GetReflection();
    ForEachKey(value, field,
               [&](const std::string& key, const YAML::Node&, const YAML::Node& v,
                   const std::string& item) {
                 if (!v.IsScalar()) return Error(v, item, "expected a text value");
                 Message* entry = r->AddMessage(msg, f);
                 entry->GetReflection()->SetString(entry, entry->GetDescriptor()->field(0), key);
                 entry->GetReflection()->SetString(entry, entry->GetDescriptor()->field(1),
                                                   v.Scalar());
               });
  }

  void ParseSingular(const YAML::Node& value, Message* msg, const FieldDescriptor* f,
                     const std::string& field, bool repeated) {
    const Reflection* r = msg->GetReflection();
    if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      Message* child = repeated ? r->AddMessage(msg, f) : r->MutableMessage(msg, f);
      return ParseMessage(value, child, field);
    }
    if (!value.IsScalar())
      return Error(value, field, "expected a single value, not a list or mapping");
    const std::string& s = value.Scalar();
    const bool quoted = IsQuoted(value);
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_STRING:
        return repeated ? r->AddString(msg, f, s) : r->SetString(msg, f, s);
      case FieldDescriptor::CPPTYPE_BOOL: {
        bool b;
        if (quoted || !ParseBool(s, &b))
          return Error(value, field, "expected true or false, got " + Got(s, quoted));
        return repeated ? r->AddBool(msg, f, b) : r->SetBool(msg, f, b);
      }
      case FieldDescriptor::CPPTYPE_INT32:
      case FieldDescriptor::CPPTYPE_INT64:
      case FieldDescriptor::CPPTYPE_UINT64: {
        int64_t v;
        if (quoted || !ParseInt(s, &v))
          return Error(value, field, "expected a whole number, got " + Got(s, quoted));
        if (f->cpp_type() == FieldDescriptor::CPPTYPE_UINT64) {
          if (v < 0) return Error(value, field, "must not be negative");
          return r->SetUInt64(msg, f, static_cast<uint64_t>(v));
        }
        if (f->cpp_type() == FieldDescriptor::CPPTYPE_INT32) {
          if (v < INT32_MIN || v > INT32_MAX) return Error(value, field, "is out of range");
          return r->SetInt32(msg, f, static_cast<int32_t>(v));
        }
        return r->SetInt64(msg, f, v);
      }
      case FieldDescriptor::CPPTYPE_DOUBLE: {
        double d;
        const bool seconds =
            f->name().size() > 8 && f->name().compare(f->name().size() - 8, 8, "_seconds") == 0;
        if (!quoted && ParseDouble(s, &d)) return r->SetDouble(msg, f, d);
        if (seconds && ParseDurationSeconds(s, &d)) return r->SetDouble(msg, f, d);
        return Error(value, field,
                     seconds
                         ? "expected seconds or a duration such as 90s, 30m, 2h, got " +
                               Got(s, quoted && !ParseDurationSeconds(s, &d))
                         : "expected a number, got " + Got(s, quoted));
      }
      case FieldDescriptor::CPPTYPE_ENUM:
        return ParseEnum(value, msg, f, field);
      default:
        return Error(value, field, "unsupported field type");
    }
  }

  void ParseEnum(const YAML::Node& value, Message* msg, const FieldDescriptor* f,
                 const std::string& field) {
    const EnumDescriptor* e = f->enum_type();
    const std::string prefix = UpperSnake(e->name()) + "_";
    std::string wanted = value.Scalar();
    for (char& c : wanted)
      c = c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    std::vector<std::string> names;
    for (int i = 0; i < e->value_count(); ++i) {
      const std::string& full = e->value(i)->name();
      std::string short_name = full.substr(prefix.size());
      if (short_name == "UNSPECIFIED") continue;
      if (short_name == wanted)
        return msg->GetReflection()->SetEnumValue(msg, f, e->value(i)->number());
      for (char& c : short_name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      names.push_back(short_name);
    }
    Error(
        value, field,
        "unknown " + f->name() + " '" + value.Scalar() + "'" + SuggestAmong(value.Scalar(), names));
  }

  // A YAML scalar as a typed value: quoted → string; true/false → bool; integer; number; else
  // string.
  bool ParseValue(const YAML::Node& node, const std::string& field, v1::ParamValue* out) {
    if (!node.IsScalar()) {
      Error(node, field, "expected a single value");
      return false;
    }
    const std::string& s = node.Scalar();
    int64_t i;
    double d;
    bool b;
    if (IsQuoted(node)) {
      out->set_string_value(s);
    } else if (ParseBool(s, &b)) {
      out->set_bool_value(b);
    } else if (ParseInt(s, &i)) {
      out->set_int_value(i);
    } else if (ParseDouble(s, &d)) {
      out->set_double_value(d);
    } else {
      out->set_string_value(s);
    }
    return true;
  }

  void ParseSearchSpace(const YAML::Node& value, v1::StudySpec* spec, const std::string& path) {
    if (!value.IsMap()) {
      return Error(value, path, "expected a mapping NAME: {type: float|int|categorical, ...}");
    }
    ForEachKey(value, path,
               [&](const std::string& name, const YAML::Node&, const YAML::Node& dist,
                   const std::string& field) {
                 v1::ParameterSpec* p = spec->add_search_space();
                 p->set_name(name);
                 ParseDistribution(dist, p, field);
               });
  }

  void ParseDistribution(const YAML::Node& node, v1::ParameterSpec* p, const std::string& path) {
    if (!node.IsMap()) {
      return Error(node, path,
                   "expected {type: float|int|categorical, low: .., high: ..} or {choices: [..]}");
    }
    static const std::vector<std::string> kKeys = {"type", "low", "high", "log", "step", "choices"};
    std::string type;
    if (node["type"]) {
      type = node["type"].Scalar();
    } else if (node["choices"]) {
      type = "categorical";
    } else {
      // Without a type, two integer bounds make an int range, anything else a float range.
      int64_t unused;
      bool ints = node["low"] && node["high"] && !IsQuoted(node["low"]) &&
                  ParseInt(node["low"].Scalar(), &unused) &&
                  ParseInt(node["high"].Scalar(), &unused) &&
                  !(node["step"] && !ParseInt(node["step"].Scalar(), &unused));
      type = ints ? "int" : "float";
    }
    if (type != "float" && type != "int" && type != "categorical") {
      result_->positions.emplace(path + ".type", At(node["type"]));
      return Error(
          node["type"], path + ".type",
          "unknown type '" + type + "'" + SuggestAmong(type, {"float", "int", "categorical"}));
    }
    ForEachKey(node, path,
               [&](const std::string& key, const YAML::Node& key_node, const YAML::Node& v,
                   const std::string& field) {
                 if (std::find(kKeys.begin(), kKeys.end(), key) == kKeys.end()) {
                   return Error(key_node, field,
                                "unknown key '" + key + "'" + SuggestAmong(key, kKeys));
                 }
                 if (key == "type") return;
                 if (v.IsNull()) return Error(key_node, field, "has no value");
                 const bool categorical = type == "categorical";
                 if (categorical != (key == "choices")) {
                   return Error(key_node, field,
                                categorical ? "a categorical parameter takes only `choices`"
                                            : "`choices` needs `type: categorical` (or no type)");
                 }
                 if (categorical) {
                   if (!v.IsSequence())
                     return Error(v, field, "expected a list of values, e.g. [8, 16]");
                   v1::CategoricalDistribution* c = p->mutable_categorical();
                   for (size_t i = 0; i < v.size(); ++i) {
                     const std::string item = field + "[" + std::to_string(i) + "]";
                     result_->positions.emplace(item, At(v[i]));
                     ParseValue(v[i], item, c->add_choices());
                   }
                   return;
                 }
                 Message* dist = type == "float" ? static_cast<Message*>(p->mutable_float_range())
                                                 : static_cast<Message*>(p->mutable_int_range());
                 ParseSingular(v, dist, dist->GetDescriptor()->FindFieldByName(key), field, false);
               });
    if (type == "categorical") p->mutable_categorical();
    if (type == "float") p->mutable_float_range();
    if (type == "int") p->mutable_int_range();
    if (type != "categorical" && (!node["low"] || !node["high"])) {
      Error(node, path, "a " + type + " range needs both low and high");
    }
  }

  void ParseEnqueue(const YAML::Node& value, v1::StudySpec* spec, const std::string& path) {
    if (!value.IsSequence())
      return Error(value, path, "expected a list of trials, e.g. - {batch_size: 8}");
    for (size_t i = 0; i < value.size(); ++i) {
      const std::string item = path + "[" + std::to_string(i) + "]";
      result_->positions.emplace(item, At(value[i]));
      v1::EnqueuedTrial* trial = spec->add_enqueue();
      if (!value[i].IsMap()) {
        Error(value[i], item, "expected a mapping of parameter: value");
        continue;
      }
      ForEachKey(value[i], item,
                 [&](const std::string& name, const YAML::Node&, const YAML::Node& v,
                     const std::string& field) {
                   v1::ParamAssignment* a = trial->add_params();
                   a->set_name(name);
                   ParseValue(v, field, a->mutable_value());
                 });
    }
  }

  YamlParseResult* result_;
};

// A study file nests four levels at most; yaml-cpp recurses once per level and gives up near 2,000
// with "bad file". Past kMaxYamlNesting levels of flow brackets ([ {) or of indentation, the file
// is refused with the line and column where it passes the limit.
constexpr int kMaxYamlNesting = 64;

std::optional<YamlParseError> ExcessiveNesting(const std::string& text) {
  int line = 1, column = 0, flow_depth = 0;
  char quote = 0;
  bool comment = false, line_start = true;
  std::vector<int> indents;  // the indentation of each open block level
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    ++column;
    if (c == '\n') {
      ++line;
      column = 0;
      comment = false;
      line_start = true;
      continue;
    }
    if (comment) continue;
    if (line_start && c != ' ') {
      line_start = false;
      if (c != '#' && c != '\r' && flow_depth == 0 && quote == 0) {
        const int indent = column - 1;
        while (!indents.empty() && indents.back() >= indent) indents.pop_back();
        indents.push_back(indent);
        if (static_cast<int>(indents.size()) > kMaxYamlNesting) {
          return YamlParseError{"",
                                {line, column},
                                "indented deeper than " + std::to_string(kMaxYamlNesting) +
                                    " levels; a study file needs at most 4"};
        }
      }
    }
    if (quote != 0) {
      if (c == '\\' && quote == '"') {
        ++i;
        ++column;
      } else if (c == quote) {
        quote = 0;
      }
    } else if (c == '"' || c == '\'') {
      quote = c;
    } else if (c == '#' && (i == 0 || text[i - 1] == ' ' || text[i - 1] == '\t')) {
      comment = true;
    } else if (c == '[' || c == '{') {
      if (++flow_depth > kMaxYamlNesting) {
        return YamlParseError{"",
                              {line, column},
                              "[ and { nested deeper than " + std::to_string(kMaxYamlNesting) +
                                  " levels; a study file needs at most 4"};
      }
    } else if ((c == ']' || c == '}') && flow_depth > 0) {
      --flow_depth;
    }
  }
  return std::nullopt;
}

// A NUL byte in a file read as UTF-8 (yaml-cpp reads it as a character and garbles what follows,
// so it must be found in the text). A file that starts with a byte-order mark or with a NUL among
// its first bytes is UTF-16 or UTF-32 to yaml-cpp, where NUL bytes are part of every character.
std::optional<YamlParseError> RawNulByte(const std::string& text) {
  const auto starts = [&](const char* prefix, size_t n) {
    return text.size() >= n && text.compare(0, n, prefix, n) == 0;
  };
  if (starts("\xfe\xff", 2) || starts("\xff\xfe", 2)) return std::nullopt;
  if (text.size() >= 2 && (text[0] == '\0' || text[1] == '\0')) return std::nullopt;
  const size_t at = text.find('\0');
  if (at == std::string::npos) return std::nullopt;
  int line = 1;
  size_t line_start = 0;
  for (size_t i = 0; i < at; ++i) {
    if (text[i] == '\n') {
      ++line;
      line_start = i + 1;
    }
  }
  return YamlParseError{"",
                        {line, static_cast<int>(at - line_start) + 1},
                        "a NUL byte (0x00): a study file is text and holds none; remove it (is "
                        "this a binary file, or UTF-16 saved without a byte-order mark?)"};
}

// Every scalar, key or value, that holds a NUL character (from "\0", "\x00" or "\u0000" in a
// double-quoted string). No field of a study may hold one: the operating system would cut a command
// argument, path or environment value short at it, and a message quoting it would show nothing.
// Depth and the count of visited nodes are capped, since aliases can repeat (or nest) a node; the
// validator checks every string of the spec again (study_validator.cc), so a cap loses no check.
void FindNulScalars(const YAML::Node& node, const std::string& path, int depth, int* budget,
                    std::vector<YamlParseError>* errors) {
  if (depth > kMaxYamlNesting || --*budget < 0) return;
  const auto report = [&](const YAML::Node& at, const std::string& field) {
    YAML::Mark mark = at.Mark();
    errors->push_back({field,
                       {mark.line + 1, mark.column + 1},
                       "holds a NUL character (\"\\0\", \"\\x00\" or \"\\u0000\"): no name, "
                       "path, command or text of a study may; remove it"});
  };
  if (node.IsScalar()) {
    if (node.Scalar().find('\0') != std::string::npos) report(node, path);
  } else if (node.IsSequence()) {
    for (size_t i = 0; i < node.size(); ++i) {
      FindNulScalars(node[i], path + "[" + std::to_string(i) + "]", depth + 1, budget, errors);
    }
  } else if (node.IsMap()) {
    for (auto it = node.begin(); it != node.end(); ++it) {
      std::string key = it->first.IsScalar() ? it->first.Scalar() : "?";
      if (key.find('\0') != std::string::npos) {
        report(it->first, path.empty() ? "(a key)" : path + " (a key)");
        key = Got(key, false);
      }
      FindNulScalars(it->second, path.empty() ? key : path + "." + key, depth + 1, budget, errors);
    }
  }
}

}  // namespace

YamlParseResult ParseStudyYamlText(const std::string& yaml_text) {
  YamlParseResult result;
  if (std::optional<YamlParseError> nul = RawNulByte(yaml_text)) {
    result.errors.push_back(*nul);
    return result;
  }
  if (std::optional<YamlParseError> nesting = ExcessiveNesting(yaml_text)) {
    result.errors.push_back(*nesting);
    return result;
  }
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::ParserException& e) {
    result.errors.push_back(
        {"", {e.mark.line + 1, e.mark.column + 1}, "YAML syntax error: " + e.msg});
    return result;
  }
  try {
    int budget = 100000;
    FindNulScalars(root, "", 0, &budget, &result.errors);
    if (!result.errors.empty()) return result;
    Reader(&result).ParseStudy(root);
  } catch (const YAML::Exception& e) {
    result.errors.push_back(
        {"", {e.mark.line + 1, e.mark.column + 1}, "cannot read the YAML: " + e.msg});
  }
  return result;
}

bool SplitCommandLine(const std::string& line, std::vector<std::string>* argv) {
  std::string current;
  bool in_word = false;
  char quote = 0;
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (quote == '\'') {
      if (c == '\'')
        quote = 0;
      else
        current += c;
    } else if (quote == '"') {
      if (c == '"')
        quote = 0;
      else if (c == '\\' && i + 1 < line.size() && (line[i + 1] == '"' || line[i + 1] == '\\'))
        current += line[++i];
      else
        current += c;
    } else if (c == '\'' || c == '"') {
      quote = c;
      in_word = true;
    } else if (c == '\\' && i + 1 < line.size()) {
      current += line[++i];
      in_word = true;
    } else if (std::isspace(static_cast<unsigned char>(c))) {
      if (in_word) argv->push_back(current);
      current.clear();
      in_word = false;
    } else {
      current += c;
      in_word = true;
    }
  }
  if (quote != 0) return false;
  if (in_word) argv->push_back(current);
  return true;
}

bool ParseDurationSeconds(const std::string& text, double* seconds) {
  if (text.empty()) return false;
  double scale = 1;
  std::string number = text;
  switch (text.back()) {
    case 's':
      scale = 1;
      number.pop_back();
      break;
    case 'm':
      scale = 60;
      number.pop_back();
      break;
    case 'h':
      scale = 3600;
      number.pop_back();
      break;
    case 'd':
      scale = 86400;
      number.pop_back();
      break;
    default:
      break;
  }
  double value;
  if (!ParseDouble(number, &value) || !std::isfinite(value)) return false;
  *seconds = value * scale;
  return true;
}

}  // namespace hpsearch::server::internal
