// Runs a program to completion for tests, capturing its exit code, stdout and stderr, through the
// one process-spawning class (base/subprocess.h). POSIX only; header-only so every test binary
// (core-only builds too) can use it.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

#include "base/subprocess.h"

namespace hpsearch::testing {

struct ProcessResult {
  int exit_code = -1;  // the exit status, or 128 + signal when killed by a signal
  std::string out;
  std::string err;
};

// Runs argv[0] (a path) with argv, feeding `input` on stdin. `env` entries "K=V" are added to the
// environment.
inline ProcessResult RunProcess(const std::vector<std::string>& argv, const std::string& input = "",
                                const std::vector<std::string>& env = {}) {
  SubprocessOptions options;
  options.argv = argv;
  options.extra_env = env;
  options.in = SubprocessStream::Pipe();
  options.out = SubprocessStream::Pipe();
  options.err = SubprocessStream::Pipe();
  Subprocess process;
  std::string error;
  if (!process.Start(options, &error)) return {-1, "", error};
  int in = process.stdin_fd();
  int outputs[2] = {process.stdout_fd(), process.stderr_fd()};
  ProcessResult result;
  size_t written = 0;
  if (input.empty()) {
    process.CloseStdin();
    in = -1;
  } else {
    fcntl(in, F_SETFL, O_NONBLOCK);
  }
  char buffer[65536];
  while (outputs[0] >= 0 || outputs[1] >= 0) {
    pollfd fds[3] = {{outputs[0], POLLIN, 0}, {outputs[1], POLLIN, 0}, {in, POLLOUT, 0}};
    if (poll(fds, 3, -1) < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t got = read(fds[i].fd, buffer, sizeof(buffer));
      if (got > 0) {
        (i == 0 ? result.out : result.err).append(buffer, static_cast<size_t>(got));
      } else if (got == 0 || errno != EINTR) {
        i == 0 ? process.CloseStdout() : process.CloseStderr();
        outputs[i] = -1;
      }
    }
    if (in >= 0 && (fds[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t put = write(in, input.data() + written, input.size() - written);
      if (put > 0) written += static_cast<size_t>(put);
      if (put < 0 || written == input.size()) {
        process.CloseStdin();
        in = -1;
      }
    }
  }
  process.CloseStdin();
  result.exit_code = ExitCodeOf(process.Wait());
  return result;
}

}  // namespace hpsearch::testing
