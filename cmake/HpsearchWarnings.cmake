# hpsearch_strict(<target>): warnings (as errors unless HPSEARCH_WERROR=OFF) on hpsearch's own code only.
# Third-party headers come in through imported targets as SYSTEM includes, so they never trip these.
function(hpsearch_strict target)
  set(flags -Wall -Wextra -Wpedantic -Wno-unused-parameter)
  if(HPSEARCH_WERROR)
    list(APPEND flags -Werror)
  endif()
  target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:${flags}>)
endfunction()

# hpsearch_unity(<target> <batch size>): with HPSEARCH_UNITY_BUILD, compiles <batch size> of the target's
# files per translation unit. Files in one batch share a unit, so file-local names (anonymous namespaces,
# statics) must not collide across the target's files.
function(hpsearch_unity target batch_size)
  if(HPSEARCH_UNITY_BUILD)
    set_target_properties(${target} PROPERTIES UNITY_BUILD ON UNITY_BUILD_BATCH_SIZE ${batch_size})
  endif()
endfunction()

# hpsearch_add_tests(<target> <source>... [LIBS <lib>...]): one Catch2 binary registered test by test with
# ctest. A test that cannot run on this machine (no GPU, no ../shared) exits with kHpsearchSkipCode (77),
# which ctest reports as skipped, never as passed.
set(HPSEARCH_SKIP_CODE 77)
function(hpsearch_add_tests target)
  cmake_parse_arguments(ARG "" "" "LIBS" ${ARGN})
  add_executable(${target} ${ARG_UNPARSED_ARGUMENTS})
  target_link_libraries(${target} PRIVATE ${ARG_LIBS} Catch2::Catch2WithMain hpsearch_testing)
  hpsearch_strict(${target})
  # Test files are thin drivers of the libraries (which keep their own optimisation); -O1 compiles the
  # LibTorch-heavy ones ~15% faster than -O2.
  if(CMAKE_BUILD_TYPE MATCHES "Release|RelWithDebInfo")
    target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-O1>)
  endif()
  catch_discover_tests(${target}
    WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}
    PROPERTIES SKIP_RETURN_CODE ${HPSEARCH_SKIP_CODE}
               ENVIRONMENT "HPSEARCH_SOURCE_DIR=${CMAKE_SOURCE_DIR};HPSEARCH_BIN_DIR=${CMAKE_BINARY_DIR}/bin"
    DISCOVERY_TIMEOUT 60)
endfunction()
