// PythonPeer: a Python process (Debian's /usr/bin/python3) spoken to one JSON line at a time over
// its stdin/stdout, for benchmarks that measure a Python library in the same run. Owns the child:
// the destructor closes its stdin and waits for it. Not thread-safe; one per thread.
#pragma once

#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

namespace hpsearch::bench {

class PythonPeer {
 public:
  explicit PythonPeer(const std::string& script) {
    int to_child[2], from_child[2];
    if (::pipe(to_child) != 0 || ::pipe(from_child) != 0) throw std::runtime_error("pipe failed");
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      ::dup2(to_child[0], STDIN_FILENO);
      ::dup2(from_child[1], STDOUT_FILENO);
      ::close(to_child[0]);
      ::close(to_child[1]);
      ::close(from_child[0]);
      ::close(from_child[1]);
      std::vector<char*> args = {const_cast<char*>("/usr/bin/python3"),
                                 const_cast<char*>(script.c_str()), nullptr};
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    ::close(to_child[0]);
    ::close(from_child[1]);
    in_ = ::fdopen(to_child[1], "w");
    out_ = ::fdopen(from_child[0], "r");
  }
  ~PythonPeer() {
    if (in_) std::fclose(in_);
    if (out_) std::fclose(out_);
    int status;
    if (pid_ > 0) ::waitpid(pid_, &status, 0);
  }
  PythonPeer(const PythonPeer&) = delete;
  PythonPeer& operator=(const PythonPeer&) = delete;

  // Sends one line, returns the answer line (without its newline). Throws when the peer died.
  std::string Call(const std::string& line) {
    std::fputs(line.c_str(), in_);
    std::fputc('\n', in_);
    std::fflush(in_);
    std::string answer;
    int c;
    while ((c = std::fgetc(out_)) != EOF && c != '\n') answer.push_back(static_cast<char>(c));
    if (c == EOF) throw std::runtime_error("the Python peer exited (is optuna installed?)");
    return answer;
  }

 private:
  pid_t pid_ = -1;
  FILE* in_ = nullptr;
  FILE* out_ = nullptr;
};

}  // namespace hpsearch::bench
