#include "server/held_trial.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/reflection.h>

#include "server/study_file/study_view.h"

namespace hpsearch::server {
namespace {

using google::protobuf::FieldDescriptor;

// A copy of `trial` with only its singular scalar fields (numbers, enums, bools): those live inside
// the message object and allocate nothing. By reflection, so a scalar added to v1::Trial is kept
// in the head without a change here.
v1::Trial ScalarHead(const v1::Trial& trial) {
  v1::Trial head;
  const google::protobuf::Reflection* from = trial.GetReflection();
  const google::protobuf::Reflection* to = head.GetReflection();
  const google::protobuf::Descriptor* descriptor = trial.GetDescriptor();
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const FieldDescriptor* field = descriptor->field(i);
    if (field->is_repeated() || !from->HasField(trial, field)) continue;
    switch (field->cpp_type()) {
      case FieldDescriptor::CPPTYPE_INT32:
        to->SetInt32(&head, field, from->GetInt32(trial, field));
        break;
      case FieldDescriptor::CPPTYPE_INT64:
        to->SetInt64(&head, field, from->GetInt64(trial, field));
        break;
      case FieldDescriptor::CPPTYPE_UINT32:
        to->SetUInt32(&head, field, from->GetUInt32(trial, field));
        break;
      case FieldDescriptor::CPPTYPE_UINT64:
        to->SetUInt64(&head, field, from->GetUInt64(trial, field));
        break;
      case FieldDescriptor::CPPTYPE_DOUBLE:
        to->SetDouble(&head, field, from->GetDouble(trial, field));
        break;
      case FieldDescriptor::CPPTYPE_FLOAT:
        to->SetFloat(&head, field, from->GetFloat(trial, field));
        break;
      case FieldDescriptor::CPPTYPE_BOOL:
        to->SetBool(&head, field, from->GetBool(trial, field));
        break;
      case FieldDescriptor::CPPTYPE_ENUM:
        to->SetEnumValue(&head, field, from->GetEnumValue(trial, field));
        break;
      case FieldDescriptor::CPPTYPE_STRING:
      case FieldDescriptor::CPPTYPE_MESSAGE:
        break;  // allocated: kept in the serialised form only
    }
  }
  return head;
}

}  // namespace

v1::Trial HeldTrial::Full() const {
  if (!packed_) return trial_;
  v1::Trial whole;
  // Cannot fail: encoded_ is this process's own serialisation of a v1::Trial.
  whole.ParseFromString(encoded_);
  return whole;
}

v1::Trial& HeldTrial::Mutable() {
  if (packed_) {
    trial_.ParseFromString(encoded_);
    std::string().swap(encoded_);  // frees the buffer, which clear() would keep
    packed_ = false;
  }
  return trial_;
}

void HeldTrial::Pack() {
  if (packed_) return;
  encoded_ = trial_.SerializeAsString();
  encoded_.shrink_to_fit();
  // A new message, not Clear(): a cleared repeated field or string keeps its allocations.
  trial_ = ScalarHead(trial_);
  packed_ = true;
}

void HeldTrial::PackIfEnded() {
  if (TrialStateEnded(trial_.state())) Pack();
}

}  // namespace hpsearch::server
