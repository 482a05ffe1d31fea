// The subcommands of hpsearch-core. Each takes the arguments after the command name (argv[0] is the
// command itself), prints its own errors to stderr, and returns the process exit code: 0 on
// success, 1 when the work failed, 2 on a usage or input error.
#pragma once

namespace hpsearch::core::tool {

// `hpsearch-core tokenize --tokenizer DIR`: reads JSON Lines {"text": "..."} from stdin and prints,
// per line, the GPT-2 token ids of the text separated by spaces (an empty line for an empty text).
int RunTokenize(int argc, char** argv);

// `hpsearch-core train --config FILE`: one training run (see train_command.cc).
int RunTrain(int argc, char** argv);

// `hpsearch-core logits --model DIR --input FILE.jsonl`: logits of a Hugging Face checkpoint per
// text.
int RunLogits(int argc, char** argv);

// `hpsearch-core predict --adapter DIR --input FILE.jsonl`: labels and probabilities of a trained
// model.
int RunPredict(int argc, char** argv);

}  // namespace hpsearch::core::tool
