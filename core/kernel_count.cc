#include "core/kernel_count.h"

#include <ATen/SequenceNumber.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <utility>
#include <vector>

#include "core/error.h"

namespace hpsearch::core {
namespace {

// Rule 2: ATen operators that launch no kernel themselves. Sorted (binary search); names as
// RecordFunction reports them.
constexpr std::string_view kNoKernelOps[] = {
    "aten::T",
    "aten::_conj",
    "aten::_has_compatible_shallow_copy_type",
    "aten::_neg_view",
    "aten::_reshape_alias",
    "aten::_unsafe_view",
    "aten::_version",
    "aten::adjoint",
    "aten::alias",
    "aten::as_strided",
    "aten::as_strided_",
    "aten::broadcast_tensors",
    "aten::chunk",
    "aten::conj",
    "aten::contiguous",
    "aten::detach",
    "aten::detach_",
    "aten::diagonal",
    "aten::dim",
    "aten::empty",
    "aten::empty_like",
    "aten::empty_strided",
    "aten::expand",
    "aten::expand_as",
    "aten::flatten",
    "aten::is_contiguous",
    "aten::is_floating_point",
    "aten::is_leaf",
    "aten::is_same_size",
    "aten::lift_fresh",
    "aten::mT",
    "aten::movedim",
    "aten::narrow",
    "aten::new_empty",
    "aten::new_empty_strided",
    "aten::numel",
    "aten::numpy_T",
    "aten::output_nr",
    "aten::permute",
    "aten::requires_grad_",
    "aten::reshape",
    "aten::reshape_as",
    "aten::resize_",
    "aten::resize_as_",
    "aten::resolve_conj",
    "aten::resolve_neg",
    "aten::result_type",
    "aten::retain_grad",
    "aten::select",
    "aten::set_",
    "aten::size",
    "aten::slice",
    "aten::split",
    "aten::split_with_sizes",
    "aten::squeeze",
    "aten::squeeze_",
    "aten::stride",
    "aten::swapaxes",
    "aten::sym_numel",
    "aten::sym_size",
    "aten::sym_stride",
    "aten::t",
    "aten::t_",
    "aten::tensor_split",
    "aten::to",
    "aten::transpose",
    "aten::transpose_",
    "aten::type_as",
    "aten::unbind",
    "aten::unflatten",
    "aten::unfold",
    "aten::unsqueeze",
    "aten::unsqueeze_",
    "aten::view",
    "aten::view_as",
    "detach",  // the autograd layer's own record inside aten::detach
};

constexpr bool IsSorted(const std::string_view* begin, const std::string_view* end) {
  for (const std::string_view* it = begin + 1; it < end; ++it) {
    if (!(*(it - 1) < *it)) return false;
  }
  return true;
}
static_assert(IsSorted(std::begin(kNoKernelOps), std::end(kNoKernelOps)),
              "kNoKernelOps must stay sorted: LaunchesNoKernel searches it");

// Rule 5 (docs/gpu-kernels.md): operators that CUDA runs as one kernel while the CPU decomposes
// them (dropout is native_dropout there: mask and scale in one kernel, where the CPU runs
// bernoulli_, div_ and mul; its backward is one masked scale, where the CPU runs two mul); each
// counts 1 when anything below it counts.
constexpr std::string_view kOneKernelOnCuda[] = {"aten::dropout", "aten::native_dropout",
                                                 "aten::native_dropout_backward"};

enum class CounterFrameKind { kOp, kFused, kBackward, kOther };

struct CounterFrame {
  CounterFrameKind kind = CounterFrameKind::kOther;
  bool no_kernel = false;        // kOp: rule 2
  bool one_on_cuda = false;      // kOp: rule 5
  bool fused_backward = false;   // kBackward: a node created inside a fused op
  bool silent = false;           // counts nothing itself (inside a fused op)
  bool children_silent = false;  // nothing below it counts
  int64_t counted_self = 0;      // kBackward: the fused backward, counted at its first node
  int64_t counted_below = 0;     // what the frames below it count (or would, when silent)
  int64_t sequence_begin = 0;    // kFused: the autograd sequence number when it started
  std::string caller;            // the outermost op or autograd node above (launches_by_caller)
};

// The autograd nodes one fused op created: sequence numbers [first, end) on one thread.
struct FusedOpRange {
  int64_t end = 0;
  std::string name;
  bool backward_counted = false;
};

struct CounterState {
  uint64_t generation = 0;
  std::mutex mu;
  KernelCount count;  // guarded by mu
  // Keyed by (forward thread, first sequence number); guarded by mu.
  std::map<std::pair<uint64_t, int64_t>, FusedOpRange> fused;

