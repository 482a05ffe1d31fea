// Subprocess (base/subprocess.h) on real programs: streams, passed descriptors, environment,
// working folder, exit descriptions, and the reaping of a whole process tree.
#include "base/subprocess.h"

#include <catch2/catch.hpp>

#include <fstream>
#include <string>

#include "testing/testing.h"

namespace hpsearch {
namespace {

// Everything readable from `fd` until end of file.
std::string ReadAll(int fd) {
  std::string text;
  char buffer[4096];
  for (ssize_t got; (got = ::read(fd, buffer, sizeof(buffer))) != 0;) {
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) break;
    text.append(buffer, static_cast<size_t>(got));
  }
  return text;
}

// Whether `pid` is gone or a zombie (a container's init may not reap orphans at once).
bool Dead(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  if (!std::getline(stat, text)) return true;
  const size_t paren = text.rfind(')');
  return paren != std::string::npos && paren + 2 < text.size() && text[paren + 2] == 'Z';
}

// Polls until `pid` is dead, for at most 20 s.
bool DiesWithin20s(pid_t pid) {
  for (int i = 0; i < 2000; ++i) {
    if (Dead(pid)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

SubprocessOptions Shell(const std::string& script) {
  SubprocessOptions options;
  options.argv = {"/bin/sh", "-c", script};
  options.out = SubprocessStream::Pipe();
  options.err = SubprocessStream::Pipe();
  return options;
}

TEST_CASE("Subprocess captures output and describes how the program ended", "[base][subprocess]") {
  Subprocess process;
  std::string error;
  REQUIRE(process.Start(Shell("echo out; echo err >&2; exit 3"), &error));
  CHECK(ReadAll(process.stdout_fd()) == "out\n");
  CHECK(ReadAll(process.stderr_fd()) == "err\n");
  const int status = process.Wait();
  CHECK(process.reaped());
  CHECK(DescribeExit(status) == "exited with status 3");
  CHECK(ExitCodeOf(status) == 3);

  Subprocess killed;
  REQUIRE(killed.Start(Shell("kill -9 $$"), &error));
  const int killed_status = killed.Wait();
  CHECK(DescribeExit(killed_status) == "was killed by signal 9 (Killed)");
  CHECK(ExitCodeOf(killed_status) == 137);
}

TEST_CASE("Subprocess passes descriptors, environment and working folder", "[base][subprocess]") {
  testing::TempDir dir;
  int lifeline[2];
  REQUIRE(::pipe2(lifeline, O_CLOEXEC) == 0);
  SubprocessOptions options =
      Shell("echo \"$HPSEARCH_TEST_A $HPSEARCH_TEST_B $(pwd)\"; echo passed >&3");
  options.pass_fds = {{lifeline[1], 3}};
  options.extra_env = {"HPSEARCH_TEST_A=1", "HPSEARCH_TEST_B=2", "HPSEARCH_TEST_A=3"};
  options.working_dir = dir.path().string();
  Subprocess process;
  std::string error;
  REQUIRE(process.Start(options, &error));
  ::close(lifeline[1]);  // ours; the child holds its own copy as 3
  CHECK(ReadAll(lifeline[0]) == "passed\n");
  ::close(lifeline[0]);
  CHECK(ReadAll(process.stdout_fd()) ==
        "3 2 " + std::filesystem::canonical(dir.path()).string() + "\n");
  CHECK(ExitCodeOf(process.Wait()) == 0);
}

TEST_CASE("Subprocess reports a program it cannot run and a folder it cannot enter",
          "[base][subprocess]") {
  std::string error;
  SubprocessOptions missing;
  missing.argv = {"/nonexistent/program"};
  missing.err = SubprocessStream::Pipe();
  missing.name_in_errors = "tester";
  Subprocess process;
  REQUIRE(process.Start(missing, &error));
  CHECK(ReadAll(process.stderr_fd()).find("tester: cannot run /nonexistent/program: ") == 0);
  CHECK(ExitCodeOf(process.Wait()) == 127);

  SubprocessOptions folder = Shell("true");
  folder.working_dir = "/nonexistent/folder";
  Subprocess in_folder;
  REQUIRE(in_folder.Start(folder, &error));
  CHECK(ReadAll(in_folder.stderr_fd()).find("cannot enter working_dir /nonexistent/folder") !=
        std::string::npos);
  CHECK(ExitCodeOf(in_folder.Wait()) == 126);

  SubprocessOptions log = Shell("true");
  log.out = SubprocessStream::File("/nonexistent/folder/log");
  Subprocess unlogged;
  CHECK_FALSE(unlogged.Start(log, &error));
  CHECK(error.find("cannot open /nonexistent/folder/log") == 0);
  CHECK_FALSE(unlogged.started());
}

TEST_CASE("Destroying a Subprocess in a session of its own reaps its whole tree",
          "[base][subprocess]") {
  // The shell starts a grandchild in its group and prints its pid; both would live a minute.
  pid_t child = -1;
  pid_t grandchild = -1;
  {
    SubprocessOptions options = Shell("sleep 60 & echo $!; wait");
    options.new_session = true;
    Subprocess process;
    std::string error;
    REQUIRE(process.Start(options, &error));
    std::string line;
    char c;
    while (::read(process.stdout_fd(), &c, 1) == 1 && c != '\n') line += c;
    grandchild = std::stoi(line);
    child = process.pid();
    CHECK_FALSE(Dead(grandchild));
  }
  CHECK(Dead(child));  // reaped by the destructor
  CHECK(DiesWithin20s(grandchild));
}

TEST_CASE("SignalGroup reaches the tree and Signal only the child", "[base][subprocess]") {
  SubprocessOptions options = Shell("trap '' TERM; sleep 60 & echo $!; wait; wait");
  options.new_process_group = true;
  Subprocess process;
  std::string error;
  REQUIRE(process.Start(options, &error));
  std::string line;
  char c;
  while (::read(process.stdout_fd(), &c, 1) == 1 && c != '\n') line += c;
  const pid_t grandchild = std::stoi(line);
  process.Signal(SIGTERM);  // the shell ignores it; the sleep is not sent it
  CHECK_FALSE(process.WaitFor(std::chrono::milliseconds(200)));
  CHECK_FALSE(Dead(grandchild));
  process.SignalGroup(SIGKILL);
  CHECK(process.WaitFor(std::chrono::seconds(20)));
  CHECK(DescribeExit(process.wait_status()) == "was killed by signal 9 (Killed)");
  CHECK(DiesWithin20s(grandchild));
}

}  // namespace
}  // namespace hpsearch
