#include <cctype>

#include "google/protobuf/descriptor.h"
#include "google/protobuf/reflection.h"
#include "server/study_file/study_yaml.h"
#include "server/study_file/validation_context.h"
#include "yaml-cpp/yaml.h"

namespace hpsearch::server::internal {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

std::string EnumShortName(const google::protobuf::EnumValueDescriptor* value) {
  const std::string& type = value->type()->name();
  std::string prefix;
  for (size_t i = 0; i < type.size(); ++i) {
    if (std::isupper(static_cast<unsigned char>(type[i])) && i > 0) prefix += '_';
    prefix += static_cast<char>(std::toupper(static_cast<unsigned char>(type[i])));
  }
  std::string name = value->name().substr(prefix.size() + 1);
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return name;
}

// Numbers are written so that they read back as the same type: doubles always carry a '.' or
// exponent.
std::string DoubleText(double value) {
  std::string text = FormatNumber(value);
  if (text == "inf") return ".inf";
  if (text == "-inf") return "-.inf";
  if (text == "nan") return ".nan";
  if (text.find_first_of(".e") == std::string::npos) text += ".0";
  return text;
}

void EmitValue(YAML::Emitter& out, const v1::ParamValue& v) {
  switch (v.kind_case()) {
    case v1::ParamValue::kDoubleValue:
      out << DoubleText(v.double_value());
      break;
    case v1::ParamValue::kIntValue:
      out << std::to_string(v.int_value());
      break;
    case v1::ParamValue::kStringValue:
      out << YAML::DoubleQuoted << v.string_value();
      break;
    case v1::ParamValue::kBoolValue:
      out << (v.bool_value() ? "true" : "false");
      break;
    case v1::ParamValue::KIND_NOT_SET:
      out << YAML::Null;
      break;
  }
}

void EmitMessage(YAML::Emitter& out, const Message& msg);

void EmitScalarField(YAML::Emitter& out, const Message& msg, const FieldDescriptor* f, int index) {
  const Reflection* r = msg.GetReflection();
  const bool rep = index >= 0;
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING:
      out << YAML::DoubleQuoted
          << (rep ? r->GetRepeatedString(msg, f, index) : r->GetString(msg, f));
      break;
    case FieldDescriptor::CPPTYPE_BOOL:
      out << (r->GetBool(msg, f) ? "true" : "false");
      break;
    case FieldDescriptor::CPPTYPE_INT32:
      out << std::to_string(r->GetInt32(msg, f));
      break;
    case FieldDescriptor::CPPTYPE_INT64:
      out << std::to_string(r->GetInt64(msg, f));
      break;
    case FieldDescriptor::CPPTYPE_UINT64:
      out << std::to_string(r->GetUInt64(msg, f));
      break;
    case FieldDescriptor::CPPTYPE_DOUBLE:
      out << DoubleText(r->GetDouble(msg, f));
      break;
    case FieldDescriptor::CPPTYPE_ENUM:
      out << EnumShortName(r->GetEnum(msg, f));
      break;
    case FieldDescriptor::CPPTYPE_MESSAGE:
      EmitMessage(out, rep ? r->GetRepeatedMessage(msg, f, index) : r->GetMessage(msg, f));
      break;
    default:
      out << YAML::Null;
  }
}

void EmitSearchSpace(YAML::Emitter& out, const v1::StudySpec& spec) {
  out << YAML::BeginMap;
  for (const v1::ParameterSpec& p : spec.search_space()) {
    out << YAML::Key << p.name() << YAML::Value << YAML::Flow << YAML::BeginMap;
    if (p.has_float_range()) {
      const auto& d = p.float_range();
      out << YAML::Key << "type" << YAML::Value << "float";
      out << YAML::Key << "low" << YAML::Value << DoubleText(d.low());
      out << YAML::Key << "high" << YAML::Value << DoubleText(d.high());
      if (d.log()) out << YAML::Key << "log" << YAML::Value << "true";
      if (d.has_step()) out << YAML::Key << "step" << YAML::Value << DoubleText(d.step());
    } else if (p.has_int_range()) {
      const auto& d = p.int_range();
      out << YAML::Key << "type" << YAML::Value << "int";
      out << YAML::Key << "low" << YAML::Value << std::to_string(d.low());
      out << YAML::Key << "high" << YAML::Value << std::to_string(d.high());
      if (d.log()) out << YAML::Key << "log" << YAML::Value << "true";
      if (d.has_step()) out << YAML::Key << "step" << YAML::Value << std::to_string(d.step());
    } else if (p.has_categorical()) {
      out << YAML::Key << "type" << YAML::Value << "categorical";
      out << YAML::Key << "choices" << YAML::Value << YAML::Flow << YAML::BeginSeq;
      for (const auto& c : p.categorical().choices()) EmitValue(out, c);
      out << YAML::EndSeq;
    }
    out << YAML::EndMap;
  }
  out << YAML::EndMap;
}

void EmitEnqueue(YAML::Emitter& out, const v1::StudySpec& spec) {
  out << YAML::BeginSeq;
  for (const v1::EnqueuedTrial& trial : spec.enqueue()) {
    out << YAML::Flow << YAML::BeginMap;
    for (const v1::ParamAssignment& a : trial.params()) {
      out << YAML::Key << a.name() << YAML::Value;
      EmitValue(out, a.value());
    }
    out << YAML::EndMap;
  }
  out << YAML::EndSeq;
}

void EmitMessage(YAML::Emitter& out, const Message& msg) {
  const Reflection* r = msg.GetReflection();
  const bool study = msg.GetDescriptor()->full_name() == "hpsearch.v1.StudySpec";
  out << YAML::BeginMap;
  std::vector<const FieldDescriptor*> fields;
  r->ListFields(msg, &fields);  // set fields only, in field-number order
  for (const FieldDescriptor* f : fields) {
    out << YAML::Key << f->name() << YAML::Value;
    if (study && f->name() == "search_space") {
      EmitSearchSpace(out, static_cast<const v1::StudySpec&>(msg));
    } else if (study && f->name() == "enqueue") {
      EmitEnqueue(out, static_cast<const v1::StudySpec&>(msg));
    } else if (f->is_map()) {
      out << YAML::BeginMap;
      for (int i = 0; i < r->FieldSize(msg, f); ++i) {
        const Message& entry = r->GetRepeatedMessage(msg, f, i);
        const Reflection* er = entry.GetReflection();
        out << YAML::Key << er->GetString(entry, entry.GetDescriptor()->field(0)) << YAML::Value
            << YAML::DoubleQuoted << er->GetString(entry, entry.GetDescriptor()->field(1));
      }
      out << YAML::EndMap;
    } else if (f->is_repeated()) {
      const bool scalars = f->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE;
      if (scalars) out << YAML::Flow;
      out << YAML::BeginSeq;
      for (int i = 0; i < r->FieldSize(msg, f); ++i) EmitScalarField(out, msg, f, i);
      out << YAML::EndSeq;
    } else {
      EmitScalarField(out, msg, f, -1);
    }
  }
  out << YAML::EndMap;
}

}  // namespace

std::string EmitStudyYaml(const v1::StudySpec& spec) {
  YAML::Emitter out;
  out.SetIndent(2);
  EmitMessage(out, spec);
  return std::string(out.c_str()) + "\n";
}

}  // namespace hpsearch::server::internal