  void Add(const std::string& name, const std::string& caller) {
    const std::lock_guard<std::mutex> lock(mu);
    ++count.launches;
    ++count.launches_by_name[name];
    const bool ends_with_name = caller.size() >= name.size() &&
                                caller.compare(caller.size() - name.size(), name.size(), name) == 0;
    ++count.launches_by_caller[caller.empty()   ? name
                               : ends_with_name ? caller
                                                : caller + " > " + name];
  }
};

std::atomic<CounterState*> g_counter_state{nullptr};
std::atomic<uint64_t> g_counter_generation{0};
thread_local std::vector<CounterFrame> t_counter_stack;
thread_local uint64_t t_counter_generation = 0;

bool StartsWith(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

// The autograd engine wraps each node it runs in an op-scoped record of this name.
constexpr std::string_view kEngineRecordPrefix = "autograd::engine::evaluate_function: ";

std::vector<CounterFrame>& CounterStack(const CounterState& state) {
  if (t_counter_generation != state.generation) {
    t_counter_stack.clear();  // frames of an earlier counter whose end never came
    t_counter_generation = state.generation;
  }
  return t_counter_stack;
}

std::unique_ptr<at::ObserverContext> OnCountStart(const at::RecordFunction& fn) {
  CounterState* state = g_counter_state.load();
  if (state == nullptr) return nullptr;
  std::vector<CounterFrame>& stack = CounterStack(*state);
  CounterFrame frame;
  frame.silent = !stack.empty() && stack.back().children_silent;
  frame.children_silent = frame.silent;
  // The caller: the innermost autograd node, then the outermost op below it.
  const bool parent_is_op = !stack.empty() && (stack.back().kind == CounterFrameKind::kOp ||
                                               stack.back().kind == CounterFrameKind::kFused);
  if (!stack.empty()) frame.caller = stack.back().caller;
  if (!parent_is_op && fn.scope() != at::RecordScope::BACKWARD_FUNCTION) {
    frame.caller += (frame.caller.empty() ? "" : " > ") + std::string(fn.name());
  }
  const bool engine_record =
      fn.scope() == at::RecordScope::FUNCTION && StartsWith(fn.name(), kEngineRecordPrefix);
  switch (engine_record ? at::RecordScope::USER_SCOPE : fn.scope()) {
    case at::RecordScope::FUNCTION: {
      frame.kind = CounterFrameKind::kOp;
      const std::string_view name = fn.name();
      frame.no_kernel = LaunchesNoKernel(name);
      frame.one_on_cuda = std::find(std::begin(kOneKernelOnCuda), std::end(kOneKernelOnCuda),
                                    name) != std::end(kOneKernelOnCuda);
      frame.children_silent = frame.silent || frame.one_on_cuda;
      const std::lock_guard<std::mutex> lock(state->mu);
      ++state->count.aten_calls;
      break;
    }
    case at::RecordScope::BACKWARD_FUNCTION: {
      frame.kind = CounterFrameKind::kBackward;
      frame.caller = std::string("backward of ") + fn.name();
      std::string counted_name;
      {
        const std::lock_guard<std::mutex> lock(state->mu);
        ++state->count.autograd_nodes;
        const std::pair<uint64_t, int64_t> key(fn.forwardThreadId(), fn.seqNr());
        auto it = key.second >= 0 ? state->fused.upper_bound(key) : state->fused.begin();
        if (it != state->fused.begin()) {
          --it;
          if (it->first.first == key.first && key.second < it->second.end) {
            frame.fused_backward = true;
            frame.children_silent = true;
            if (!it->second.backward_counted) {
              it->second.backward_counted = true;
              frame.counted_self = 1;
              counted_name = it->second.name + " (backward)";
            }
          }
        }
      }
      if (frame.counted_self == 1 && !frame.silent) state->Add(counted_name, counted_name);
      break;
    }
    default:
      if (!engine_record && fn.scope() == at::RecordScope::USER_SCOPE &&
          StartsWith(fn.name(), "hpsearch::")) {
        frame.kind = CounterFrameKind::kFused;
        frame.children_silent = true;
        frame.sequence_begin = static_cast<int64_t>(at::sequence_number::peek());
      }
  }
  stack.push_back(frame);
  return nullptr;
}

void OnCountEnd(const at::RecordFunction& fn, at::ObserverContext* /*unused*/) {
  CounterState* state = g_counter_state.load();
  if (state == nullptr) return;
  std::vector<CounterFrame>& stack = CounterStack(*state);
  if (stack.empty()) return;  // started before this counter
  const CounterFrame frame = stack.back();
  stack.pop_back();
  // What this frame weighs for its parent's leaf test, and whether it is itself a launch.
  int64_t weight = frame.counted_below;
  bool launches = false;
  switch (frame.kind) {
    case CounterFrameKind::kOp:
      if (frame.one_on_cuda) {
        launches = frame.counted_below > 0;  // a no-op dropout (eval, p = 0) calls nothing
        weight = launches ? 1 : 0;
      } else if (!frame.no_kernel && frame.counted_below == 0) {
        launches = true;
        weight = 1;
      }
      break;
    case CounterFrameKind::kFused: {
      const int64_t end = static_cast<int64_t>(at::sequence_number::peek());
      if (end > frame.sequence_begin) {
        const std::lock_guard<std::mutex> lock(state->mu);
        state->fused[{at::RecordFunction::currentThreadId(), frame.sequence_begin}] =
            FusedOpRange{end, fn.name(), false};
      }
      launches = true;
      weight = 1;
      break;
    }
    case CounterFrameKind::kBackward:
      if (frame.fused_backward) weight = frame.counted_self;  // counted at its start
      break;
    case CounterFrameKind::kOther:
      break;
  }
  if (launches && !frame.silent) state->Add(fn.name(), frame.caller);
  if (!stack.empty()) stack.back().counted_below += weight;
}

}  // namespace

FusedOpScope::FusedOpScope(const char* name) : guard_(at::RecordScope::USER_SCOPE) {
  if (guard_.isActive()) guard_.before(name);
}

bool LaunchesNoKernel(std::string_view name) {
  return std::binary_search(std::begin(kNoKernelOps), std::end(kNoKernelOps), name);
}

KernelCount Subtract(const KernelCount& a, const KernelCount& b) {
  KernelCount out;
  out.launches = a.launches - b.launches;
  out.aten_calls = a.aten_calls - b.aten_calls;
  out.autograd_nodes = a.autograd_nodes - b.autograd_nodes;
  out.launches_by_name = a.launches_by_name;
  out.launches_by_caller = a.launches_by_caller;
  for (auto field : {&KernelCount::launches_by_name, &KernelCount::launches_by_caller}) {
    std::map<std::string, int64_t>& counts = out.*field;
    for (const auto& [name, n] : b.*field) counts[name] -= n;
    for (auto it = counts.begin(); it != counts.end();) {
      it = it->second == 0 ? counts.erase(it) : std::next(it);
    }
  }
  return out;
}

KernelLaunchCounter::KernelLaunchCounter() {
  auto* state = new CounterState();
  state->generation = ++g_counter_generation;
  CounterState* expected = nullptr;
  if (!g_counter_state.compare_exchange_strong(expected, state)) {
    delete state;
    Fail(ErrorCode::kInternal, "KernelLaunchCounter: another counter is already counting");
  }
  handle_ = at::addGlobalCallback(
      at::RecordFunctionCallback(&OnCountStart, &OnCountEnd)
          .scopes({at::RecordScope::FUNCTION, at::RecordScope::BACKWARD_FUNCTION,
                   at::RecordScope::USER_SCOPE}));
}

KernelLaunchCounter::~KernelLaunchCounter() {
  at::removeCallback(handle_);
  // RecordFunctions still in flight on other threads may call OnCountEnd until they finish; a
  // counter is destroyed once the counted work is done, when there are none.
  delete g_counter_state.exchange(nullptr);
}

KernelCount KernelLaunchCounter::Count() const {
  CounterState* state = g_counter_state.load();
  const std::lock_guard<std::mutex> lock(state->mu);
  return state->count;
}

KernelCount CountKernelLaunches(const std::function<void()>& work) {
  KernelLaunchCounter counter;
  work();
  return counter.Count();
}

}  // namespace hpsearch::core
